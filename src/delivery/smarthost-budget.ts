import type { Config } from '../config/schema.js';
import { DAY_MS, HOUR_MS, type Clock, type Timer } from '../core/clock.js';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import { SlidingWindow } from '../policy/window.js';
import { sublevel, type Db } from '../store/db.js';
import type { RecordWriter } from '../store/durability.js';
import type { RcptOutcome } from './transport.js';

const STATE_SUBLEVEL = 'delivery-state';
const BUDGET_KEY = 'smarthost-budget';
/** How long sends may go unsaved: a crash forgets at most these seconds' worth. */
const SAVE_DELAY_MS = 2000;

// A smarthost answering like this is telling us to slow down, not that this message is bad:
// the whole smarthost route pauses instead of hammering it. A full mailbox (4.2.2) and a
// per-transaction recipient cap (4.5.3) are about one message and do not count.
const QUOTA_REPLY = /^4\d\d[ -](?!4\.2\.2|4\.5\.3)(?:4\.\d{1,3}\.\d{1,3} )?.*\b(rate|quota|limit|too many (messages|mails|connections)|exceed|throttl|slow down)/i;

export interface SmarthostBudgetDeps {
  /** The database the budget is saved in (the queue's). */
  db: Db;
  group: RecordWriter;
  config: () => Config;
  clock: Clock;
  emit: (ev: EventInput) => unknown;
  log: Logger;
}

export interface SmarthostBudgetStats {
  sentLastHour: number;
  sentToday: number;
  pausedUntil: string | null;
}

/**
 * What the smarthost still lets us send: its hourly and daily allowance (routing.smarthost.
 * maxPerHour / maxPerDay, counted per transaction at minute resolution) and the pause it
 * asks for with a quota reply, doubling while it keeps refusing.
 *
 * The counts survive a restart (a power cut must not hand the ISP a second day's worth of
 * mail). They are saved at most every few seconds: a crash forgets only those seconds' sends.
 */
export class SmarthostBudget {
  private readonly hour = new SlidingWindow(HOUR_MS, 60);
  private readonly day = new SlidingWindow(DAY_MS, 1440);
  private pausedUntil = 0;
  private pauseMs = 0;
  private saveTimer: Timer | null = null;

  constructor(private readonly deps: SmarthostBudgetDeps) {}

  async load(): Promise<void> {
    const saved = (await sublevel(this.deps.db, STATE_SUBLEVEL).get(BUDGET_KEY).catch(() => undefined)) as { day?: [number, number][]; hour?: [number, number][] } | undefined;
    if (saved?.hour) this.hour.restore(saved.hour);
    if (saved?.day) this.day.restore(saved.day);
  }

  /** Milliseconds before the smarthost route may start a transaction (0: now). */
  waitMs(now: number, cfg: Config): number {
    if (this.pausedUntil > now) return this.pausedUntil - now;
    const { maxPerHour, maxPerDay } = cfg.routing.smarthost;
    return Math.max(maxPerHour > 0 ? this.hour.waitBelow(now, maxPerHour) : 0, maxPerDay > 0 ? this.day.waitBelow(now, maxPerDay) : 0);
  }

  /** A transaction through the smarthost starts now. */
  spend(now: number): void {
    this.hour.add(now);
    this.day.add(now);
    this.saveSoon();
  }

  /**
   * Reads a finished smarthost transaction. The budget counts what the ISP saw: an attempt
   * that reached no smarthost (`remote` empty) is refunded. A quota reply pauses the route.
   */
  settle(startedAt: number, outcomes: RcptOutcome[], remote: string): void {
    if (!remote) {
      this.hour.remove(startedAt);
      this.day.remove(startedAt);
    }
    if (outcomes.some((o) => o.klass === 2)) {
      this.pauseMs = 0;
      return;
    }
    const quota = outcomes.find((o) => o.klass === 4 && QUOTA_REPLY.test(o.reply));
    if (!quota) return;
    const d = this.deps.config().delivery;
    this.pauseMs = Math.min(Math.max(this.pauseMs * 2, d.retryBaseSeconds * 1000), d.retryMaxSeconds * 1000);
    this.pausedUntil = this.deps.clock.now() + this.pauseMs;
    this.deps.log.warn({ evt: 'smarthost.throttled', reply: quota.reply, pauseMs: this.pauseMs }, 'smarthost asks us to slow down');
    this.deps.emit({
      kind: 'smarthost.throttled',
      severity: 'warning',
      text: `the smarthost refused mail over its quota (${quota.reply}); outbound mail pauses ${Math.round(this.pauseMs / 1000)} s`,
    });
  }

  /** Ends a quota pause now (the operator's flush); the hourly and daily counts stay. */
  resume(): void {
    this.pausedUntil = 0;
  }

  stats(now: number): SmarthostBudgetStats {
    return {
      sentLastHour: this.hour.count(now),
      sentToday: this.day.count(now),
      pausedUntil: this.pausedUntil > now ? new Date(this.pausedUntil).toISOString() : null,
    };
  }

  /** Saves what is not saved yet (at shutdown). */
  async stop(): Promise<void> {
    if (!this.saveTimer) return;
    this.deps.clock.clearTimeout(this.saveTimer);
    this.saveTimer = null;
    await this.save();
  }

  private saveSoon(): void {
    if (this.saveTimer) return;
    this.saveTimer = this.deps.clock
      .setTimeout(() => {
        this.saveTimer = null;
        void this.save();
      }, SAVE_DELAY_MS)
      .unref();
  }

  private async save(): Promise<void> {
    const now = this.deps.clock.now();
    const value = { hour: this.hour.snapshot(now), day: this.day.snapshot(now) };
    await this.deps.group
      .writeLazy([{ type: 'put', sublevel: STATE_SUBLEVEL, key: BUDGET_KEY, value }])
      .catch((err: Error) => this.deps.log.error({ evt: 'queue.budget.save', err: err.message }, 'could not save the smarthost budget'));
  }
}
