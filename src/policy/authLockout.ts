import { clientKey } from './clientKey.js';

/**
 * AUTH brute-force lockout, a pure state machine with an injected clock (no timers):
 * `maxFailures` failed logins within `windowMs` from one client source lock that source out;
 * the same number against one account (from any sources) lock that account out for the
 * sources that failed on it, so its owner elsewhere can still log in. A lock lasts `lockMs`.
 *
 * A source is an IPv4 address or an IPv6 prefix (`ipv6Prefix` bits, /64 by default): an
 * IPv6 client picks a fresh address from its /64 for every guess at no cost.
 *
 * Failures are kept per (source, account) pair and summed per source and per account, so
 * a successful login forgets exactly that pair: logging in to one's own account does not
 * wipe one's failures against another, and the owner logging in from the office does not
 * wipe a guesser's failures from elsewhere.
 *
 * State is bounded: entries older than the window or lock expire, and at most `maxTracked`
 * pairs and locks are kept (the stalest are dropped first, with their index entries).
 */
export interface LockoutSettings {
  maxFailures: number;
  windowMs: number;
  lockMs: number;
  ipv6Prefix: number;
}

export type LockReason = 'ip' | 'account';

export interface FailureOutcome {
  /** The source the failure counted against (an IPv4 address or an IPv6 prefix). */
  source: string;
  /** Set when this failure started a lock of the source (not when one was already in force). */
  ipLocked: boolean;
  /** Set when this failure locked the account for this source (not when it already was). */
  accountLocked: boolean;
  ipFailures: number;
  accountFailures: number;
  /** When the account is locked: every source it is locked for (those that failed on it within the window). */
  accountSources: string[];
}

interface Pair {
  source: string;
  account: string;
  times: number[];
}

export class AuthLockout {
  // Insertion order is the order of the last failure, so expired pairs sit at the front.
  private readonly pairs = new Map<string, Pair>();
  private readonly bySource = new Map<string, Set<string>>();
  private readonly byAccount = new Map<string, Set<string>>();
  private readonly locks = new Map<string, number>(); // lock key -> locked until (ms)

  constructor(
    private readonly settings: () => LockoutSettings,
    private readonly now: () => number = Date.now,
    private readonly maxTracked = 10000,
  ) {}

  /** The source an address counts as under the current settings. */
  sourceOf(ip: string): string {
    return clientKey(ip, this.settings().ipv6Prefix);
  }

  /** Which lock, if any, holds this attempt. */
  lockedBy(ip: string, account: string): LockReason | null {
    const t = this.now();
    const source = this.sourceOf(ip);
    if ((this.locks.get(ipLock(source)) ?? 0) > t) return 'ip';
    if ((this.locks.get(accountLock(account, source)) ?? 0) > t) return 'account';
    return null;
  }

  /**
   * `scope: 'account'` counts the failure against the account only, not the source: for
   * a suspended account's right password, which its owner's mail client retries on its own
   * and which must not lock out a whole office behind one NAT address.
   */
  recordFailure(ip: string, account: string, scope: 'source+account' | 'account' = 'source+account'): FailureOutcome {
    const { maxFailures, windowMs, lockMs } = this.settings();
    const t = this.now();
    const source = this.sourceOf(ip);
    const key = scope === 'account' ? accountOnlyKey(source, account) : pairKey(source, account);
    const pair = this.pairs.get(key) ?? { source, account, times: [] };
    // Counting past maxFailures per pair changes no decision; the cap bounds a pair's memory.
    pair.times = [...pair.times.filter((x) => x > t - windowMs), t].slice(-Math.max(1, maxFailures));
    this.pairs.delete(key); // re-insert: Map order is then least recently failed first
    this.pairs.set(key, pair);
    if (scope !== 'account') index(this.bySource, source, key);
    index(this.byAccount, account, key);

    const ipFailures = this.count(this.bySource.get(source), t - windowMs);
    const accountFailures = this.count(this.byAccount.get(account), t - windowMs);
    let ipLocked = false;
    let accountLocked = false;
    let accountSources: string[] = [];
    if (maxFailures > 0 && ipFailures >= maxFailures && (this.locks.get(ipLock(source)) ?? 0) <= t) {
      this.lock(ipLock(source), t + lockMs);
      ipLocked = true;
    }
    if (maxFailures > 0 && accountFailures >= maxFailures) {
      accountLocked = (this.locks.get(accountLock(account, source)) ?? 0) <= t;
      accountSources = [...(this.byAccount.get(account) ?? [])].map((k) => this.pairs.get(k)!.source);
      for (const s of accountSources) this.lock(accountLock(account, s), t + lockMs);
    }
    this.prune(t, windowMs);
    return { source, ipLocked, accountLocked, ipFailures, accountFailures, accountSources };
  }

  /** A successful login forgets the failures of this (source, account) pair, and nothing else. */
  recordSuccess(ip: string, account: string): void {
    const source = this.sourceOf(ip);
    this.forget(pairKey(source, account));
    // Attempts made while the account was suspended are forgotten too, once it logs in again.
    this.forget(accountOnlyKey(source, account));
  }

  private count(keys: Set<string> | undefined, after: number): number {
    let n = 0;
    for (const k of keys ?? []) for (const x of this.pairs.get(k)!.times) if (x > after) n++;
    return n;
  }

  private lock(key: string, until: number): void {
    this.locks.delete(key); // re-insert: Map order is then the order locks end
    this.locks.set(key, until);
  }

  private forget(key: string): void {
    const pair = this.pairs.get(key);
    if (!pair) return;
    this.pairs.delete(key);
    unindex(this.bySource, pair.source, key);
    unindex(this.byAccount, pair.account, key);
  }

  private prune(t: number, windowMs: number): void {
    for (const [k, until] of this.locks) {
      if (until > t && this.locks.size <= this.maxTracked) break;
      this.locks.delete(k);
    }
    for (const [k, pair] of this.pairs) {
      if (pair.times[pair.times.length - 1]! > t - windowMs && this.pairs.size <= this.maxTracked) break;
      this.forget(k);
    }
  }
}

const ipLock = (source: string) => `ip\n${source}`;
const accountLock = (account: string, source: string) => `acct\n${account}\n${source}`;
const pairKey = (source: string, account: string) => `${source}\n${account}`;
const accountOnlyKey = (source: string, account: string) => `${source}\n${account}\naccount-only`;

function index(map: Map<string, Set<string>>, key: string, pair: string): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(pair);
}

function unindex(map: Map<string, Set<string>>, key: string, pair: string): void {
  const set = map.get(key);
  set?.delete(pair);
  if (set?.size === 0) map.delete(key);
}
