/**
 * AUTH brute-force lockout, a pure state machine with an injected clock (no timers):
 * `maxFailures` failed logins within `windowMs` from one client IP lock that IP out;
 * the same number against one account (from any IPs) lock that account out for the IPs
 * that failed on it, so its owner elsewhere can still log in. A lock lasts `lockMs`.
 * State is bounded: entries older than the window or lock expire, and at most
 * `maxTracked` keys are kept (the stalest are dropped first).
 */
export interface LockoutSettings {
  maxFailures: number;
  windowMs: number;
  lockMs: number;
}

export type LockReason = 'ip' | 'account';

export interface FailureOutcome {
  /** Set when this failure started a lock (not when one was already in force). */
  locked: LockReason | null;
  ipFailures: number;
  accountFailures: number;
}

export class AuthLockout {
  private readonly failures = new Map<string, number[]>(); // key -> failure times (ms)
  private readonly locks = new Map<string, number>(); // key -> locked until (ms)
  private readonly accountIps = new Map<string, Set<string>>();

  constructor(
    private readonly settings: () => LockoutSettings,
    private readonly now: () => number = Date.now,
    private readonly maxTracked = 10000,
  ) {}

  /** Which lock, if any, holds this attempt. */
  lockedBy(ip: string, account: string): LockReason | null {
    const t = this.now();
    if ((this.locks.get(`ip:${ip}`) ?? 0) > t) return 'ip';
    if ((this.locks.get(`acct:${account}@${ip}`) ?? 0) > t) return 'account';
    return null;
  }

  recordFailure(ip: string, account: string): FailureOutcome {
    const { maxFailures, windowMs, lockMs } = this.settings();
    const t = this.now();
    const ipFailures = this.bump(`ip:${ip}`, t, windowMs);
    const accountFailures = this.bump(`acct:${account}`, t, windowMs);
    let ips = this.accountIps.get(account);
    if (!ips) this.accountIps.set(account, (ips = new Set()));
    ips.add(ip);
    let locked: LockReason | null = null;
    if (maxFailures > 0 && ipFailures >= maxFailures && (this.locks.get(`ip:${ip}`) ?? 0) <= t) {
      this.locks.set(`ip:${ip}`, t + lockMs);
      locked = 'ip';
    }
    if (maxFailures > 0 && accountFailures >= maxFailures) {
      const fresh = (this.locks.get(`acct:${account}@${ip}`) ?? 0) <= t;
      for (const each of ips) this.locks.set(`acct:${account}@${each}`, t + lockMs);
      if (fresh && !locked) locked = 'account';
    }
    this.prune(t, windowMs);
    return { locked, ipFailures, accountFailures };
  }

  /** A successful login forgets that account's failures from this IP's side. */
  recordSuccess(ip: string, account: string): void {
    this.failures.delete(`ip:${ip}`);
    this.accountIps.get(account)?.delete(ip);
  }

  private bump(key: string, t: number, windowMs: number): number {
    const list = (this.failures.get(key) ?? []).filter((x) => x > t - windowMs);
    list.push(t);
    this.failures.delete(key); // re-insert: Map order is then least recently failed first
    this.failures.set(key, list);
    return list.length;
  }

  private prune(t: number, windowMs: number): void {
    for (const [k, until] of this.locks) if (until <= t) this.locks.delete(k);
    for (const [k, list] of this.failures) {
      if (list[list.length - 1]! <= t - windowMs) {
        this.failures.delete(k);
        if (k.startsWith('acct:')) this.accountIps.delete(k.slice(5));
      }
    }
    while (this.failures.size > this.maxTracked) this.failures.delete(this.failures.keys().next().value!);
    while (this.locks.size > this.maxTracked) this.locks.delete(this.locks.keys().next().value!);
  }
}
