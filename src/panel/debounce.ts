// Button debouncing on the injected clock. A contact chatters for a few milliseconds when it
// closes and opens; the pin reports every edge. A press counts once the contact has stayed
// closed for `debounceMs`, and the next press only after it has stayed open as long: every edge
// restarts the wait, so neither bounce nor a flood of edges (a failing switch, a noisy line)
// ever yields more presses than the finger made.
import type { Clock, Timer } from '../core/clock.js';
import { BUTTONS, type ButtonName } from '../hw/gpio.js';

interface ButtonState {
  /** The level of the last edge: true while closed. */
  closed: boolean;
  /** A press has been counted and the contact has not yet been stably open since. */
  latched: boolean;
  timer: Timer | null;
}

export class Debouncer {
  private readonly buttons = new Map<ButtonName, ButtonState>(BUTTONS.map((b) => [b, { closed: false, latched: false, timer: null }]));

  constructor(
    private readonly clock: Clock,
    private readonly debounceMs: () => number,
    private readonly onPress: (button: ButtonName) => void,
  ) {}

  /** One edge as the pin reported it. */
  edge(button: ButtonName, closed: boolean): void {
    const s = this.buttons.get(button);
    if (!s) return; // not one of ours: a pin the adapter should not have reported
    s.closed = closed;
    this.clock.clearTimeout(s.timer);
    s.timer = this.clock.setTimeout(() => this.settled(button, s), this.debounceMs());
  }

  private settled(button: ButtonName, s: ButtonState): void {
    s.timer = null;
    if (!s.closed) {
      s.latched = false;
      return;
    }
    if (s.latched) return;
    s.latched = true;
    this.onPress(button);
  }

  stop(): void {
    for (const s of this.buttons.values()) this.clock.clearTimeout(s.timer);
  }
}
