import { sublevel, type Db, type BatchOp } from '../store/db.js';

export const QUEUE_SUBLEVEL = 'queue';

export type RecipientState = 'queued' | 'deferred' | 'delivered' | 'bounced';

export interface QueueEntry {
  id: string;
  from: string;
  /** The login that sent it, if any: a suspended account's mail is held, not delivered. */
  login: string | null;
  held: boolean;
  recipients: { address: string; state: RecipientState; attempts: number; lastReply: string | null; nextAttempt: string }[];
  queued: string;
  size: number;
}

/**
 * The durable outbound queue: one record per message with per-recipient state. This
 * issue only keeps it; the delivery engine that works it is a later issue.
 */
export class OutboundQueue {
  constructor(private readonly db: Db) {}

  private sub() {
    return sublevel(this.db, QUEUE_SUBLEVEL);
  }

  enqueueOp(entry: QueueEntry): BatchOp {
    return { type: 'put', sublevel: QUEUE_SUBLEVEL, key: entry.id, value: entry };
  }

  async has(id: string): Promise<boolean> {
    return (await this.sub().get(id)) != null;
  }

  /** Holds (or releases) every queued message sent by a login; returns how many. */
  async hold(login: string, held: boolean): Promise<number> {
    const changed: QueueEntry[] = [];
    for await (const v of this.sub().values()) {
      const e = v as QueueEntry;
      if (e.login === login && e.held !== held) changed.push({ ...e, held });
    }
    if (changed.length) await this.db.batch(changed.map((e) => ({ type: 'put' as const, sublevel: this.sub(), key: e.id, value: e })), { sync: true });
    return changed.length;
  }

  async list(): Promise<QueueEntry[]> {
    const out: QueueEntry[] = [];
    for await (const v of this.sub().values()) out.push(v as QueueEntry);
    return out;
  }
}
