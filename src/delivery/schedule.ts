import type { Config } from '../config/schema.js';
import type { Clock, Timer } from '../core/clock.js';
import { domainOf } from '../core/names.js';
import { SlidingMinute } from '../policy/window.js';
import { MinHeap } from './heap.js';
import { isPending, type QueueEntry, type QueueRecipient } from './queue.js';
import type { RouteKind, Routes } from './routes.js';
import type { SmarthostBudget } from './smarthost-budget.js';

/** One SMTP transaction (or one batch of local deliveries): a message's recipients on one route. */
export interface Job {
  entry: QueueEntry;
  key: string;
  kind: RouteKind;
  domain: string;
  rcpts: QueueRecipient[];
  /** When the transaction started (what the smarthost budget counted). */
  startedAt: number;
}

export interface SchedulerDeps {
  clock: Clock;
  config: () => Config;
  routes: Routes;
  budget: SmarthostBudget;
  /** The queued message of an id, or undefined once it has left the queue. */
  entry: (id: string) => QueueEntry | undefined;
  /** A time the scheduler waits for has come: the runner should look again. */
  wake: () => void;
}

/** Longest delay a Node timer takes; a later wake-up is simply re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Decides which recipients go now: those whose time has come, grouped per message and
 * route into jobs, within the connection caps (delivery.maxConnections and
 * maxConnectionsPerDomain), the per-domain pace (delivery.perDomainMessagesPerMinute) and
 * the smarthost's budget. What must wait is woken by one timer at the earliest due time.
 */
export class DeliveryScheduler {
  /** Entries that may have a recipient due now, not yet sorted into a route's bucket. */
  private readonly ready = new Set<string>();
  /**
   * Due entries per route, in arrival order: a busy route is passed over at once, however
   * long its backlog, instead of every due message being looked at on every event.
   */
  private readonly buckets = new Map<string, { kind: RouteKind; domain: string; ids: Set<string> }>();
  private routingSignature = '';
  /** Future due times (ms) of entries, earliest first. */
  private readonly later = new MinHeap<string>();
  /** Recipients under way, per entry. */
  private readonly inflight = new Map<string, Set<string>>();
  private readonly activeByKey = new Map<string, number>();
  private activeCount = 0;
  /** Transactions per recipient domain in the last minute, for delivery.perDomainMessagesPerMinute. */
  private readonly domainSends = new Map<string, SlidingMinute>();
  private timer: Timer | null = null;
  private timerAt = Infinity;

  constructor(private readonly deps: SchedulerDeps) {}

  /** Outbound connections in use (local deliveries take none). */
  get active(): number {
    return this.activeCount;
  }

  /** True while some entry may have a recipient due that has not been looked at yet. */
  get hasReady(): boolean {
    return this.ready.size > 0;
  }

  /** Notes every distinct due time of an entry's pending recipients (they can differ). */
  track(e: QueueEntry, now: number): void {
    for (const t of new Set(e.recipients.filter(isPending).map((r) => Date.parse(r.nextAttempt)))) {
      if (t <= now) this.ready.add(e.id);
      else this.later.push(t, e.id);
    }
  }

  /** Makes an entry's pending recipients due now; returns how many. */
  makeDue(e: QueueEntry, now: number): number {
    let n = 0;
    for (const r of e.recipients) {
      if (!isPending(r)) continue;
      r.nextAttempt = new Date(now).toISOString();
      n++;
    }
    if (n) this.ready.add(e.id);
    return n;
  }

  /** An entry whose recipients' due times are unchanged but may go now (a released hold). */
  markReady(id: string): void {
    this.ready.add(id);
  }

  /** Looks at an entry again at `at` (a deferral's next attempt). */
  retryAt(id: string, at: number): void {
    this.later.push(at, id);
  }

  /** Forgets a message that left the queue (heap and bucket entries of it are skipped later). */
  forget(id: string): void {
    this.ready.delete(id);
  }

  isInFlight(id: string): boolean {
    return this.inflight.has(id);
  }

  /** Starts, through `start`, every job that may go now, and arms the timer for what waits. */
  startDue(now: number, cfg: Config, start: (job: Job) => void): void {
    while (this.later.size && this.later.peekKey()! <= now) this.ready.add(this.later.pop()!);
    // A routing change (mode, overrides, local domains, a DNSBL reroute) sorts everything again.
    const signature = this.deps.routes.signature(cfg);
    if (signature !== this.routingSignature) {
      this.routingSignature = signature;
      for (const b of this.buckets.values()) for (const id of b.ids) this.ready.add(id);
      this.buckets.clear();
    }
    this.sortReady(now, cfg);
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
        const e = this.deps.entry(id);
        if (!e || e.held) continue;
        const flying = this.inflight.get(id);
        const rcpts = e.recipients.filter(
          (r) => isPending(r) && Date.parse(r.nextAttempt) <= now && !flying?.has(r.address) && this.deps.routes.of(domainOf(r.address), cfg).key === key,
        );
        if (!rcpts.length) continue;
        const job: Job = { entry: e, key, kind: b.kind, domain: b.domain, rcpts, startedAt: now };
        this.claim(job, now);
        start(job);
      }
      if (b.ids.size === 0) this.buckets.delete(key);
    }
    this.armTimer(wakeAt);
  }

  /** A job has finished (however it went): its recipients and connection are free again. */
  finished(job: Job): void {
    if (job.kind !== 'local') {
      this.activeCount--;
      const n = (this.activeByKey.get(job.key) ?? 1) - 1;
      if (n > 0) this.activeByKey.set(job.key, n);
      else this.activeByKey.delete(job.key);
    }
    const id = job.entry.id;
    const flying = this.inflight.get(id);
    if (!flying) return;
    for (const r of job.rcpts) flying.delete(r.address);
    if (flying.size === 0) this.inflight.delete(id);
  }

  stop(): void {
    this.deps.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  private sortReady(now: number, cfg: Config): void {
    for (const id of this.ready) {
      const e = this.deps.entry(id);
      if (!e || e.held) continue;
      for (const r of e.recipients) {
        if (!isPending(r) || Date.parse(r.nextAttempt) > now) continue;
        const domain = domainOf(r.address);
        const { key, kind } = this.deps.routes.of(domain, cfg);
        let b = this.buckets.get(key);
        // One transaction per destination: in mx mode a domain, through a smarthost everyone.
        if (!b) this.buckets.set(key, (b = { kind, domain: kind === 'smarthost' ? '' : domain, ids: new Set() }));
        b.ids.add(id);
      }
    }
    this.ready.clear();
  }

  /** Why a route may not start a transaction now: 'busy' (connection cap) or ms to wait. */
  private gate(key: string, kind: RouteKind, domain: string, cfg: Config, now: number): 'busy' | number {
    if (kind === 'local') return 0;
    if (this.activeCount >= cfg.delivery.maxConnections) return 'busy';
    if ((this.activeByKey.get(key) ?? 0) >= cfg.delivery.maxConnectionsPerDomain) return 'busy';
    if (kind === 'smarthost') return this.deps.budget.waitMs(now, cfg);
    const perMinute = cfg.delivery.perDomainMessagesPerMinute;
    return perMinute > 0 ? (this.domainSends.get(domain)?.waitBelow(now, perMinute) ?? 0) : 0;
  }

  /** Counts a starting job against the caps, the pace and the budget before the next gate. */
  private claim(job: Job, now: number): void {
    const flying = this.inflight.get(job.entry.id) ?? new Set<string>();
    for (const r of job.rcpts) flying.add(r.address);
    this.inflight.set(job.entry.id, flying);
    if (job.kind === 'local') return;
    this.activeCount++;
    this.activeByKey.set(job.key, (this.activeByKey.get(job.key) ?? 0) + 1);
    if (job.kind === 'smarthost') {
      this.deps.budget.spend(now);
    } else if (this.deps.config().delivery.perDomainMessagesPerMinute > 0) {
      let w = this.domainSends.get(job.domain);
      if (!w) {
        if (this.domainSends.size > 10_000) for (const [d, x] of this.domainSends) if (x.idle(now)) this.domainSends.delete(d);
        this.domainSends.set(job.domain, (w = new SlidingMinute()));
      }
      w.add(now);
    }
  }

  private armTimer(wakeAt: number): void {
    const next = Math.min(this.later.peekKey() ?? Infinity, wakeAt);
    if (next === Infinity || next >= this.timerAt) return;
    const { clock } = this.deps;
    clock.clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = clock
      .setTimeout(() => {
        this.timer = null;
        this.timerAt = Infinity;
        this.deps.wake();
      }, Math.min(Math.max(next - clock.now(), 0), MAX_TIMER_MS))
      .unref();
  }
}
