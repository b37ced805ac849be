import type { Clock, Timer } from '../core/clock.js';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import { describeIdentity, diskIdentity, failurePredicted, sameDisk, type DiskIdentity, type DiskInventory, type DiskReading, type DiskSpace } from '../hw/disks.js';
import type { KnownDiskStore } from './identity.js';

export interface DiskSettings {
  pollMinutes: number;
  maxTemperatureC: number;
  /** The usage levels (percent) that alert, lowest first; the last one also refuses new mail. */
  usageLevels: number[];
}

export interface DiskState {
  polledAt: string | null;
  disk: DiskReading | null;
  space: DiskSpace | null;
  usedPercent: number | null;
  /** The highest usage level reached (0 below the lowest). */
  usageLevel: number;
  failing: boolean;
  hot: boolean;
  error: string | null;
}

export function usedPercent(s: DiskSpace): number {
  return s.totalBytes > 0 ? ((s.totalBytes - s.availableBytes) / s.totalBytes) * 100 : 0;
}

/**
 * Watches the data disk: reads it every `pollMinutes` (on the injected clock) and when
 * asked (`mlsd disk poll`, called by the udev rule at hot-plug), and emits one event per
 * change of state, not per poll: a disk that stays failing is reported once, a counter
 * that keeps growing at each rise. The alerts capability turns the events into mail.
 */
export class DiskMonitor {
  private state: DiskState = { polledAt: null, disk: null, space: null, usedPercent: null, usageLevel: 0, failing: false, hot: false, error: null };
  /**
   * The last disk seen present: a different one is a replaced disk. Read from `known` at the
   * first poll, so a disk swapped while the box was off is noticed as one swapped running.
   */
  private known: DiskIdentity | null = null;
  /** What `known` holds on the config flash (null: nothing yet, or it could not be written). */
  private saved: DiskIdentity | null = null;
  private loaded: Promise<void> | null = null;
  private timer: Timer | null = null;
  private running: Promise<DiskState> | null = null;

  constructor(
    private readonly deps: {
      inventory: DiskInventory;
      settings: () => DiskSettings;
      emit: (ev: EventInput) => void;
      clock: Clock;
      log: Logger;
      /** Where the identity is kept between runs (none: only within this run). */
      known?: KnownDiskStore;
    },
  ) {}

  start(): void {
    void this.poll();
    this.schedule();
  }

  /** Re-arms the poll timer (a changed pollMinutes applies from now). */
  schedule(): void {
    this.deps.clock.clearInterval(this.timer);
    this.timer = this.deps.clock.setInterval(() => void this.poll(), this.deps.settings().pollMinutes * 60_000).unref();
  }

  /** Stops the timer and waits for a poll under way (its events and file are written before the database closes). */
  async stop(): Promise<void> {
    this.deps.clock.clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  status(): DiskState {
    return this.state;
  }

  /** One poll; polls asked for while one runs share it (a udev burst is one read). */
  poll(): Promise<DiskState> {
    this.running ??= this.read().finally(() => (this.running = null));
    return this.running;
  }

  private async read(): Promise<DiskState> {
    const { inventory, log } = this.deps;
    await (this.loaded ??= this.loadKnown());
    const at = new Date(this.deps.clock.now()).toISOString();
    let disk: DiskReading;
    let space: DiskSpace | null = null;
    try {
      disk = await inventory.dataDisk();
      space = disk.present ? await inventory.space() : null;
    } catch (err) {
      const message = (err as Error).message;
      log.error({ evt: 'disk.poll.fail', err: message }, 'could not read the data disk');
      this.state = { ...this.state, polledAt: at, error: message };
      return this.state;
    }
    this.compare(this.state, disk, space);
    await this.saveKnown();
    log.info({ evt: 'disk.poll', present: disk.present, model: disk.model, usedPercent: this.state.usedPercent }, 'data disk read');
    return this.state;
  }

  private async loadKnown(): Promise<void> {
    const store = this.deps.known;
    if (!store) return;
    const r = await store.load().catch((err: Error) => ({ identity: null, problem: err.message }));
    // Unreadable is as never recorded: the disk seen now is recorded (and said in the log).
    if (r.problem) this.deps.log.warn({ evt: 'disk.identity.unreadable', err: r.problem }, 'the recorded data disk identity cannot be read; recording the disk seen now');
    this.known = this.saved = r.identity;
  }

  /** Writes `known` when it differs from the file; a failed write is tried again at the next poll. */
  private async saveKnown(): Promise<void> {
    const { known: k, saved: s } = this;
    const store = this.deps.known;
    if (!store || !k || (s && s.model === k.model && s.serial === k.serial && s.wwn === k.wwn)) return;
    try {
      await store.save(k);
      this.saved = k;
      this.deps.log.info({ evt: 'disk.identity.saved', model: k.model, serial: k.serial, wwn: k.wwn }, 'data disk identity recorded');
    } catch (err) {
      this.deps.log.error({ evt: 'disk.identity.fail', err: (err as Error).message }, 'could not record the data disk identity');
    }
  }

  private compare(prev: DiskState, disk: DiskReading, space: DiskSpace | null): void {
    const s = this.deps.settings();
    const emit = this.deps.emit;
    const name = disk.present ? `${disk.model} (${disk.device}, serial ${disk.serial || '?'})` : disk.device;
    const next: DiskState = { polledAt: '', disk, space, usedPercent: null, usageLevel: 0, failing: false, hot: false, error: null };
    next.polledAt = new Date(this.deps.clock.now()).toISOString();
    if (!disk.present) {
      if (!prev.disk || prev.disk.present) {
        emit({ kind: 'disk.missing', severity: 'critical', text: `the data disk is missing: ${disk.messages.join('; ') || 'not found'}`, data: { device: disk.device } });
      }
      this.state = { ...next, usageLevel: prev.usageLevel };
      return;
    }
    const identity = diskIdentity(disk)!;
    const was = this.known;
    const replaced = was !== null && !sameDisk(was, identity);
    if (replaced) {
      // Both identities in the data: what replaces a disk's contents (issue 15) needs them.
      emit({
        kind: 'disk.replaced',
        severity: 'warning',
        text: `the data disk was replaced: was ${describeIdentity(was)}, now ${describeIdentity(identity)} (${disk.device})`,
        data: { device: disk.device, was, now: identity },
      });
    }
    // A WWN read once is kept when a later read of the same disk lacks it.
    this.known = was && !replaced ? { ...identity, wwn: identity.wwn || was.wwn } : identity;
    // Counters of another disk say nothing about this one.
    const before = replaced || !prev.disk?.present ? null : prev.disk.smart;
    const smart = disk.smart;
    next.failing = failurePredicted(smart);
    if (next.failing && !prev.failing) {
      emit({
        kind: 'disk.failurePredicted',
        severity: 'critical',
        text: `SMART predicts the data disk will fail: ${name}`,
        data: { device: disk.device, passed: smart?.passed ?? null, nvmeCriticalWarning: smart?.nvmeCriticalWarning ?? null },
      });
    }
    if (smart && before) {
      const rose = (k: 'reallocatedSectors' | 'pendingSectors' | 'offlineUncorrectable') => smart[k] !== null && before[k] !== null && smart[k]! > before[k]!;
      const risen = (['reallocatedSectors', 'pendingSectors', 'offlineUncorrectable'] as const).filter(rose);
      if (risen.length) {
        emit({
          kind: 'disk.sectorsRising',
          severity: 'warning',
          text: `bad sectors on the data disk are rising: ${risen.map((k) => `${k} ${before[k]} -> ${smart[k]}`).join(', ')}`,
          data: Object.fromEntries(risen.map((k) => [k, smart[k]])),
        });
      }
    }
    const temp = smart?.temperatureC ?? null;
    // Two degrees of hysteresis: a disk hovering at the limit is one alert, not one per poll.
    next.hot = temp !== null && (temp > s.maxTemperatureC || (prev.hot && temp > s.maxTemperatureC - 2));
    if (next.hot && !prev.hot) {
      emit({ kind: 'disk.temperature', severity: 'warning', text: `the data disk is at ${temp} °C, over disk.maxTemperatureC ${s.maxTemperatureC} °C`, data: { temperatureC: temp, maxTemperatureC: s.maxTemperatureC } });
    }
    if (space) {
      next.usedPercent = Math.round(usedPercent(space) * 10) / 10;
      next.usageLevel = [...s.usageLevels].sort((a, b) => a - b).filter((l) => usedPercent(space) >= l).pop() ?? 0;
      if (next.usageLevel > prev.usageLevel) {
        const top = Math.max(...s.usageLevels);
        emit({
          kind: 'disk.usage',
          severity: next.usageLevel >= top ? 'critical' : 'warning',
          text: `the data disk is ${next.usedPercent}% full (over ${next.usageLevel}%)${next.usageLevel >= top ? '; new mail is refused with 452 4.3.1' : ''}`,
          limit: `${next.usageLevel}%`,
          data: { usedPercent: next.usedPercent, availableBytes: space.availableBytes, totalBytes: space.totalBytes },
        });
      }
    }
    this.state = next;
  }
}
