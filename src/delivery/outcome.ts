import type { Config } from '../config/schema.js';
import { DAY_MS, type Clock } from '../core/clock.js';
import type { Logger } from '../log/logger.js';
import type { RecordWriter } from '../store/durability.js';
import type { FailedRecipient } from './bounce.js';
import { isPending, type OutboundQueue, type QueueEntry, type QueueRecipient } from './queue.js';
import type { Job } from './schedule.js';
import type { RcptOutcome } from './transport.js';

/**
 * Told of recipients' final outcomes, for the traffic counts: copies written to a local
 * mailbox, recipients a remote MTA accepted, recipients failed for good (bounced).
 */
export type DeliveryTally = (outcome: 'local' | 'remote' | 'failed', recipients: number) => void;

const TOO_MANY_RECIPIENTS = /^452[ -](4\.5\.3\b|.*too many recipients)/i;

export interface OutcomeDeps {
  queue: OutboundQueue;
  group: RecordWriter;
  config: () => Config;
  clock: Clock;
  /** Mails a delivery status notification for these recipients (decides itself whether one may be sent). */
  bounce: (entry: QueueEntry, failed: FailedRecipient[]) => Promise<void>;
  /** Looks at the entry again at `at` (a deferred recipient's next attempt). */
  retryAt: (id: string, at: number) => void;
  /** True while the message is still queued (an operator may have deleted it meanwhile). */
  isQueued: (id: string) => boolean;
  /** Takes a message whose every recipient is done out of the queue and the spool. */
  drop: (entry: QueueEntry) => Promise<void>;
  tally?: DeliveryTally;
  log: Logger;
}

/**
 * What an attempt's replies mean for each recipient, made durable: delivered, deferred
 * with a doubling wait, or failed for good (a 5xx, or a 4xx past delivery.maxQueueDays)
 * and handed to the bounce writer for a DSN. A message with nothing left to do leaves.
 */
export class OutcomeRecorder {
  constructor(private readonly deps: OutcomeDeps) {}

  async record(job: Job, outcomes: RcptOutcome[], remote: string): Promise<void> {
    const { entry } = job;
    const now = this.deps.clock.now();
    const d = this.deps.config().delivery;
    const expired = now - Date.parse(entry.queued) >= d.maxQueueDays * DAY_MS;
    const failed: FailedRecipient[] = [];
    const bouncing: QueueRecipient[] = [];
    const accepted = outcomes.some((o) => o.klass === 2);
    let delivered = 0;
    for (const o of outcomes) {
      const r = job.rcpts.find((x) => x.address === o.rcpt) ?? entry.recipients.find((x) => x.address.toLowerCase() === o.rcpt.toLowerCase());
      if (!r) continue;
      r.attempts++;
      r.lastReply = o.reply;
      if (remote) r.remote = remote;
      if (o.klass === 2) {
        r.state = 'delivered';
        delivered++;
      }
      else if (o.klass === 5 || expired) {
        // Stays pending until its DSN is safely in the spool (below).
        bouncing.push(r);
        failed.push({
          recipient: r.address,
          status: o.klass === 5 ? enhancedStatus(o.reply, '5.0.0') : '4.4.7',
          diagnostic: o.klass === 5 ? o.reply : `delivery time expired after ${d.maxQueueDays} day(s) in the queue; last reply: ${o.reply}`,
          remoteMta: remote ? remote.replace(/\[.*$/, '') : undefined,
          action: 'failed',
          lastAttempt: new Date(now),
        });
      } else {
        // "452 4.5.3 too many recipients" next to accepted ones is the host's per-transaction
        // cap, not trouble: the rest go at once in a transaction of their own (RFC 5321 3.3).
        const wait = accepted && TOO_MANY_RECIPIENTS.test(o.reply) ? 0 : retryWait(r.attempts, d);
        this.defer(entry, r, now + wait);
      }
    }
    // The DSN is committed to the spool before the queue forgets the recipient: a crash in
    // between sends the DSN twice, never zero times. If it cannot be written (a full disk),
    // the recipient stays deferred and is bounced at a later attempt.
    if (failed.length) {
      try {
        await this.deps.bounce(entry, failed);
        for (const r of bouncing) r.state = 'bounced';
        this.deps.tally?.('failed', bouncing.length);
      } catch (err) {
        this.deps.log.error({ evt: 'bounce.fail', id: entry.id, rcpt: bouncing.map((r) => r.address), err: (err as Error).message }, 'could not write the DSN; will try again');
        for (const r of bouncing) this.defer(entry, r, now + d.retryBaseSeconds * 1000);
      }
    }
    this.deps.tally?.(job.kind === 'local' ? 'local' : 'remote', delivered);
    if (!this.deps.isQueued(entry.id)) return;
    if (entry.recipients.every((r) => !isPending(r))) {
      await this.deps.drop(entry);
      this.deps.log.info(
        { evt: 'queue.done', id: entry.id, delivered: entry.recipients.filter((r) => r.state === 'delivered').length, bounced: entry.recipients.filter((r) => r.state === 'bounced').length },
        'message left the queue',
      );
    } else {
      await this.deps.group.writeLazy([this.deps.queue.enqueueOp(entry)]);
    }
  }

  private defer(entry: QueueEntry, r: QueueRecipient, at: number): void {
    r.state = 'deferred';
    r.nextAttempt = new Date(at).toISOString();
    this.deps.retryAt(entry.id, at);
  }
}

/** The wait after a recipient's `attempts`-th attempt: retryBaseSeconds, doubling, at most retryMaxSeconds. */
function retryWait(attempts: number, d: Config['delivery']): number {
  return Math.min(d.retryBaseSeconds * 1000 * 2 ** (attempts - 1), d.retryMaxSeconds * 1000);
}

/** The enhanced status code of a reply ("550 5.1.1 ..." → 5.1.1), or a fallback. */
export function enhancedStatus(reply: string, fallback: string): string {
  return /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply)?.[1] ?? fallback;
}
