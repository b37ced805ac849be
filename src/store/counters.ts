import { sublevel, type Db, type BatchOp } from './db.js';
import type { DataDecl } from './data.js';

const COUNTERS = 'counters';
/** Recipients each login has written to, with the time of the last message (for the first-time recipient limit). */
const SEEN = 'seen';

/** The thresholds' memory: it must follow a failover, or a spammer gets a fresh day's quota. */
export const THRESHOLD_DATA: DataDecl = {
  owner: 'thresholds',
  sublevels: [
    { name: COUNTERS, describe: 'per-IP and per-account day counters', replicate: true },
    { name: SEEN, describe: 'recipients each login has written to', replicate: true },
  ],
};

export interface DayCount {
  day: string;
  count: number;
}

/**
 * LevelDB storage for the threshold policy: day counters, written unsynced and coalesced
 * once a second (a crash forgets at most a second of counting, and counting costs no
 * write per message), and the recipients each login has written to.
 */
export class ThresholdStore {
  private readonly dirty = new Map<string, DayCount>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly db: Db,
    private readonly group: { writeLazy(ops: BatchOp[]): Promise<void> },
    private readonly onError: (err: Error) => void,
  ) {
    this.timer = setInterval(() => void this.flush(), 1000);
    this.timer.unref();
  }

  /** Reads the day counters back; only the newest day's are kept, the rest are deleted. */
  async load(): Promise<[string, DayCount][]> {
    const out: [string, DayCount][] = [];
    for await (const [k, v] of sublevel(this.db, COUNTERS).iterator()) out.push([k, v as DayCount]);
    const newest = out.reduce((m, [, v]) => (v.day > m ? v.day : m), '');
    const stale = out.filter(([, v]) => v.day < newest).map(([key]) => ({ type: 'del' as const, sublevel: COUNTERS, key }));
    if (stale.length) await this.group.writeLazy(stale);
    return out.filter(([, v]) => v.day === newest);
  }

  save(key: string, value: DayCount): void {
    this.dirty.set(key, value);
  }

  flush(): Promise<void> {
    if (this.dirty.size === 0) return Promise.resolve();
    const ops = [...this.dirty].map(([key, value]) => ({ type: 'put' as const, sublevel: COUNTERS, key, value }));
    this.dirty.clear();
    return this.group.writeLazy(ops).catch(this.onError);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  async hasSent(login: string, rcpt: string): Promise<boolean> {
    return (await sublevel(this.db, SEEN).get(`${login}\n${rcpt}`)) != null;
  }

  /** Recipients of a committed message, with when (so they can be forgotten by age). */
  async rememberSent(login: string, rcpts: string[], now: number): Promise<void> {
    if (rcpts.length === 0) return;
    await this.group.writeLazy(rcpts.map((r) => ({ type: 'put' as const, sublevel: SEEN, key: `${login}\n${r}`, value: now })));
  }

  /**
   * Forgets recipients last written to before `before` (ms). Records from before they had
   * a time (the value 1) are dated `now`: they age from the upgrade instead of all being
   * forgotten at once, which would make every correspondent "new" on one day.
   */
  async pruneSent(before: number, now: number): Promise<{ removed: number; dated: number }> {
    let ops: BatchOp[] = [];
    let removed = 0;
    let dated = 0;
    for await (const [key, at] of sublevel(this.db, SEEN).iterator()) {
      if (typeof at !== 'number' || at <= 1) {
        ops.push({ type: 'put', sublevel: SEEN, key, value: now });
        dated++;
      } else if (at < before) {
        ops.push({ type: 'del', sublevel: SEEN, key });
        removed++;
      }
      if (ops.length >= 1000) {
        await this.group.writeLazy(ops);
        ops = [];
      }
    }
    if (ops.length) await this.group.writeLazy(ops);
    return { removed, dated };
  }
}
