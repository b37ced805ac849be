import { sublevel, syncedDbWrite, type Db } from '../store/db.js';
import type { StatusSection } from '../commands/status.js';
import { ACKS_SUBLEVEL, type EventLog, type MlsdEvent } from './events.js';

/** Event ids as EventLog makes them: a 9-character base-36 time, 8 hex digits. */
export const EVENT_ID = /^[0-9a-z]{9}[0-9a-f]{8}$/;

/** What counts as an alarm: a critical event (warnings are in the event log, they light nothing). */
export const isAlarm = (ev: MlsdEvent): boolean => ev.severity === 'critical';

/**
 * Alarms: critical events an administrator has not acknowledged yet (the front panel's
 * alarm LED and menu, `mlsd alarm list|ack`). An acknowledgement is a record under the
 * event's id in the event log's database, per box like the log itself, so it survives a
 * restart. The unacknowledged list is kept until a critical event or an acknowledgement
 * changes it: the panel asks for it with every status poll.
 */
export class Alarms {
  private cached: Promise<MlsdEvent[]> | null = null;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly db: Db,
    private readonly events: EventLog,
    private readonly now: () => number,
  ) {
    this.unsubscribe = events.subscribe((ev) => {
      if (isAlarm(ev)) this.cached = null;
    });
  }

  close(): void {
    this.unsubscribe();
  }

  /** The unacknowledged alarms, newest first. */
  unacknowledged(): Promise<MlsdEvent[]> {
    if (!this.cached) {
      const loading = this.load();
      // A failed read is not remembered: the next call reads again.
      loading.catch(() => {
        if (this.cached === loading) this.cached = null;
      });
      this.cached = loading;
    }
    return this.cached;
  }

  /** Acknowledges one alarm by id, or (no id) every one unacknowledged now; returns how many. */
  async acknowledge(id?: string): Promise<number> {
    let targets: MlsdEvent[];
    if (id === undefined) targets = await this.load();
    else {
      if (!EVENT_ID.test(id)) throw new Error(`alarm ack: "${id.replace(/[^\x20-\x7e]/g, '?').slice(0, 40)}" is not an event id (see mlsd alarm list)`);
      const ev = await this.events.get(id);
      if (!ev) throw new Error(`alarm ack: no event ${id} (see mlsd alarm list)`);
      if (!isAlarm(ev)) throw new Error(`alarm ack: event ${id} is ${ev.severity}, not an alarm`);
      targets = (await this.isAcked(id)) ? [] : [ev];
    }
    if (targets.length === 0) return 0;
    const at = new Date(this.now()).toISOString();
    // Synced: an acknowledgement is a person's act, and must not come back after a power cut.
    const acks = sublevel(this.db, ACKS_SUBLEVEL);
    await syncedDbWrite(this.db, () => this.db.batch(targets.map((ev) => ({ type: 'put' as const, sublevel: acks, key: ev.id, value: { at } })), { sync: true }));
    this.cached = null;
    return targets.length;
  }

  private async isAcked(id: string): Promise<boolean> {
    return (await sublevel(this.db, ACKS_SUBLEVEL).get(id)) !== undefined;
  }

  private async load(): Promise<MlsdEvent[]> {
    const acks = sublevel(this.db, ACKS_SUBLEVEL);
    const acked = new Set<string>();
    for await (const k of acks.keys()) acked.add(k as string);
    const out: MlsdEvent[] = [];
    let oldestKept: string | null = null;
    for await (const ev of this.events.all()) {
      oldestKept = ev.id;
      if (isAlarm(ev) && !acked.has(ev.id)) out.push(ev);
    }
    // Acknowledgements of events the log no longer keeps are dropped with them.
    const stale = [...acked].filter((k) => oldestKept === null || k < oldestKept);
    if (stale.length) await acks.batch(stale.map((key) => ({ type: 'del' as const, key })));
    return out;
  }
}

/** `mlsd status`: how many alarms wait, and the newest one's text; on both HA roles. */
export function alarmStatus(alarms: () => Alarms): StatusSection {
  return async () => {
    const list = await alarms().unacknowledged();
    const latest = list[0]?.text ?? null;
    return {
      json: { alarms: { unacknowledged: list.length, latest } },
      lines: [list.length ? `alarms: ${list.length} unacknowledged, latest: ${latest}` : 'alarms: none unacknowledged'],
    };
  };
}
