// Web admin sessions, kept in memory: a restart of the daemon logs everyone out, which is
// what an appliance's administrator expects after a firmware update or a takeover.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../core/clock.js';

export interface Session {
  id: string;
  /** The token every change must carry in X-CSRF-Token (never in a cookie, so another site cannot send it). */
  csrf: string;
  user: string;
  /** Where the login came from (the audit's "from where"). */
  ip: string;
  created: number;
  lastSeen: number;
}

/** A session id: 256 random bits, URL-safe. */
const newId = () => randomBytes(32).toString('base64url');

/** Sessions of the one administrator; at most `max`, the oldest dropped first. */
export class SessionStore {
  private readonly byId = new Map<string, Session>();

  constructor(
    private readonly clock: Clock,
    private readonly idleMs: () => number,
    /** A session lives at most this long, active or not. */
    private readonly maxAgeMs = 12 * 3600_000,
    private readonly max = 32,
  ) {}

  /**
   * A new session for a login. Whatever session id the browser carried is never reused: an id
   * planted before the login (session fixation) stays worthless.
   */
  create(user: string, ip: string): Session {
    const now = this.clock.now();
    const s: Session = { id: newId(), csrf: newId(), user, ip, created: now, lastSeen: now };
    if (this.byId.size >= this.max) this.byId.delete(this.byId.keys().next().value!);
    this.byId.set(s.id, s);
    return s;
  }

  /**
   * The live session of an id, its idle clock restarted unless `extend` is false (a page's own
   * refresh: an unattended browser is logged out all the same); null for an unknown, idle or too old one.
   */
  touch(id: string | undefined, extend = true): Session | null {
    if (!id) return null;
    const s = this.byId.get(id);
    if (!s) return null;
    const now = this.clock.now();
    if (now - s.lastSeen > this.idleMs() || now - s.created > this.maxAgeMs) {
      this.byId.delete(id);
      return null;
    }
    if (extend) s.lastSeen = now;
    return s;
  }

  destroy(id: string | undefined): void {
    if (id) this.byId.delete(id);
  }

  /** Every session ends (the password was changed). */
  clear(): void {
    this.byId.clear();
  }

  get size(): number {
    return this.byId.size;
  }
}

/** Compares a presented CSRF token with the session's in constant time. */
export function csrfMatches(session: Session, presented: unknown): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}
