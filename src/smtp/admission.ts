import type { Clock, Timer } from '../core/clock.js';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import type { Reply } from './reply.js';

/** The settings admission reads (smtp.maxClients, smtp.stress.*), read afresh at each use. */
export interface AdmissionSettings {
  maxClients: number;
  /** Share of maxClients the MX listeners may not take (kept for submission and smtps). */
  submissionReserve: number;
  /** Share of maxClients at which stress mode starts. */
  threshold: number;
  /** Idle time after which a session not logged in and not inside DATA is closed under stress. */
  idleTimeoutMs: number;
  /** Refusals before a session is closed under stress (Postfix: smtpd_hard_error_limit). */
  errorLimit: number;
  /** Stress lasting this long is an alert; 0 = never. */
  alertAfterMs: number;
}

/** MX: mail from anyone, no AUTH needed. Submission: the listeners people log in on (authRequired or smtps). */
export type ListenerKind = 'mx' | 'submission';

export interface AdmissionDeps {
  settings: () => AdmissionSettings;
  clock: Clock;
  emit: (ev: EventInput) => void;
  log: Logger;
  /** Closes a session with this reply first (a 421: the client knows why and retries). */
  close: (sessionId: string, reply: Reply) => void;
}

interface Admitted {
  id: string;
  ip: string;
  kind: ListenerKind;
  /** When the client last sent a command (or connected). */
  lastActive: number;
  /** Past MAIL: an anonymous one is closed to make room only after every one before MAIL. */
  atMail: boolean;
  /**
   * Inside DATA (the message is streaming in): never closed to make room. Each chunk counts
   * as activity, so under stress a transfer is closed only when no bytes came for
   * idleTimeoutMs (Postfix's stress timeout covers DATA reads too): a flood cannot park in
   * DATA sending a byte every few minutes.
   */
  inData: boolean;
  /**
   * One of our hooks is deciding the client's last command (a slow RCPT look-up, an AUTH in
   * the password-check queue, the commit after the final dot): the client waits for us, so
   * it is not idle and is closed neither for idleness nor to make room.
   */
  busy: boolean;
  /**
   * Logged in: accountable, so stress mode never closes it for idleness (it keeps
   * smtp.socketTimeoutMs), and it is closed to make room only after every anonymous session,
   * and never once past MAIL.
   */
  authenticated: boolean;
}

export type Admit = { ok: true } | { ok: false; reply: Reply };

export const idleClosed: Reply = { code: 421, enhanced: '4.7.0', text: 'Error: server busy, closing idle connection' };
export const tooBusy: Reply = { code: 421, enhanced: '4.7.0', text: 'Error: too many connected clients, try again in a moment' };

/**
 * One connection budget (smtp.maxClients) over all listeners, and Postfix's stress mode.
 *
 * Without it an idle-connection flood under any per-address limit fills the budget and every
 * other client gets 421 for the whole 300 s idle timeout. So:
 * - the MX listeners must leave submissionReserve x maxClients slots free, so people who log
 *   in always find room;
 * - past `threshold` x maxClients the box is under stress: a session that is not logged in
 *   and not inside DATA is closed once idle for idleTimeoutMs, before MAIL or after it (as
 *   Postfix's ${stress} shortens smtpd_timeout for every session: a flood that says MAIL FROM
 *   and then waits must not keep its slots for 300 s), and one refusal ends a session;
 * - when the budget is full, a new client is admitted by closing a session (see `victim`).
 *   A session inside DATA is never closed by stress mode: its bytes are arriving.
 * Entering and leaving stress are events; stress lasting alertAfterMs is an alert.
 */
export class Admission {
  private readonly sessions = new Map<string, Admitted>();
  private mx = 0;
  /** Admitted sessions per client address: a flood holds many, a real client one or two. */
  private readonly perIp = new Map<string, number>();
  private stressSince: number | null = null;
  /** Under stress, since when the sessions have been below the off level. */
  private calmSince: number | null = null;
  private sweepTimer: Timer | null = null;
  private alertTimer: Timer | null = null;
  /** Sessions closed under this stress period (for the off event and the alert). */
  private closedIdle = 0;
  private closedForRoom = 0;
  private refused = 0;

  constructor(private readonly deps: AdmissionDeps) {}

  get underStress(): boolean {
    return this.stressSince !== null;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** The refusals that end a session: fewer under stress. */
  errorLimit(normal: number): number {
    return this.underStress ? Math.min(normal, this.deps.settings().errorLimit) : normal;
  }

  /** Admits a session (it counts until `release`), making room if the budget is full. */
  admit(id: string, ip: string, kind: ListenerKind): Admit {
    const s = this.deps.settings();
    const mxCap = Math.max(1, s.maxClients - Math.floor(s.submissionReserve * s.maxClients));
    const full = () => this.sessions.size >= s.maxClients || (kind === 'mx' && this.mx >= mxCap);
    if (full()) {
      // An MX client that hit the MX cap must free an MX slot; anyone else any slot.
      const victim = this.victim(kind === 'mx' && this.mx >= mxCap ? 'mx' : null);
      if (!victim) {
        this.refused++;
        this.deps.log.info({ evt: 'smtp.admission.refuse', ip, kind, sessions: this.sessions.size, maxClients: s.maxClients }, 'connection budget full, nothing idle to close');
        return { ok: false, reply: tooBusy };
      }
      this.closedForRoom++;
      this.drop(victim, 'room');
    }
    this.sessions.set(id, { id, ip, kind, lastActive: this.deps.clock.now(), atMail: false, inData: false, busy: false, authenticated: false });
    if (kind === 'mx') this.mx++;
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    this.check();
    return { ok: true };
  }

  /** The client sent a command. */
  active(id: string): void {
    const a = this.sessions.get(id);
    if (a) a.lastActive = this.deps.clock.now();
  }

  /** Our hook started (true) or finished (false) deciding the client's command; see `busy`. */
  busy(id: string, on: boolean): void {
    const a = this.sessions.get(id);
    if (!a) return;
    a.busy = on;
    // The client's idle time runs from our reply, not from its command.
    if (!on) a.lastActive = this.deps.clock.now();
  }

  reachedMail(id: string): void {
    const a = this.sessions.get(id);
    if (a) a.atMail = true;
  }

  /** The client sent DATA: its message streams in from now on. */
  dataStarted(id: string): void {
    const a = this.sessions.get(id);
    if (a) a.inData = true;
  }

  /**
   * DATA got its reply: the transaction is over, the session is back before MAIL, and its
   * idle time runs from now (not from the DATA command, however long the transfer took).
   */
  dataEnded(id: string): void {
    const a = this.sessions.get(id);
    if (!a) return;
    a.inData = false;
    a.busy = false;
    a.atMail = false;
    a.lastActive = this.deps.clock.now();
  }

  authenticated(id: string): void {
    const a = this.sessions.get(id);
    if (a) a.authenticated = true;
  }

  release(id: string): void {
    const a = this.sessions.get(id);
    if (!a) return;
    this.sessions.delete(id);
    if (a.kind === 'mx') this.mx--;
    const n = (this.perIp.get(a.ip) ?? 0) - 1;
    if (n > 0) this.perIp.set(a.ip, n);
    else this.perIp.delete(a.ip);
    this.check();
  }

  stop(): void {
    this.deps.clock.clearInterval(this.sweepTimer);
    this.deps.clock.clearTimeout(this.alertTimer);
    this.sweepTimer = this.alertTimer = null;
  }

  /**
   * The session to close to make room. Never one inside DATA, nor a logged-in one past MAIL.
   * First by class: anonymous before MAIL, then anonymous past MAIL (a flood can say MAIL FROM
   * and wait, so MAIL alone earns no protection), then logged in before MAIL. Within a class,
   * from the address holding the most sessions (a flood churns so fast that its newest
   * sessions look less idle than a real client pausing for a second), then the longest idle.
   */
  private victim(kind: ListenerKind | null): Admitted | null {
    let best: Admitted | null = null;
    let bestKey: [number, number, number] = [Infinity, Infinity, Infinity];
    for (const a of this.sessions.values()) {
      if (a.inData || a.busy || (a.authenticated && a.atMail) || (kind && a.kind !== kind)) continue;
      const rank = a.authenticated ? 2 : a.atMail ? 1 : 0;
      const key: [number, number, number] = [rank, -(this.perIp.get(a.ip) ?? 0), a.lastActive];
      if (key[0] < bestKey[0] || (key[0] === bestKey[0] && (key[1] < bestKey[1] || (key[1] === bestKey[1] && key[2] < bestKey[2])))) {
        best = a;
        bestKey = key;
      }
    }
    return best;
  }

  /** Forgets the session at once (its slot is free now) and has it closed with a 421. */
  private drop(a: Admitted, why: 'room' | 'idle'): void {
    this.release(a.id);
    this.deps.log.info({ evt: 'smtp.stress.close', cid: a.id, ip: a.ip, kind: a.kind, why, idleMs: this.deps.clock.now() - a.lastActive }, 'closing idle session under stress');
    this.deps.close(a.id, idleClosed);
  }

  /**
   * Enters stress at threshold x maxClients. Leaves it once the sessions have stayed below
   * three quarters of that for a whole idleTimeoutMs: no flapping, and the sweeps of that
   * period close the rest of a flood's idle sessions instead of leaving them for 300 s.
   */
  private check(): void {
    const s = this.deps.settings();
    const onAt = Math.max(1, Math.ceil(s.threshold * s.maxClients));
    if (this.stressSince === null) {
      if (this.sessions.size >= onAt) this.enter(s, onAt);
      return;
    }
    const calm = this.sessions.size < Math.floor(onAt * 0.75);
    if (!calm) this.calmSince = null;
    else if (this.calmSince === null) this.calmSince = this.deps.clock.now();
    else if (this.deps.clock.now() - this.calmSince >= s.idleTimeoutMs) this.leave(s);
  }

  private enter(s: AdmissionSettings, onAt: number): void {
    const now = this.deps.clock.now();
    this.stressSince = now;
    this.calmSince = null;
    this.closedIdle = this.closedForRoom = this.refused = 0;
    const data = { sessions: this.sessions.size, maxClients: s.maxClients, threshold: s.threshold, idleTimeoutMs: s.idleTimeoutMs };
    this.deps.log.warn({ evt: 'smtp.stress.on', ...data, onAt, topClients: this.topClients() }, 'SMTP under stress: idle sessions are closed');
    this.deps.emit({
      kind: 'smtp.stress.on',
      severity: 'warning',
      text: `SMTP under stress: ${this.sessions.size} of ${s.maxClients} sessions (smtp.stress.threshold ${s.threshold}); sessions not logged in and idle ${s.idleTimeoutMs / 1000} s outside DATA are closed`,
      data: { ...data, topClients: this.topClients().join(', ') },
    });
    const every = Math.max(100, Math.min(1000, Math.floor(s.idleTimeoutMs / 4)));
    this.sweepTimer = this.deps.clock.setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
    if (s.alertAfterMs > 0) {
      this.alertTimer = this.deps.clock.setTimeout(() => this.lasting(), s.alertAfterMs);
      this.alertTimer.unref();
    }
  }

  private leave(s: AdmissionSettings): void {
    const lastedMs = this.deps.clock.now() - this.stressSince!;
    this.stressSince = this.calmSince = null;
    this.stop();
    const data = { sessions: this.sessions.size, maxClients: s.maxClients, lastedMs, closedIdle: this.closedIdle, closedForRoom: this.closedForRoom, refused: this.refused };
    this.deps.log.info({ evt: 'smtp.stress.off', ...data }, 'SMTP no longer under stress');
    this.deps.emit({
      kind: 'smtp.stress.off',
      severity: 'info',
      text: `SMTP no longer under stress after ${Math.round(lastedMs / 1000)} s: ${this.closedIdle + this.closedForRoom} idle session(s) closed, ${this.refused} connection(s) refused`,
      data,
    });
  }

  /**
   * Under stress: closes every session idle for idleTimeoutMs that is not logged in and not
   * waiting for us (before MAIL, past it, or inside a DATA whose bytes stopped coming), then
   * sees whether the stress is over.
   */
  private sweep(): void {
    const cutoff = this.deps.clock.now() - this.deps.settings().idleTimeoutMs;
    const idle = [...this.sessions.values()].filter((a) => !a.authenticated && !a.busy && a.lastActive <= cutoff);
    for (const a of idle) {
      this.closedIdle++;
      this.drop(a, 'idle');
    }
    this.check();
  }

  private lasting(): void {
    this.alertTimer = null;
    if (this.stressSince === null) return;
    const s = this.deps.settings();
    const lastedMs = this.deps.clock.now() - this.stressSince;
    const top = this.topClients();
    this.deps.emit({
      kind: 'smtp.stress.lasting',
      severity: 'critical',
      text: `SMTP under stress for ${Math.round(lastedMs / 60000)} min (possible connection flood): ${this.sessions.size} of ${s.maxClients} sessions; ${this.closedIdle + this.closedForRoom} idle session(s) closed, ${this.refused} refused; most sessions from ${top.join(', ') || '-'}`,
      data: { lastedMs, sessions: this.sessions.size, maxClients: s.maxClients, closedIdle: this.closedIdle, closedForRoom: this.closedForRoom, refused: this.refused, topClients: top.join(', ') },
    });
  }

  /** The five addresses holding the most sessions, as "ip (n)". */
  private topClients(): string[] {
    const n = new Map<string, number>();
    for (const a of this.sessions.values()) n.set(a.ip, (n.get(a.ip) ?? 0) + 1);
    return [...n].sort((x, y) => y[1] - x[1]).slice(0, 5).map(([ip, c]) => `${ip} (${c})`);
  }
}
