import { access, unlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import { systemClock, type Clock, type Timer } from '../core/clock.js';
import type { RecordWriter } from '../store/durability.js';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import type { DnsClient } from './dns.js';
import type { Destination, Transaction, TransactionResult } from './transport.js';
import type { OutboundQueue, QueueEntry } from './queue.js';
import type { FailedRecipient } from './bounce.js';
import { BodyCache, DeliveryAttempt } from './attempt.js';
import { OutcomeRecorder, type DeliveryTally } from './outcome.js';
import { Routes } from './routes.js';
import { DeliveryScheduler, type Job } from './schedule.js';
import { SmarthostBudget } from './smarthost-budget.js';

export { enhancedStatus } from './outcome.js';

export interface RunnerDeps {
  queue: OutboundQueue;
  group: RecordWriter;
  config: () => Config;
  dns: DnsClient;
  client: { send(dest: Destination, tx: Transaction): Promise<TransactionResult> };
  dataPath: (id: string) => string;
  /** DKIM-Signature header field(s) to put in front of the message, or ''. */
  sign: (entry: QueueEntry, message: () => Readable) => Promise<string>;
  /** Mails a delivery status notification for these recipients (decides itself whether one may be sent). */
  bounce: (entry: QueueEntry, failed: FailedRecipient[]) => Promise<void>;
  /** A queued recipient of a local domain (its mailbox was gone at routing): true if delivered now. */
  deliverLocal: (entry: QueueEntry, rcpt: string, path: string) => Promise<boolean>;
  isLocalDomain: (domain: string) => boolean;
  /** True while the DNSBL check says our own address is listed and mail should go via the smarthost. */
  reroute: () => boolean;
  emit: (ev: EventInput) => unknown;
  /** Told of recipients delivered or failed for good (the traffic counts). */
  tally?: DeliveryTally;
  log: Logger;
  /** Every now() and timer of the runner and its parts (default: the system's). */
  clock?: Clock;
}

export interface QueueStats {
  messages: number;
  held: number;
  recipients: Record<'queued' | 'deferred', number>;
  activeConnections: number;
  smarthost: { sentLastHour: number; sentToday: number; pausedUntil: string | null; rerouted: boolean };
}

/**
 * Works the outbound queue: picks recipients whose time has come, groups those of one
 * message that share a destination into one SMTP transaction, respects the connection
 * caps, the per-domain rate and the smarthost's budget, and records each outcome durably
 * before it moves on, so a restart neither loses a recipient nor sends again to one a
 * peer has already taken.
 *
 * This class keeps the queued messages and coordinates its parts: the scheduler (what
 * goes now), the smarthost budget, one delivery attempt, and the outcome recorder.
 */
export class QueueRunner {
  private readonly entries = new Map<string, QueueEntry>();
  private readonly clock: Clock;
  private readonly routes: Routes;
  private readonly budget: SmarthostBudget;
  private readonly scheduler: DeliveryScheduler;
  private readonly bodies = new BodyCache();
  private readonly attempt: DeliveryAttempt;
  private readonly outcomes: OutcomeRecorder;
  /** Transactions and local deliveries under way. */
  private running = 0;
  /** An attempt ran since the runner last said it was idle (it says so once per burst). */
  private workedSinceIdle = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly deps: RunnerDeps) {
    const clock = (this.clock = deps.clock ?? systemClock);
    const { config, log, emit, group, queue } = deps;
    this.routes = new Routes({ isLocalDomain: deps.isLocalDomain, reroute: deps.reroute, emit, log });
    this.budget = new SmarthostBudget({ db: queue.db, group, config, clock, emit, log });
    this.scheduler = new DeliveryScheduler({ clock, config, routes: this.routes, budget: this.budget, entry: (id) => this.entries.get(id), wake: () => this.pump() });
    const { dns, client, dataPath, sign, deliverLocal, bounce } = deps;
    this.attempt = new DeliveryAttempt({ config, clock, dns, client, dataPath, sign, deliverLocal, bodies: this.bodies, log });
    this.outcomes = new OutcomeRecorder({
      queue, group, config, clock, bounce, log, tally: deps.tally,
      retryAt: (id, at) => this.scheduler.retryAt(id, at),
      isQueued: (id) => this.entries.has(id),
      drop: (entry) => this.drop(entry),
    });
  }

  /** Loads the durable queue and starts working it. */
  async start(): Promise<void> {
    await this.budget.load();
    for (const e of await this.deps.queue.list()) {
      // A record whose file is gone (a power loss between its removal and the file's)
      // has nothing left to send.
      if (!(await access(this.deps.dataPath(e.id)).then(() => true, () => false))) {
        this.deps.log.error({ evt: 'queue.orphan', id: e.id }, 'queued message has no data file; dropping its record');
        await this.deps.group.writeLazy([this.deps.queue.removeOp(e.id)]);
        continue;
      }
      this.track(e);
    }
    this.deps.log.info({ evt: 'queue.start', messages: this.entries.size }, 'queue runner started');
    this.pump();
  }

  /**
   * A message the router has just queued (its record is already durable). Its body, when
   * given, serves the first attempt from memory: re-reading the spool file would queue
   * behind the commits' fsyncs on libuv's few pool threads.
   */
  add(entry: QueueEntry, body?: Buffer[]): void {
    if (body) this.bodies.keep(entry.id, body);
    this.track(entry);
    this.pump();
  }

  /** Routing inputs changed (config, a DNSBL listing): look again at what is due. */
  routingChanged(): void {
    this.pump();
  }

  list(): QueueEntry[] {
    return [...this.entries.values()];
  }

  get(id: string): QueueEntry | undefined {
    return this.entries.get(id);
  }

  /** Makes every waiting recipient due now (mlsd queue flush); held mail stays held. */
  flush(): number {
    const now = this.clock.now();
    let n = 0;
    this.budget.resume();
    for (const e of this.entries.values()) if (!e.held) n += this.scheduler.makeDue(e, now);
    this.pump();
    return n;
  }

  /** Makes one message's waiting recipients due now (mlsd queue retry ID). */
  retry(id: string): number {
    const e = this.entries.get(id);
    if (!e) throw new Error(`queue: no message ${id}`);
    if (e.held) throw new Error(`queue: ${id} is held (its sender ${e.login} is suspended); unlock the account first`);
    const n = this.scheduler.makeDue(e, this.clock.now());
    this.pump();
    return n;
  }

  /** Removes a message from the queue for good (mlsd queue delete ID). */
  async remove(id: string): Promise<QueueEntry> {
    const e = this.entries.get(id);
    if (!e) throw new Error(`queue: no message ${id}`);
    if (this.scheduler.isInFlight(id)) throw new Error(`queue: ${id} is being delivered right now; try again in a moment`);
    await this.drop(e);
    return e;
  }

  /** Holds or releases every queued message of a login (account suspension); returns how many. */
  async hold(login: string, held: boolean): Promise<number> {
    const changed = [...this.entries.values()].filter((e) => e.login === login && e.held !== held);
    for (const e of changed) e.held = held;
    if (changed.length) await this.deps.group.write(changed.map((e) => this.deps.queue.enqueueOp(e)));
    if (!held) for (const e of changed) this.scheduler.markReady(e.id);
    this.pump();
    return changed.length;
  }

  stats(): QueueStats {
    const now = this.clock.now();
    const recipients = { queued: 0, deferred: 0 };
    let held = 0;
    for (const e of this.entries.values()) {
      if (e.held) held++;
      for (const r of e.recipients) if (r.state === 'queued' || r.state === 'deferred') recipients[r.state]++;
    }
    return {
      messages: this.entries.size,
      held,
      recipients,
      activeConnections: this.scheduler.active,
      smarthost: { ...this.budget.stats(now), rerouted: this.routes.rerouting(this.deps.config()) },
    };
  }

  /** Stops starting transactions; resolves when those under way have finished (or after `waitMs`). */
  async stop(waitMs = 10_000): Promise<void> {
    this.stopped = true;
    this.scheduler.stop();
    if (this.running > 0) {
      let timeout: Timer | null = null;
      const timedOut = new Promise<void>((r) => (timeout = this.clock.setTimeout(r, waitMs).unref()));
      await Promise.race([new Promise<void>((r) => this.idleWaiters.push(r)), timedOut]);
      this.clock.clearTimeout(timeout);
    }
    await this.budget.stop();
  }

  /**
   * Resolves when the runner has settled: no attempt under way and nothing due now (what is
   * left waits for its time, a budget or a rate, on the clock). Tests wait on it.
   */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private isIdle(): boolean {
    return this.running === 0 && !this.scheduler.hasReady;
  }

  private track(e: QueueEntry): void {
    this.entries.set(e.id, e);
    this.scheduler.track(e, this.clock.now());
  }

  private pump(): void {
    if (this.stopped) {
      if (this.running === 0) this.wakeIdle();
      return;
    }
    this.scheduler.startDue(this.clock.now(), this.deps.config(), (job) => this.startJob(job));
    if (!this.isIdle()) return;
    if (this.workedSinceIdle) {
      this.workedSinceIdle = false;
      // The point after which nothing more happens until a due time, a rate or new mail:
      // what was decided can be checked here (tests wait for this line).
      this.deps.log.info({ evt: 'queue.idle', messages: this.entries.size }, 'queue runner idle: nothing under way, nothing due');
    }
    this.wakeIdle();
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    w.forEach((f) => f());
  }

  private startJob(job: Job): void {
    this.running++;
    this.workedSinceIdle = true;
    void this.run(job)
      .catch((err: Error) => this.deps.log.error({ evt: 'delivery.fail', id: job.entry.id, err: err.message }, 'could not record a delivery attempt'))
      .finally(() => {
        this.running--;
        this.scheduler.finished(job);
        this.pump();
      });
  }

  private async run(job: Job): Promise<void> {
    const result = await this.attempt.run(job);
    const { outcomes, remote } = result;
    if (job.kind === 'smarthost') this.budget.settle(job.startedAt, outcomes, remote);
    this.bodies.forget(job.entry.id);
    // Reported after it is recorded: a "delivered" in the log is a copy a restart will not
    // send again. (A crash between the peer's 250 and the record still sends it twice, as
    // with any MTA: RFC 5321 6.1 prefers a duplicate to a loss.) If recording fails, the
    // replies are still told, then delivery.fail.
    try {
      await this.outcomes.record(job, outcomes, remote);
    } finally {
      this.attempt.report(job, result);
    }
  }

  /**
   * Forgets a message. Outcome records are written without an fsync of their own, as
   * Postfix does not fsync a delivered queue file's removal: they survive a crash of the
   * process (the kernel has them), and only a power loss can take one back, which means a
   * second delivery attempt, never a lost message.
   */
  private async drop(entry: QueueEntry): Promise<void> {
    this.bodies.forget(entry.id);
    this.entries.delete(entry.id);
    this.scheduler.forget(entry.id);
    await this.deps.group.writeLazy([this.deps.queue.removeOp(entry.id)]);
    await unlink(this.deps.dataPath(entry.id)).catch(() => undefined);
  }
}
