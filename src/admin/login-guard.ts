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
  failures: number;
  first: number;
  lockedUntil: number;
}

export type GuardVerdict = { ok: true } | { ok: false; retryAfterMs: number };

export class LoginGuard {
  private readonly byNet = new Map<string, Tally>();

  constructor(
    private readonly clock: Clock,
    private readonly settings: () => GuardSettings,
    /** Networks remembered at most (a flood from many networks cannot grow this without bound). */
    private readonly max = 10_000,
  ) {}

  /** The network key of an address: what is counted and locked. */
  key(ip: string): string {
    return subnetOf(ip, 32, 64);
  }

  check(ip: string): GuardVerdict {
    const t = this.byNet.get(this.key(ip));
    const now = this.clock.now();
    if (t && t.lockedUntil > now) return { ok: false, retryAfterMs: t.lockedUntil - now };
    return { ok: true };
  }

  /** Counts a failure; true when this failure locked the network (the caller records the event). */
  failed(ip: string): boolean {
    const net = this.key(ip);
    const now = this.clock.now();
    const { failures, lockMs } = this.settings();
    let t = this.byNet.get(net);
    // Failures older than a lockout period are forgotten: a typo a day is no attack.
    if (!t || now - t.first > lockMs) {
      t = { failures: 0, first: now, lockedUntil: 0 };
      if (this.byNet.size >= this.max) this.byNet.delete(this.byNet.keys().next().value!);
      this.byNet.set(net, t);
    }
    t.failures++;
    if (t.failures >= failures) {
      t.lockedUntil = now + lockMs;
      t.failures = 0;
      t.first = now;
      return true;
    }
    return false;
  }

  succeeded(ip: string): void {
    this.byNet.delete(this.key(ip));
  }
}
