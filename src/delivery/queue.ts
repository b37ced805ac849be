import { sublevel, type Db, type BatchOp } from '../store/db.js';
import type { DataDecl } from '../store/data.js';

export const QUEUE_SUBLEVEL = 'queue';
/** The queue runner's own state (the smarthost budget), under its owner's name. */
export const DELIVERY_STATE_SUBLEVEL = 'delivery-state';

export type RecipientState = 'queued' | 'deferred' | 'delivered' | 'bounced';

export interface QueueRecipient {
  address: string;
  state: RecipientState;
  attempts: number;
  /** The last reply for this recipient: the remote host's, or ours (DNS, connection). */
  lastReply: string | null;
  /** ISO time of the next attempt, for queued and deferred recipients. */
  nextAttempt: string;
  /** The host that gave the last reply, name[address]:port. */
  remote?: string;
}

export interface QueueEntry {
  id: string;
  from: string;
  /** The login that sent it, if any: a suspended account's mail is held, not delivered. */
  login: string | null;
  held: boolean;
  recipients: QueueRecipient[];
  queued: string;
  size: number;
  /** Header fields put in front of the message when it is sent (the scanners' X-Spam-* verdict). */
  prefix?: string;
}

export const isPending = (r: QueueRecipient) => r.state === 'queued' || r.state === 'deferred';

/** The outbound queue's data. Its messages' files stay in the spool folder (moved by record only). */
export const QUEUE_DATA: DataDecl = {
  owner: 'delivery',
  sublevels: [
    {
      name: QUEUE_SUBLEVEL,
      describe: 'outbound messages and the state of each recipient',
      replicate: true,
      file: (id) => `spool/${id}.eml`,
      // After a partition only mail still to be sent is worth handing over.
      merge: (v) => (v as QueueEntry).recipients.some(isPending),
    },
    { name: DELIVERY_STATE_SUBLEVEL, describe: 'the smarthost hourly and daily budget', replicate: true },
  ],
};

/**
 * The durable outbound queue: one record per message with per-recipient state, in its own
 * sublevel. Only the router (adding) and the queue runner (working it) write here.
 */
export class OutboundQueue {
  constructor(readonly db: Db) {}

  private sub() {
    return sublevel(this.db, QUEUE_SUBLEVEL);
  }

  enqueueOp(entry: QueueEntry): BatchOp {
    return { type: 'put', sublevel: QUEUE_SUBLEVEL, key: entry.id, value: entry };
  }

  removeOp(id: string): BatchOp {
    return { type: 'del', sublevel: QUEUE_SUBLEVEL, key: id };
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
