import { DAY_MS, HOUR_MS, MINUTE_MS, type Clock, type Timer } from '../core/clock.js';
import { localDay } from '../policy/window.js';
import type { DataDecl } from '../store/data.js';
import { sublevel, type BatchOp, type Db } from '../store/db.js';
import type { RecordWriter } from '../store/durability.js';

export const TRAFFIC_SUBLEVEL = 'mail-stats';

/**
 * Replicated: the dashboard's charts follow a failover (one small batch a minute to the
 * peer). Not backed up: counts are no one's mail, and a restore onto a new disk has better
 * things to wait for; the charts simply start again from the restore.
 */
export const TRAFFIC_DATA: DataDecl = {
  owner: 'stats',
  sublevels: [{ name: TRAFFIC_SUBLEVEL, describe: 'mail in and out per hour, for the dashboard charts (the last 32 days)', replicate: true, backup: false }],
};

/** One hour's traffic. `in` counts messages, every other field counts recipients. */
export interface TrafficCounts {
  /** Messages accepted over SMTP into the spool (one per message, whatever its recipients). */
  in: number;
  /** Their recipients. */
  inRecipients: number;
  /** Copies written to a local mailbox (one per mailbox). */
  outLocal: number;
  /** Recipients a remote MTA or the smarthost accepted (2xx). */
  outRemote: number;
  /** Recipients failed for good (5xx, or too long in the queue): bounced. */
  failed: number;
}

export type TrafficKind = keyof TrafficCounts;

export type TrafficTotals = TrafficCounts & { out: number };
export type HourTraffic = { start: string } & TrafficTotals;
export type DayTraffic = { date: string } & TrafficTotals;

export interface TrafficWindow {
  /** The IANA timezone the `days` are calendar days of (config `timezone`). */
  timezone: string;
  /** The last 24 hours, oldest first; the last is the hour under way. Hours start on the UTC hour. */
  hours: HourTraffic[];
  /** The last 30 local calendar days, oldest first; the last is today. */
  days: DayTraffic[];
}

/** Hourly buckets are kept this long: 30 local days plus a day either side for the timezone. */
export const KEEP_DAYS = 32;

const empty = (): TrafficCounts => ({ in: 0, inRecipients: 0, outLocal: 0, outRemote: 0, failed: 0 });
const totals = (c: TrafficCounts): TrafficTotals => ({ ...c, out: c.outLocal + c.outRemote });
/** A bucket's key: its UTC hour, "2026-01-05T10" (sorts in time order). */
const hourKey = (hourStart: number) => new Date(hourStart).toISOString().slice(0, 13);
const hourStartOf = (key: string) => Date.parse(`${key}:00:00Z`);

/** The calendar date `n` days before `date` ("2026-01-05"), by the calendar, not by 24 h steps (DST). */
function daysBefore(date: string, n: number): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d - n)).toISOString().slice(0, 10);
}

function isCounts(v: unknown): v is TrafficCounts {
  if (!v || typeof v !== 'object') return false;
  const o = v as Record<string, unknown>;
  return (Object.keys(empty()) as TrafficKind[]).every((k) => Number.isSafeInteger(o[k]) && (o[k] as number) >= 0);
}

/**
 * Mail in and out per hour, for the dashboard's charts. Counting costs a map update on
 * the hot path and nothing else: the hour buckets live in memory and the changed ones are
 * written once a minute (and at stop), unsynced. A crash forgets up to a minute of counts
 * (a power loss perhaps a little more): counts for a chart are worth no write per message.
 *
 * Hours start on the UTC hour (the front end shows them in the viewer's time); days are
 * the calendar days of the configured timezone, made of the hours that start in them. In a
 * timezone off the hour by 30 or 45 minutes, the hour across midnight counts in the day
 * it starts in.
 */
export class MailTraffic {
  private readonly buckets = new Map<string, TrafficCounts>();
  private readonly dirty = new Set<string>();
  private readonly gone = new Set<string>();
  private current: { start: number; key: string; counts: TrafficCounts } | null = null;
  private timer: Timer | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: {
      db: Db;
      writer: Pick<RecordWriter, 'writeLazy'>;
      clock: Clock;
      timezone: () => string;
      onError: (err: Error) => void;
    },
  ) {}

  /** Reads the buckets back (malformed and old ones are dropped), then flushes once a minute. */
  async start(): Promise<void> {
    for await (const [key, value] of sublevel(this.deps.db, TRAFFIC_SUBLEVEL).iterator()) {
      if (/^\d{4}-\d\d-\d\dT\d\d$/.test(key) && isCounts(value)) this.buckets.set(key, { ...empty(), ...value });
      else this.gone.add(key);
    }
    this.prune();
    await this.flush();
    this.timer = this.deps.clock.setInterval(() => void this.flush(), MINUTE_MS).unref();
  }

  /** A message accepted over SMTP, with its recipients. */
  accepted(recipients: number): void {
    const c = this.bucket();
    c.in += 1;
    c.inRecipients += recipients;
  }

  /** Recipients that reached a mailbox or a remote MTA, or failed for good. */
  delivered(kind: 'outLocal' | 'outRemote' | 'failed', recipients: number): void {
    if (recipients > 0) this.bucket()[kind] += recipients;
  }

  /** The bucket of the hour under way, found once per hour rather than once per message. */
  private bucket(): TrafficCounts {
    const now = this.deps.clock.now();
    const start = now - (now % HOUR_MS);
    if (this.current?.start !== start) {
      const key = hourKey(start);
      let counts = this.buckets.get(key);
      if (!counts) this.buckets.set(key, (counts = empty()));
      this.current = { start, key, counts };
    }
    this.dirty.add(this.current.key);
    return this.current.counts;
  }

  /** Forgets hours older than KEEP_DAYS (deleted at the next flush). */
  private prune(): void {
    const oldest = hourKey(this.deps.clock.now() - KEEP_DAYS * DAY_MS);
    for (const key of this.buckets.keys()) {
      if (key >= oldest) continue;
      this.buckets.delete(key);
      this.dirty.delete(key);
      this.gone.add(key);
    }
  }

  /** Writes the hours changed since the last flush; flushes run one after another, in order. */
  flush(): Promise<void> {
    this.prune();
    const ops: BatchOp[] = [
      ...[...this.dirty].map((key) => ({ type: 'put' as const, sublevel: TRAFFIC_SUBLEVEL, key, value: { ...this.buckets.get(key)! } })),
      ...[...this.gone].map((key) => ({ type: 'del' as const, sublevel: TRAFFIC_SUBLEVEL, key })),
    ];
    this.dirty.clear();
    this.gone.clear();
    if (ops.length === 0) return this.writing;
    this.writing = this.writing.then(() => this.deps.writer.writeLazy(ops)).catch(this.deps.onError);
    return this.writing;
  }

  async stop(): Promise<void> {
    this.deps.clock.clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  /** The last 24 hours and the last 30 days, counts not yet flushed included. */
  window(): TrafficWindow {
    const now = this.deps.clock.now();
    const thisHour = now - (now % HOUR_MS);
    const hours: HourTraffic[] = [];
    for (let i = 23; i >= 0; i--) {
      const start = thisHour - i * HOUR_MS;
      hours.push({ start: new Date(start).toISOString(), ...totals(this.buckets.get(hourKey(start)) ?? empty()) });
    }
    const timezone = this.deps.timezone();
    const today = localDay(now, timezone);
    const byDay = new Map<string, TrafficCounts>();
    for (let i = 29; i >= 0; i--) byDay.set(daysBefore(today, i), empty());
    for (const [key, c] of this.buckets) {
      const day = byDay.get(localDay(hourStartOf(key), timezone));
      if (day) for (const k of Object.keys(c) as TrafficKind[]) day[k] += c[k];
    }
    return { timezone, hours, days: [...byDay].map(([date, c]) => ({ date, ...totals(c) })) };
  }
}
