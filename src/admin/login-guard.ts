// Failed web logins, counted per network: an IPv4 address, or an IPv6 /64 (one client owns a
// whole /64, so a per-address count would let it guess forever). A locked network is refused
// before its password is even checked, so the lockout also stops the scrypt work a flood costs.
import type { Clock } from '../core/clock.js';
import { subnetOf } from '../policy/ipList.js';

export interface GuardSettings {
  failures: number;
  lockMs: number;
}

interface Tally {
  /** Attempts counted since `first`, each counted when it starts (not when its check fails). */
  tries: number;
  first: number;
  lockedUntil: number;
}

/**
 * A login attempt let through: `locks` when it was the last one the network may make (the
 * network is locked already for the next ones); `done` says how the password check went.
 */
export type Attempt = { ok: false; retryAfterMs: number; busy: boolean } | { ok: true; locks: boolean; done(success: boolean): void };

export class LoginGuard {
  private readonly byNet = new Map<string, Tally>();
  private inFlight = 0;

  constructor(
    private readonly clock: Clock,
    private readonly settings: () => GuardSettings,
    /** Networks remembered at most (a flood from many networks cannot grow this without bound). */
    private readonly max = 10_000,
    /**
     * Password checks under way at once, box-wide. Each is an scrypt of 32 MiB on the thread
     * pool the spool's file I/O also uses: a flood of logins must not slow the mail.
     */
    private readonly maxInFlight = 4,
  ) {}

  /** The network key of an address: what is counted and locked. */
  key(ip: string): string {
    return subnetOf(ip, 32, 64);
  }

  /**
   * Lets an attempt through or refuses it. An attempt is counted as it starts: requests sent
   * all at once cannot each pass the check while the others' passwords are still being
   * checked, so a network gets `failures` guesses per lockout, however many it sends in parallel.
   */
  begin(ip: string): Attempt {
    const net = this.key(ip);
    const now = this.clock.now();
    const { failures, lockMs } = this.settings();
    let t = this.byNet.get(net);
    if (t && t.lockedUntil > now) return { ok: false, retryAfterMs: t.lockedUntil - now, busy: false };
    if (this.inFlight >= this.maxInFlight) return { ok: false, retryAfterMs: 1000, busy: true };
    // Attempts older than a lockout period are forgotten: a typo a day is no attack.
    if (!t || now - t.first > lockMs) {
      t = { tries: 0, first: now, lockedUntil: 0 };
      if (this.byNet.size >= this.max) this.byNet.delete(this.byNet.keys().next().value!);
      this.byNet.set(net, t);
    }
    t.tries++;
    const locks = t.tries >= failures;
    if (locks) t.lockedUntil = now + lockMs;
    this.inFlight++;
    let finished = false;
    return {
      ok: true,
      locks,
      done: (success) => {
        if (finished) return;
        finished = true;
        this.inFlight--;
        // The right password clears the network's count (and a lock this very attempt set).
        if (success) this.byNet.delete(net);
      },
    };
  }
}
