import { sublevel, type Db, type BatchOp } from '../store/db.js';

export const QUEUE_SUBLEVEL = 'queue';

export type RecipientState = 'queued' | 'deferred' | 'delivered' | 'bounced';

export interface QueueEntry {
  id: string;
  from: string;
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

  async list(): Promise<QueueEntry[]> {
    const out: QueueEntry[] = [];
    for await (const v of this.sub().values()) out.push(v as QueueEntry);
    return out;
  }
}
