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
  /**
   * Sign with the sender's domain key: someone vouched for the sender when it was routed
   * (a login, a relay.allowIps client, mlsd's own mail). Records written before this field
   * existed: see mayBeSigned.
   */
  dkim?: boolean;
  recipients: QueueRecipient[];
  queued: string;
  size: number;
  /** Header fields put in front of the message when it is sent (the scanners' X-Spam-* verdict). */
  prefix?: string;
}

/**
 * Whether an entry may leave DKIM-signed. A forged local sender must never get our
 * signature. Records from before `dkim` existed count as vouched for only when a login
 * sent them or they are bounces (mlsd's own, null sender).
 */
export function mayBeSigned(entry: Pick<QueueEntry, 'dkim' | 'login' | 'from'>): boolean {
  return entry.dkim ?? (!!entry.login || entry.from === '');
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
