// The CharacterDisplay adapter for Matrix Orbital LK-series displays (and the many compatibles)
// on a serial line. It keeps two screens: the one wanted (the last show()) and the one the device
// is believed to show, and one writer that turns the difference into bytes (mtxorb-encode.ts).
//
// Why one writer and no queue: the panel may call show() far faster than 19200 baud carries a
// screen (a key held, an event storm). Each write sends what changed between the device's screen
// and the latest wanted one, so a burst of a thousand show() calls costs two writes, not a
// thousand, and nothing waits in memory.
//
// Why the device's screen is forgotten on every open of the line: a line that was lost (a cable
// pulled, a USB adapter replugged) may come back to a display that was power-cycled meanwhile and
// shows nothing, with wrap and cursor at their defaults. So each open clears, re-sends the
// settings and draws the whole screen. A UART shows no sign of a display power-cycled on an
// unbroken cable, so every refreshMs the settings and every row are sent again (no clear, so a
// display that kept its screen shows no flicker).
import { systemClock, type Clock, type Timer } from '../core/clock.js';
import type { Logger } from '../log/logger.js';
import { toGrid, type CharacterDisplay, type Grid } from './lcd.js';
import {
  DEFAULT_CONTRAST,
  backlightBytes,
  clearBytes,
  diffBytes,
  fullBytes,
  settingsBytes,
} from './mtxorb-encode.js';
import { SerialLineError, type SerialLine } from './serial.js';

export interface MtxorbOptions {
  cols: number;
  rows: number;
  log: Logger;
  clock?: Clock;
  /** 0..255, default lcdproc's (122). */
  contrast?: number;
  /** A write not taken by the OS within this is a cable fault (the line reopens). Default 2000. */
  writeTimeoutMs?: number;
  /** Every this often, the settings and the whole screen are sent again; 0 = never. Default 60000. */
  refreshMs?: number;
}

/** What the device is believed to show; grid null: unknown (just opened, or a write failed). */
interface DeviceState {
  grid: Grid | null;
  backlight: boolean | null;
}

const UNKNOWN: DeviceState = { grid: null, backlight: null };

/** The display on `line`, which it starts now and stops at close(). */
export function mtxorbDisplay(line: SerialLine, opts: MtxorbOptions): CharacterDisplay {
  const { cols, rows, log } = opts;
  // The go-to command carries column and row in one byte each; the board schema allows 8..40 x 1..4.
  if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || cols > 40 || rows < 1 || rows > 4) {
    throw new Error(`lcd: a ${cols}x${rows} display is not a size the LK series makes (1..40 x 1..4)`);
  }
  const clock = opts.clock ?? systemClock;
  const contrast = opts.contrast ?? DEFAULT_CONTRAST;
  const writeTimeoutMs = opts.writeTimeoutMs ?? 2000;
  const refreshMs = opts.refreshMs ?? 60_000;
  const device = line.device;

  let wanted: Grid = toGrid([], cols, rows);
  let wantedBacklight = true;
  let shown: DeviceState = UNKNOWN;
  let refreshDue = false;
  /** Counts opens and losses: a write that lands after one of them says nothing of the device. */
  let generation = 0;
  let writing: Promise<void> | null = null;
  let kicked = false;
  /** A write failed and the line has not been written to since: one warning per outage. */
  let outage = false;
  /** close() was called: no new writer starts (close runs the last one itself). */
  let closing = false;
  let closed = false;

  /** The next bytes to send, or an empty buffer when the device shows what is wanted. */
  function nextBytes(grid: Grid, backlight: boolean): Buffer {
    if (shown.grid === null) return Buffer.concat([clearBytes(), settingsBytes(contrast), backlightBytes(backlight), diffBytes(null, grid)]);
    if (refreshDue) return Buffer.concat([settingsBytes(contrast), backlightBytes(backlight), fullBytes(grid)]);
    const light = backlight === shown.backlight ? Buffer.alloc(0) : backlightBytes(backlight);
    return Buffer.concat([light, diffBytes(shown.grid, grid)]);
  }

  async function writeLoop(): Promise<void> {
    while (!closed && line.isOpen) {
      const gen = generation;
      const grid = wanted;
      const backlight = wantedBacklight;
      const wasRefresh = refreshDue && shown.grid !== null;
      const bytes = nextBytes(grid, backlight);
      if (bytes.length === 0) return;
      try {
        await line.write(bytes, writeTimeoutMs);
      } catch (err) {
        if (!outage) {
          outage = true;
          const kind = err instanceof SerialLineError ? err.kind : 'error';
          log.warn({ evt: 'lcd.writeFailed', device, kind, reason: (err as Error).message });
        }
        // The line reports the loss before the write's rejection arrives, so the loop goes round
        // and stops at !line.isOpen; should it be open again already, it redraws on the new one.
        if (gen !== generation) continue;
        shown = UNKNOWN;
        return; // the line reopens by itself; its open redraws
      }
      if (gen !== generation) continue;
      shown = { grid, backlight };
      if (wasRefresh) refreshDue = false;
      if (outage) {
        outage = false;
        log.info({ evt: 'lcd.redrawn', device });
      }
    }
  }

  /** Runs the writer soon (after the show() calls of this tick), unless it is running: it loops
   *  until the device shows the latest wanted screen. */
  function kick(): void {
    if (kicked || writing || closing) return;
    kicked = true;
    queueMicrotask(() => {
      kicked = false;
      if (writing || closing) return;
      // Whatever is asked for while it runs (show, backlight, a reopen) it finds on its next turn.
      writing = writeLoop().finally(() => (writing = null));
    });
  }

  line.onState((open) => {
    generation++;
    shown = UNKNOWN;
    if (open) kick();
  });
  // The display's keypad codes are not used (the buttons are on GPIO), but reading makes the line
  // see a hang-up (a USB adapter pulled) at once rather than at the next write.
  line.onData(() => undefined);
  line.start();

  let refreshTimer: Timer | null = null;
  if (refreshMs > 0) {
    refreshTimer = clock.setInterval(() => {
      refreshDue = true;
      kick();
    }, refreshMs);
    refreshTimer.unref();
  }

  return {
    cols,
    rows,
    show(lines) {
      wanted = toGrid(Array.isArray(lines) ? lines : [], cols, rows);
      kick();
    },
    backlight(on) {
      wantedBacklight = on;
      kick();
    },
    screen() {
      return [...wanted];
    },
    async close() {
      if (closing) return;
      closing = true;
      clock.clearInterval(refreshTimer);
      while (writing) await writing;
      // What was asked for last reaches the glass before the line goes: the panel blanks the
      // screen and the light as it stops, and a display left showing a frozen status (or a new
      // admin password) after the daemon stopped would mislead whoever reads it. A write that
      // hangs is cut by writeTimeoutMs.
      if (line.isOpen) await writeLoop();
      closed = true;
      await line.stop();
    },
  };
}
