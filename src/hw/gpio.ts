// The port for the front panel's GPIO: four buttons in, a few LEDs out. Code above hw/ talks to
// this interface only; the adapter (gpio-onoff.ts on a real board, gpio-sim.ts on the sim board)
// is chosen in main.ts from the board file. Levels are raw: a button reports every edge the pin
// sees, bounce included; debouncing is the panel's job, so the sim can feed it real bounce.

export type ButtonName = 'up' | 'down' | 'enter' | 'esc';
export const BUTTONS: readonly ButtonName[] = ['up', 'down', 'enter', 'esc'];

/** The LEDs every board has: status, HA role, disk alarm, mail activity. */
export type LedName = 'status' | 'ha' | 'disk' | 'activity';
export const LEDS: readonly LedName[] = ['status', 'ha', 'disk', 'activity'];

export interface GpioPanel {
  /** Called on every edge of a button's pin: true when the contact closes (pressed), false when it opens. */
  onButton(fn: (button: ButtonName, pressed: boolean) => void): void;
  /** Drives one LED; never throws (a failed write is logged by the adapter). */
  setLed(led: LedName, on: boolean): void;
  /** The level last written to each LED. */
  leds(): Record<LedName, boolean>;
  close(): Promise<void>;
}

/** The sim adapter's extra: a press as a finger makes it, bounce and all. */
export interface SimGpioPanel extends GpioPanel {
  /** Closes the contact (with `bounces` extra open/close edges 1 ms apart), holds it holdMs, and opens it. */
  press(button: ButtonName, opts?: { holdMs?: number; bounces?: number }): Promise<void>;
}
