import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { sublevel, type Db } from '../store/db.js';
import type { DataDecl } from '../store/data.js';
import type { Logger } from '../log/logger.js';

export type Severity = 'info' | 'warning' | 'critical';

/** One thing that happened that an administrator may need to know about. */
export interface MlsdEvent {
  id: string;
  time: string;
  kind: string;
  severity: Severity;
  text: string;
  ip?: string;
  account?: string;
  limit?: string;
  data?: Record<string, unknown>;
}

export type EventInput = Omit<MlsdEvent, 'id' | 'time'>;

const SUBLEVEL = 'events';
/** Acknowledged alarms, by event id (src/events/alarms.ts). */
export const ACKS_SUBLEVEL = 'event-acks';

/** Each box keeps its own event log (a standby's link faults and takeovers are its own), and its own alarms. */
export const EVENTS_DATA: DataDecl = {
  owner: 'events',
  sublevels: [
    { name: SUBLEVEL, describe: 'the event log (newest 10,000)', replicate: false, backup: true },
    { name: ACKS_SUBLEVEL, describe: 'which critical events an administrator acknowledged (by event id)', replicate: false, backup: true },
  ],
};

/**
 * The event bus and its persistent log: every event is written to LevelDB (newest
 * first on listing) and then handed to subscribers (alerts, and later the LCD, the web
 * admin and the HA peer), so there is one path for all of them.
 */
export class EventLog {
  private readonly bus = new EventEmitter();
  private written = 0;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
    private readonly keep = 10000,
  ) {}

  async emit(input: EventInput): Promise<MlsdEvent> {
    const t = this.now();
    // Keys sort by time: a fixed-width millisecond stamp, then random bits for ties.
    const id = t.getTime().toString(36).padStart(9, '0') + randomBytes(4).toString('hex');
    const ev: MlsdEvent = { id, time: t.toISOString(), ...input };
    await sublevel(this.db, SUBLEVEL).put(id, ev);
    this.log[ev.severity === 'info' ? 'info' : 'warn']({ evt: 'event', kind: ev.kind, severity: ev.severity, ip: ev.ip, account: ev.account, limit: ev.limit }, ev.text);
    this.bus.emit('event', ev);
    if (++this.written % 500 === 0) await this.trim();
    return ev;
  }

  /** Returns the unsubscribe (services that stop and start again under HA must not pile up). */
  subscribe(fn: (ev: MlsdEvent) => void): () => void {
    this.bus.on('event', fn);
    return () => this.bus.off('event', fn);
  }

  async list(limit = 100): Promise<MlsdEvent[]> {
    const out: MlsdEvent[] = [];
    for await (const v of sublevel(this.db, SUBLEVEL).values({ reverse: true, limit })) out.push(v as MlsdEvent);
    return out;
  }

  /** One event by its id, or null. */
  async get(id: string): Promise<MlsdEvent | null> {
    return ((await sublevel(this.db, SUBLEVEL).get(id)) as MlsdEvent | undefined) ?? null;
  }

  /** Every event kept, newest first. */
  async *all(): AsyncGenerator<MlsdEvent> {
    for await (const v of sublevel(this.db, SUBLEVEL).values({ reverse: true })) yield v as MlsdEvent;
  }

  /** Keeps the newest `keep` events; the log must not fill the data disk. */
  private async trim(): Promise<void> {
    const sub = sublevel(this.db, SUBLEVEL);
    let n = 0;
    for await (const key of sub.keys({ reverse: true })) {
      if (++n > this.keep) await sub.del(key);
    }
  }
}
