import { createReadStream } from 'node:fs';
import { access, unlink } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import { sublevel, type GroupCommitter } from '../store/db.js';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import type { DnsClient } from './dns.js';
import { HostUnusable, type Destination, type RcptOutcome, type Transaction, type TransactionResult } from './transport.js';
import { isPending, type OutboundQueue, type QueueEntry, type QueueRecipient } from './queue.js';
import type { FailedRecipient } from './bounce.js';
import { MinHeap } from './heap.js';
import { domainOf } from '../core/names.js';
import { SlidingMinute, SlidingWindow } from '../policy/window.js';

export interface RunnerDeps {
  queue: OutboundQueue;
  group: GroupCommitter;
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
  log: Logger;
  now?: () => number;
}

const STATE_SUBLEVEL = 'delivery-state';
const BUDGET_KEY = 'smarthost-budget';

type RouteKind = 'mx' | 'smarthost' | 'fixed' | 'local';

interface Job {
  entry: QueueEntry;
  key: string;
  kind: RouteKind;
  domain: string;
  rcpts: QueueRecipient[];
  /** When the transaction started (what the smarthost budget counted). */
  startedAt?: number;
}

export interface QueueStats {
  messages: number;
  held: number;
  recipients: Record<'queued' | 'deferred', number>;
  activeConnections: number;
  smarthost: { sentLastHour: number; sentToday: number; pausedUntil: string | null; rerouted: boolean };
}

const HOUR = 3600_000;
const BODY_BUDGET = 16 * 1024 * 1024;
const DAY = 24 * HOUR;

// A smarthost answering like this is telling us to slow down, not that this message is bad:
// the whole smarthost route pauses instead of hammering it. A full mailbox (4.2.2) and a
// per-transaction recipient cap (4.5.3) are about one message and do not count.
const QUOTA_REPLY = /^4\d\d[ -](?!4\.2\.2|4\.5\.3)(?:4\.\d{1,3}\.\d{1,3} )?.*\b(rate|quota|limit|too many (messages|mails|connections)|exceed|throttl|slow down)/i;
const TOO_MANY_RECIPIENTS = /^452[ -](4\.5\.3\b|.*too many recipients)/i;

/**
 * Works the outbound queue: picks recipients whose time has come, groups those of one
 * message that share a destination into one SMTP transaction, respects the connection
 * caps, the per-domain rate and the smarthost's budget, and records each outcome durably
 * before it moves on, so a restart neither loses a recipient nor sends again to one a
 * peer has already taken.
 */
export class QueueRunner {
  private readonly entries = new Map<string, QueueEntry>();
  /** Entries that may have a recipient due now, not yet sorted into a route's bucket. */
  private readonly ready = new Set<string>();
  /**
   * Due entries per route, in arrival order: a busy route is passed over at once, however
   * long its backlog, instead of every due message being looked at on every event.
   */
  private readonly buckets = new Map<string, { kind: RouteKind; domain: string; ids: Set<string> }>();
  private routingSignature = '';
  private readonly later = new MinHeap<string>();
  private readonly inflight = new Map<string, Set<string>>();
  private readonly bodies = new Map<string, Buffer[]>();
  private bodyBytes = 0;
  private readonly activeByKey = new Map<string, number>();
  /** Outbound connections in use (local deliveries take none). */
  private active = 0;
  /** Transactions and local deliveries under way. */
  private running = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  /** Transactions per recipient domain in the last minute, for delivery.perDomainMessagesPerMinute. */
  private readonly domainSends = new Map<string, SlidingMinute>();
  /** Transactions through the smarthost, for its hourly and daily budget (minute resolution). */
  private readonly smarthostHour = new SlidingWindow(HOUR, 60);
  private readonly smarthostDay = new SlidingWindow(DAY, 1440);
  private smarthostPausedUntil = 0;
  private smarthostPauseMs = 0;
  private wasRerouted = false;
  private readonly now: () => number;

  constructor(private readonly deps: RunnerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Loads the durable queue and starts working it. */
  async start(): Promise<void> {
    await this.loadBudget();
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
    const bytes = body?.reduce((n, x) => n + x.length, 0) ?? 0;
    if (body && this.bodyBytes + bytes <= BODY_BUDGET) {
      this.bodies.set(entry.id, body);
      this.bodyBytes += bytes;
    }
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
    const now = this.now();
    let n = 0;
    this.smarthostPausedUntil = 0;
    for (const e of this.entries.values()) if (!e.held) n += this.makeDue(e, now);
    this.pump();
    return n;
  }

  /** Makes one message's waiting recipients due now (mlsd queue retry ID). */
  retry(id: string): number {
    const e = this.entries.get(id);
    if (!e) throw new Error(`queue: no message ${id}`);
    if (e.held) throw new Error(`queue: ${id} is held (its sender ${e.login} is suspended); unlock the account first`);
    const n = this.makeDue(e, this.now());
    this.pump();
    return n;
  }

  /** Removes a message from the queue for good (mlsd queue delete ID). */
  async remove(id: string): Promise<QueueEntry> {
    const e = this.entries.get(id);
    if (!e) throw new Error(`queue: no message ${id}`);
    if (this.inflight.has(id)) throw new Error(`queue: ${id} is being delivered right now; try again in a moment`);
    await this.drop(e);
    return e;
  }

  /** Holds or releases every queued message of a login (account suspension); returns how many. */
  async hold(login: string, held: boolean): Promise<number> {
    const changed = [...this.entries.values()].filter((e) => e.login === login && e.held !== held);
    for (const e of changed) e.held = held;
    if (changed.length) await this.deps.group.write(changed.map((e) => this.deps.queue.enqueueOp(e)));
    if (!held) for (const e of changed) this.ready.add(e.id);
    this.pump();
    return changed.length;
  }

  stats(): QueueStats {
    const now = this.now();
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
      activeConnections: this.active,
      smarthost: {
        sentLastHour: this.smarthostHour.count(now),
        sentToday: this.smarthostDay.count(now),
        pausedUntil: this.smarthostPausedUntil > now ? new Date(this.smarthostPausedUntil).toISOString() : null,
        rerouted: this.rerouting(this.deps.config()),
      },
    };
  }

  /** Stops starting transactions; resolves when those under way have finished (or after `waitMs`). */
  async stop(waitMs = 10_000): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.running > 0) await Promise.race([new Promise<void>((r) => this.idleWaiters.push(r)), new Promise((r) => setTimeout(r, waitMs).unref())]);
    if (this.budgetTimer) {
      clearTimeout(this.budgetTimer);
      this.budgetTimer = null;
      await this.saveBudget();
    }
  }

  /**
   * The smarthost budget survives a restart (a power cut must not hand the ISP a second
   * day's worth of mail). Saved at most every few seconds: a crash forgets only the sends
   * of those seconds.
   */
  private budgetTimer: NodeJS.Timeout | null = null;

  private async loadBudget(): Promise<void> {
    const saved = (await sublevel(this.deps.queue.db, STATE_SUBLEVEL).get(BUDGET_KEY).catch(() => undefined)) as { day?: [number, number][]; hour?: [number, number][] } | undefined;
    if (saved?.hour) this.smarthostHour.restore(saved.hour);
    if (saved?.day) this.smarthostDay.restore(saved.day);
  }

  private saveBudgetSoon(): void {
    if (this.budgetTimer) return;
    this.budgetTimer = setTimeout(() => {
      this.budgetTimer = null;
      void this.saveBudget();
    }, 2000);
    this.budgetTimer.unref();
  }

  private async saveBudget(): Promise<void> {
    const now = this.now();
    const value = { hour: this.smarthostHour.snapshot(now), day: this.smarthostDay.snapshot(now) };
    await this.deps.group
      .writeLazy([{ type: 'put', sublevel: STATE_SUBLEVEL, key: BUDGET_KEY, value }])
      .catch((err: Error) => this.deps.log.error({ evt: 'queue.budget.save', err: err.message }, 'could not save the smarthost budget'));
  }

  /** Resolves when no transaction is under way and nothing is due (tests use it). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Nothing under way and nothing that could start now (what is left waits for a budget or a rate). */
  private isIdle(): boolean {
    return this.running === 0 && this.ready.size === 0;
  }

  private track(e: QueueEntry): void {
    this.entries.set(e.id, e);
    // Every distinct due time: recipients of one message can be due at different times.
    const now = this.now();
    for (const t of new Set(e.recipients.filter(isPending).map((r) => Date.parse(r.nextAttempt)))) {
      if (t <= now) this.ready.add(e.id);
      else this.later.push(t, e.id);
    }
  }

  private makeDue(e: QueueEntry, now: number): number {
    let n = 0;
    for (const r of e.recipients) {
      if (!isPending(r)) continue;
      r.nextAttempt = new Date(now).toISOString();
      n++;
    }
    if (n) this.ready.add(e.id);
    return n;
  }

  private routeOf(domain: string, cfg: Config): { key: string; kind: RouteKind } {
    if (this.deps.isLocalDomain(domain)) return { key: 'local', kind: 'local' };
    if (cfg.routing.domains[domain]) return { key: `fixed:${domain}`, kind: 'fixed' };
    if (cfg.routing.mode === 'smarthost' || this.rerouting(cfg)) return { key: 'smarthost', kind: 'smarthost' };
    return { key: `mx:${domain}`, kind: 'mx' };
  }

  private rerouting(cfg: Config): boolean {
    const on = cfg.routing.mode === 'mx' && cfg.dnsbl.autoReroute && cfg.routing.smarthost.host !== '' && this.deps.reroute();
    if (on !== this.wasRerouted) {
      this.wasRerouted = on;
      this.deps.emit(
        on
          ? { kind: 'routing.rerouted', severity: 'warning', text: `our address is on a blacklist: outbound mail now goes through the smarthost ${cfg.routing.smarthost.host}` }
          : { kind: 'routing.restored', severity: 'info', text: 'outbound mail goes to MX hosts directly again' },
      );
      this.deps.log.warn({ evt: on ? 'routing.rerouted' : 'routing.restored', smarthost: cfg.routing.smarthost.host }, 'outbound route switched');
    }
    return on;
  }

  /** Why a route may not start a transaction now: 'busy' (connection cap) or ms to wait. */
  private gate(key: string, kind: RouteKind, domain: string, cfg: Config, now: number): 'busy' | number {
    if (kind === 'local') return 0;
    if (this.active >= cfg.delivery.maxConnections) return 'busy';
    if ((this.activeByKey.get(key) ?? 0) >= cfg.delivery.maxConnectionsPerDomain) return 'busy';
    if (kind === 'smarthost') {
      if (this.smarthostPausedUntil > now) return this.smarthostPausedUntil - now;
      const { maxPerHour, maxPerDay } = cfg.routing.smarthost;
      const wait = Math.max(maxPerHour > 0 ? this.smarthostHour.waitBelow(now, maxPerHour) : 0, maxPerDay > 0 ? this.smarthostDay.waitBelow(now, maxPerDay) : 0);
      return wait;
    }
    const perMinute = cfg.delivery.perDomainMessagesPerMinute;
    return perMinute > 0 ? (this.domainSends.get(domain)?.waitBelow(now, perMinute) ?? 0) : 0;
  }

  private pump(): void {
    if (this.stopped) {
      if (this.running === 0) this.wakeIdle();
      return;
    }
    const now = this.now();
    const cfg = this.deps.config();
    while (this.later.size && this.later.peekKey()! <= now) this.ready.add(this.later.pop()!);
    // A routing change (mode, overrides, local domains, a DNSBL reroute) sorts everything again.
    const signature = JSON.stringify([cfg.routing.mode, Object.keys(cfg.routing.domains), cfg.domains, this.rerouting(cfg)]);
    if (signature !== this.routingSignature) {
      this.routingSignature = signature;
      for (const b of this.buckets.values()) for (const id of b.ids) this.ready.add(id);
      this.buckets.clear();
    }
    for (const id of this.ready) {
      const e = this.entries.get(id);
      if (!e || e.held) continue;
      for (const r of e.recipients) {
        if (!isPending(r) || Date.parse(r.nextAttempt) > now) continue;
        const domain = domainOf(r.address);
        const { key, kind } = this.routeOf(domain, cfg);
        let b = this.buckets.get(key);
        // One transaction per destination: in mx mode a domain, through a smarthost everyone.
        if (!b) this.buckets.set(key, (b = { kind, domain: kind === 'smarthost' ? '' : domain, ids: new Set() }));
        b.ids.add(id);
      }
    }
    this.ready.clear();
    let wakeAt = Infinity;
    for (const [key, b] of this.buckets) {
      while (b.ids.size) {
        const gate = this.gate(key, b.kind, b.domain, cfg, now);
        if (gate === 'busy') break;
        if (gate > 0) {
          // Budget, pause or rate: the route waits in memory, no attempt is counted.
          wakeAt = Math.min(wakeAt, now + gate);
          break;
        }
        const id: string = b.ids.values().next().value!;
        b.ids.delete(id);
        const e = this.entries.get(id);
        if (!e || e.held) continue;
        const flying = this.inflight.get(id);
        const rcpts = e.recipients.filter(
          (r) => isPending(r) && Date.parse(r.nextAttempt) <= now && !flying?.has(r.address) && this.routeOf(domainOf(r.address), cfg).key === key,
        );
        if (rcpts.length) this.startJob({ entry: e, key, kind: b.kind, domain: b.domain, rcpts }, now);
      }
      if (b.ids.size === 0) this.buckets.delete(key);
    }
    this.armTimer(wakeAt);
    if (this.isIdle()) this.wakeIdle();
  }

  private armTimer(wakeAt: number): void {
    const next = Math.min(this.later.peekKey() ?? Infinity, wakeAt);
    if (next === Infinity || next >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.pump();
    }, Math.min(Math.max(next - this.now(), 0), 2 ** 31 - 1));
    this.timer.unref();
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    w.forEach((f) => f());
  }

  private startJob(job: Job, now: number): void {
    const id = job.entry.id;
    const flying = this.inflight.get(id) ?? new Set<string>();
    for (const r of job.rcpts) flying.add(r.address);
    this.inflight.set(id, flying);
    this.running++;
    job.startedAt = now;
    if (job.kind !== 'local') {
      this.active++;
      this.activeByKey.set(job.key, (this.activeByKey.get(job.key) ?? 0) + 1);
      if (job.kind === 'smarthost') {
        this.smarthostHour.add(now);
        this.smarthostDay.add(now);
        this.saveBudgetSoon();
      } else if (this.deps.config().delivery.perDomainMessagesPerMinute > 0) {
        let w = this.domainSends.get(job.domain);
        if (!w) {
          if (this.domainSends.size > 10_000) for (const [d, x] of this.domainSends) if (x.idle(now)) this.domainSends.delete(d);
          this.domainSends.set(job.domain, (w = new SlidingMinute()));
        }
        w.add(now);
      }
    }
    void this.run(job)
      .catch((err: Error) => this.deps.log.error({ evt: 'delivery.fail', id, err: err.message }, 'could not record a delivery attempt'))
      .finally(() => {
        this.running--;
        if (job.kind !== 'local') {
          this.active--;
          const n = (this.activeByKey.get(job.key) ?? 1) - 1;
          if (n > 0) this.activeByKey.set(job.key, n);
          else this.activeByKey.delete(job.key);
        }
        for (const r of job.rcpts) flying.delete(r.address);
        if (flying.size === 0) this.inflight.delete(id);
        this.pump();
      });
  }

  private async run(job: Job): Promise<void> {
    const { entry } = job;
    const path = this.deps.dataPath(entry.id);
    const started = this.now();
    let outcomes: RcptOutcome[];
    let remote = '';
    try {
      if (job.kind === 'local') {
        outcomes = [];
        for (const r of job.rcpts) {
          const ok = await this.deps.deliverLocal(entry, r.address, path).catch((err: Error) => err);
          outcomes.push(
            ok instanceof Error
              ? { rcpt: r.address, klass: 4, reply: `451 4.3.0 mailbox delivery failed: ${ok.message}` }
              : { rcpt: r.address, klass: ok ? 2 : 5, reply: ok ? '250 2.0.0 delivered to mailbox' : '550 5.1.1 mailbox unavailable: the account no longer exists' },
          );
        }
      } else {
        const cfg = this.deps.config();
        const dests = await this.destinations(job, cfg);
        if ('klass' in dests) {
          outcomes = job.rcpts.map((r) => ({ rcpt: r.address, klass: dests.klass, reply: dests.reply }));
        } else {
          const held = this.bodies.get(entry.id);
          const body = held && entry.prefix ? [Buffer.from(entry.prefix), ...held] : held;
          // The message as it leaves: our added header fields, then the spooled message.
          const source = () => (body ? Readable.from(body) : messageStream(entry.prefix ?? '', path));
          const dkim = await this.deps.sign(entry, source);
          const tx: Transaction = {
            from: entry.from,
            rcpts: job.rcpts.map((r) => r.address),
            size: entry.size + Buffer.byteLength(entry.prefix ?? '') + Buffer.byteLength(dkim),
            message: () => (dkim ? Readable.from((async function* () { yield Buffer.from(dkim); yield* source(); })()) : source()),
          };
          let result: TransactionResult | null = null;
          let last: HostUnusable | null = null;
          for (const d of dests) {
            try {
              result = await this.deps.client.send(d, tx);
              break;
            } catch (err) {
              if (!(err instanceof HostUnusable)) throw err;
              last = err;
            }
          }
          outcomes = result ? result.outcomes : tx.rcpts.map((rcpt) => ({ rcpt, klass: 4 as const, reply: last?.reply ?? '451 4.4.1 no host could be reached' }));
          remote = result?.remote ?? '';
        }
      }
    } catch (err) {
      outcomes = job.rcpts.map((r) => ({ rcpt: r.address, klass: 4 as const, reply: `451 4.3.0 local error: ${(err as Error).message}` }));
    }
    const ms = this.now() - started;
    for (const o of outcomes) {
      this.deps.log.info(
        { evt: 'delivery.attempt', id: entry.id, rcpt: o.rcpt, route: job.key, remote: remote || null, reply: o.reply, result: o.klass === 2 ? 'delivered' : o.klass === 4 ? 'deferred' : 'bounced', ms },
        'delivery attempt',
      );
    }
    if (job.kind === 'smarthost') {
      // The budget counts what the ISP saw: an attempt that reached no smarthost is refunded.
      if (!remote) {
        this.smarthostHour.remove(job.startedAt ?? started);
        this.smarthostDay.remove(job.startedAt ?? started);
      }
      this.noteSmarthost(outcomes);
    }
    this.forgetBody(entry.id);
    await this.record(job, outcomes, remote);
  }

  private noteSmarthost(outcomes: RcptOutcome[]): void {
    if (outcomes.some((o) => o.klass === 2)) {
      this.smarthostPauseMs = 0;
      return;
    }
    const quota = outcomes.find((o) => o.klass === 4 && QUOTA_REPLY.test(o.reply));
    if (!quota) return;
    const d = this.deps.config().delivery;
    this.smarthostPauseMs = Math.min(Math.max(this.smarthostPauseMs * 2, d.retryBaseSeconds * 1000), d.retryMaxSeconds * 1000);
    this.smarthostPausedUntil = this.now() + this.smarthostPauseMs;
    this.deps.log.warn({ evt: 'smarthost.throttled', reply: quota.reply, pauseMs: this.smarthostPauseMs }, 'smarthost asks us to slow down');
    this.deps.emit({
      kind: 'smarthost.throttled',
      severity: 'warning',
      text: `the smarthost refused mail over its quota (${quota.reply}); outbound mail pauses ${Math.round(this.smarthostPauseMs / 1000)} s`,
    });
  }

  /** Where a job's transaction goes, or the reply every recipient gets when there is nowhere. */
  private async destinations(job: Job, cfg: Config): Promise<Destination[] | { klass: 4 | 5; reply: string }> {
    if (job.kind === 'smarthost' || job.kind === 'fixed') {
      const r = job.kind === 'smarthost' ? cfg.routing.smarthost : cfg.routing.domains[job.domain]!;
      const auth = job.kind === 'smarthost' && cfg.routing.smarthost.user ? { user: cfg.routing.smarthost.user, pass: cfg.routing.smarthost.password } : undefined;
      let addresses: string[];
      try {
        addresses = await this.deps.dns.addresses(r.host);
      } catch (err) {
        return { klass: 4, reply: `451 4.4.3 cannot resolve ${r.host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
      }
      if (!addresses.length) return { klass: 4, reply: `451 4.4.3 ${r.host} has no address` };
      return addresses.map((address) => ({ address, port: r.port, name: r.host, tls: r.tls, verifyCertificate: r.verifyCertificate, auth }));
    }
    const answer = await this.deps.dns.mx(job.domain);
    switch (answer.kind) {
      case 'nxdomain':
        return { klass: 5, reply: `550 5.1.2 ${job.domain}: domain not found` };
      case 'nullmx':
        return { klass: 5, reply: `556 5.1.10 ${job.domain} does not accept mail (null MX)` };
      case 'temporary':
        return { klass: 4, reply: `451 4.4.3 ${answer.error}` };
      case 'hosts':
        return answer.hosts.flatMap((h) =>
          h.addresses.map((address) => ({ address, port: 25, name: h.name, tls: 'opportunistic' as const, verifyCertificate: false })),
        );
    }
  }

  /** Applies a transaction's outcomes, bounces what failed for good, and makes it durable. */
  private async record(job: Job, outcomes: RcptOutcome[], remote: string): Promise<void> {
    const { entry } = job;
    const now = this.now();
    const d = this.deps.config().delivery;
    const expired = now - Date.parse(entry.queued) >= d.maxQueueDays * DAY;
    const failed: FailedRecipient[] = [];
    const bouncing: QueueRecipient[] = [];
    const accepted = outcomes.some((o) => o.klass === 2);
    for (const o of outcomes) {
      const r = job.rcpts.find((x) => x.address === o.rcpt) ?? entry.recipients.find((x) => x.address.toLowerCase() === o.rcpt.toLowerCase());
      if (!r) continue;
      r.attempts++;
      r.lastReply = o.reply;
      if (remote) r.remote = remote;
      if (o.klass === 2) r.state = 'delivered';
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
        const wait = accepted && TOO_MANY_RECIPIENTS.test(o.reply) ? 0 : Math.min(d.retryBaseSeconds * 1000 * 2 ** (r.attempts - 1), d.retryMaxSeconds * 1000);
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
      } catch (err) {
        this.deps.log.error({ evt: 'bounce.fail', id: entry.id, rcpt: bouncing.map((r) => r.address), err: (err as Error).message }, 'could not write the DSN; will try again');
        for (const r of bouncing) this.defer(entry, r, now + d.retryBaseSeconds * 1000);
      }
    }
    if (!this.entries.has(entry.id)) return;
    if (entry.recipients.every((r) => !isPending(r))) {
      await this.drop(entry);
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
    this.later.push(at, entry.id);
  }

  private forgetBody(id: string): void {
    const b = this.bodies.get(id);
    if (!b) return;
    this.bodies.delete(id);
    this.bodyBytes -= b.reduce((n, x) => n + x.length, 0);
  }

  /**
   * Forgets a message. Outcome records are written without an fsync of their own, as
   * Postfix does not fsync a delivered queue file's removal: they survive a crash of the
   * process (the kernel has them), and only a power loss can take one back, which means a
   * second delivery attempt, never a lost message.
   */
  private async drop(entry: QueueEntry): Promise<void> {
    this.forgetBody(entry.id);
    this.entries.delete(entry.id);
    this.ready.delete(entry.id);
    await this.deps.group.writeLazy([this.deps.queue.removeOp(entry.id)]);
    await unlink(this.deps.dataPath(entry.id)).catch(() => undefined);
  }
}

/** The enhanced status code of a reply ("550 5.1.1 ..." → 5.1.1), or a fallback. */
export function enhancedStatus(reply: string, fallback: string): string {
  return /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply)?.[1] ?? fallback;
}

function messageStream(prefix: string, path: string): Readable {
  return Readable.from(
    (async function* () {
      if (prefix) yield Buffer.from(prefix);
      yield* createReadStream(path, { highWaterMark: 64 * 1024 });
    })(),
  );
}
