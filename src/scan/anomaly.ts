import { DAY_MS } from '../core/clock.js';

export interface VolumeAnomalyOptions {
  /** Active days an account needs before it can be anomalous (default 7). */
  minDaysOfHistory: number;
  /** Today above this many times the usual day is anomalous (default 5)... */
  factor: number;
  /** ...and above this many messages (default 50). */
  floor: number;
}

/** Active days kept per account; the usual volume is taken over the last USUAL_DAYS of them. */
const KEEP_DAYS = 30;
const USUAL_DAYS = 14;

/**
 * Per-account outbound volume against the account's own habit. A stolen password or an
 * infected PC shows as an account suddenly sending many times what it usually does, well
 * under any fixed daily limit sized for the busiest user.
 *
 * History is counted in days the account sent mail, not calendar days, and the usual
 * volume is their median: weekends and holidays do not pull it down, one earlier spike
 * (an attack that ran a day before being noticed) does not raise it, and a dormant
 * account that wakes up spraying is still compared with the habit it had.
 */
export class VolumeAnomaly {
  private readonly opts: VolumeAnomalyOptions;
  /** Per account, day number (days since 1970-01-01) to messages that day. */
  private days = new Map<string, Map<number, number>>();

  constructor(opts: Partial<VolumeAnomalyOptions> = {}) {
    this.opts = {
      minDaysOfHistory: nonNegative(opts.minDaysOfHistory, 7),
      factor: opts.factor !== undefined && Number.isFinite(opts.factor) && opts.factor > 0 ? opts.factor : 5,
      floor: nonNegative(opts.floor, 50),
    };
  }

  /** Counts one message; `day` is the box's local day, "2025-03-01". A malformed day is ignored. */
  record(account: string, day: string): void {
    const d = dayNumber(day);
    if (d === null) return;
    let m = this.days.get(account);
    if (!m) this.days.set(account, (m = new Map()));
    m.set(d, (m.get(d) ?? 0) + 1);
    if (m.size > KEEP_DAYS) m.delete(Math.min(...m.keys()));
  }

  /** Today's count (as recorded so far) against the median of the account's recent active days before it. */
  check(account: string, day: string): { anomalous: boolean; today: number; usual: number } {
    const d = dayNumber(day);
    const m = this.days.get(account);
    if (d === null || !m) return { anomalous: false, today: 0, usual: 0 };
    const today = m.get(d) ?? 0;
    const before = [...m.keys()].filter((k) => k < d).sort((a, b) => b - a);
    const recent = before.slice(0, USUAL_DAYS).map((k) => m.get(k)!);
    const usual = median(recent);
    const anomalous = before.length >= this.opts.minDaysOfHistory && today > Math.max(this.opts.factor * usual, this.opts.floor);
    return { anomalous, today, usual };
  }

  /** Plain JSON: { v: 1, accounts: [[account, [["2025-03-01", 12], ...]], ...] }. */
  snapshot(): unknown {
    const accounts: [string, [string, number][]][] = [];
    for (const [account, m] of this.days) {
      accounts.push([account, [...m].sort((a, b) => a[0] - b[0]).map(([d, n]) => [dayString(d), n])]);
    }
    return { v: 1, accounts };
  }

  /**
   * Replaces the state with a snapshot. The file may be from an older build or damaged:
   * whatever does not look right is skipped, never thrown on.
   */
  restore(data: unknown): void {
    this.days = new Map();
    if (typeof data !== 'object' || data === null) return;
    const { v, accounts } = data as { v?: unknown; accounts?: unknown };
    if (v !== 1 || !Array.isArray(accounts)) return;
    for (const item of accounts) {
      if (!Array.isArray(item) || typeof item[0] !== 'string' || !Array.isArray(item[1])) continue;
      const m = this.days.get(item[0]) ?? new Map<number, number>();
      for (const pair of item[1] as unknown[]) {
        if (!Array.isArray(pair)) continue;
        const d = typeof pair[0] === 'string' ? dayNumber(pair[0]) : null;
        const n: unknown = pair[1];
        if (d === null || typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) continue;
        m.set(d, n);
      }
      const keep = [...m.keys()].sort((a, b) => b - a).slice(KEEP_DAYS);
      for (const k of keep) m.delete(k);
      if (m.size) this.days.set(item[0], m);
    }
  }
}

function median(xs: number[]): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function dayNumber(day: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return null;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  // Date.UTC rolls "2025-02-31" over into March; such a day is not one.
  return dayString(t / DAY_MS) === day ? t / DAY_MS : null;
}

function dayString(d: number): string {
  return new Date(d * DAY_MS).toISOString().slice(0, 10);
}

function nonNegative(v: number | undefined, dflt: number): number {
  return v !== undefined && Number.isFinite(v) && v >= 0 ? Math.floor(v) : dflt;
}
