// The sim board's GPIO: buttons pressed by `mlsd panel press` (or a test), LEDs kept in memory.
// A press makes the edges a real contact makes, bounce included, so the panel's debouncer is
// exercised on the sim board exactly as on the hardware.
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../log/logger.js';
import { LEDS, type ButtonName, type LedName, type SimGpioPanel } from './gpio.js';

const BOUNCE_GAP_MS = 1;
const DEFAULT_HOLD_MS = 80;
const DEFAULT_BOUNCES = 3;

export function simGpioPanel(log: Logger, clock: Clock = systemClock): SimGpioPanel {
  const listeners: ((button: ButtonName, pressed: boolean) => void)[] = [];
  const levels = Object.fromEntries(LEDS.map((l) => [l, false])) as Record<LedName, boolean>;
  let closed = false;
  /** Presses holding each button's contact now. */
  const held: Record<ButtonName, number> = { up: 0, down: 0, enter: 0, esc: 0 };
  const edge = (button: ButtonName, pressed: boolean) => {
    for (const fn of listeners) {
      try {
        fn(button, pressed);
      } catch (err) {
        log.error({ evt: 'gpio.listener.fail', button, err: (err as Error).message }, 'button listener threw');
      }
    }
  };
  const wait = (ms: number) => new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
  return {
    onButton(fn) {
      listeners.push(fn);
    },
    setLed(led, on) {
      levels[led] = on;
    },
    leds() {
      return { ...levels };
    },
    async press(button, opts = {}) {
      if (closed) throw new Error('gpio: the sim panel is closed');
      const bounces = Math.max(0, Math.min(opts.bounces ?? DEFAULT_BOUNCES, 1000));
      // One contact per button: presses made at the same time (several commands at once) hold
      // it together, as fingers on one key would. It closes with the first and opens after the
      // last; a press that finds it closed makes no edge of its own.
      if (held[button]++ === 0) {
        // The contact chatters on closing: closed, open, closed ... 1 ms apart, then stays closed.
        edge(button, true);
        for (let i = 0; i < bounces; i++) {
          await wait(BOUNCE_GAP_MS);
          edge(button, false);
          await wait(BOUNCE_GAP_MS);
          edge(button, true);
        }
      }
      await wait(opts.holdMs ?? DEFAULT_HOLD_MS);
      if (--held[button] > 0) return;
      // And on opening: one chatter, then open for good.
      edge(button, false);
      await wait(BOUNCE_GAP_MS);
      edge(button, true);
      await wait(BOUNCE_GAP_MS);
      edge(button, false);
    },
    async close() {
      closed = true;
      listeners.length = 0;
    },
  };
}
