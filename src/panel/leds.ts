// The LEDs: which pattern each shows for what the box knows (a pure function, a golden table in
// test/unit/panel-leds.test.ts), and the blinker that drives the pins on the clock.
import type { Clock, Timer } from '../core/clock.js';
import { LEDS, type GpioPanel, type LedName } from '../hw/gpio.js';
import type { PanelFacts } from './facts.js';

export type LedPattern = 'off' | 'steady' | 'slow' | 'fast';
export type LedPatterns = Record<LedName, LedPattern>;

/** Disk use from which the disk LED is lit steady (the disk module's first usage alert). */
export const DISK_USAGE_WARN_PERCENT = 80;

/**
 * status:   fast = an alarm (critical event) not acknowledged, or the status cannot be read; steady = all is well.
 * ha:       off = no HA; steady = active and in sync; slow = standby; fast = out of sync, peer lost, link fault.
 * disk:     fast = failing or missing; slow = a restore running; steady = over 80 % used; off = fine.
 * activity: fast = mail moved since the last poll; off = quiet.
 */
export function ledPatterns(f: PanelFacts, mailMoved: boolean): LedPatterns {
  return { status: statusLed(f), ha: haLed(f), disk: diskLed(f), activity: mailMoved ? 'fast' : 'off' };
}

function statusLed(f: PanelFacts): LedPattern {
  if (f.pollError !== null) return 'fast';
  return (f.alarms?.unacknowledged ?? 0) > 0 ? 'fast' : 'steady';
}

function haLed(f: PanelFacts): LedPattern {
  const ha = f.ha;
  if (!ha) return 'off';
  const peerLost = ha.peerRole === 'unreachable' || ha.linkFault !== 'none';
  if (peerLost) return 'fast';
  if (ha.role === 'active') return ha.replication.startsWith('in sync') ? 'steady' : 'fast';
  if (ha.role === 'standby') return ha.replication === 'in sync' ? 'slow' : 'fast';
  // starting, syncing, outdated, fenced: not (yet) a pair that can take over.
  return 'fast';
}

function diskLed(f: PanelFacts): LedPattern {
  const d = f.disk;
  if (d && (d.failing || d.present === false)) return 'fast';
  if (f.restore?.running) return 'slow';
  if (d?.usedPercent != null && d.usedPercent >= DISK_USAGE_WARN_PERCENT) return 'steady';
  return 'off';
}

/** The tick of the blinker: fast blink toggles every tick (4 Hz), slow every 4 ticks (1 Hz). */
export const BLINK_TICK_MS = 125;

/** Whether an LED with `pattern` is lit at blinker tick `tick`. */
export function ledLevel(pattern: LedPattern, tick: number): boolean {
  switch (pattern) {
    case 'off':
      return false;
    case 'steady':
      return true;
    case 'fast':
      return tick % 2 === 0;
    case 'slow':
      return Math.floor(tick / 4) % 2 === 0;
  }
}

/** Drives the LEDs from their patterns; writes a pin only when its level changes. */
export class Blinker {
  private patterns: LedPatterns = { status: 'off', ha: 'off', disk: 'off', activity: 'off' };
  private tick = 0;
  private timer: Timer | null = null;

  constructor(
    private readonly gpio: GpioPanel,
    private readonly clock: Clock,
  ) {}

  start(): void {
    this.apply();
    this.timer = this.clock.setInterval(() => {
      this.tick = (this.tick + 1) % 8;
      this.apply();
    }, BLINK_TICK_MS);
    this.timer.unref();
  }

  set(patterns: LedPatterns): void {
    this.patterns = { ...patterns };
    this.apply();
  }

  current(): LedPatterns {
    return { ...this.patterns };
  }

  private apply(): void {
    const now = this.gpio.leds();
    for (const led of LEDS) {
      const on = ledLevel(this.patterns[led], this.tick);
      if (now[led] !== on) this.gpio.setLed(led, on);
    }
  }

  stop(): void {
    this.clock.clearInterval(this.timer);
    this.timer = null;
    for (const led of LEDS) this.gpio.setLed(led, false);
  }
}
