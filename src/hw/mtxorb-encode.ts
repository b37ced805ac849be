// The Matrix Orbital LK-series command set, as bytes: pure functions from "what the device shows"
// and "what it should show" to what to send. The bytes are those of lcdproc's MtxOrb driver
// (server/drivers/MtxOrb.c): every command is 0xFE then a letter, some with argument bytes.
// lcdproc is the reference because it has driven these displays for twenty years; the LK manual
// agrees on every command used here.
import type { Grid } from './lcd.js';

/** The command prefix. In text it would start a command, so text never carries it (see toRom in lcd.ts). */
export const CMD = 0xfe;

export const MTXORB = {
  clear: 0x58, // 'X': clear the screen, cursor home
  goTo: 0x47, // 'G' col row, both 1-based
  backlightOn: 0x42, // 'B' minutes (0 = stay on)
  backlightOff: 0x46, // 'F'
  wrapOff: 0x44, // 'D': auto line wrap off
  scrollOff: 0x52, // 'R': auto scroll off (no scrolling the screen up past the last row)
  underlineOff: 0x4b, // 'K': underline cursor off
  blockOff: 0x54, // 'T': blinking block cursor off
  contrast: 0x50, // 'P' value 0..255
} as const;

/** lcdproc's default contrast, 480 per mille of 255: readable on the LK displays it was tuned on. */
export const DEFAULT_CONTRAST = 122;

/** The settings, as lcdproc's init sends them but with wrap off and the cursor hidden. Sent at every
 *  (re)open after a clear, and again at each refresh (without the clear, so nothing flickers). */
export function settingsBytes(contrast: number): Buffer {
  const c = MTXORB;
  return Buffer.from([
    CMD, c.wrapOff,
    CMD, c.scrollOff,
    CMD, c.underlineOff,
    CMD, c.blockOff,
    CMD, c.contrast, Math.max(0, Math.min(255, Math.round(contrast))),
  ]);
}

export const clearBytes = (): Buffer => Buffer.from([CMD, MTXORB.clear]);

export function backlightBytes(on: boolean): Buffer {
  return Buffer.from(on ? [CMD, MTXORB.backlightOn, 0] : [CMD, MTXORB.backlightOff]);
}

/**
 * What turns `shown` into `wanted`: per row, one go-to and the run from the first to the last
 * changed character (lcdproc's flush does the same). `shown` null means the device was just
 * cleared: every non-blank run is written. Both grids must come from toGrid (same size, ROM text).
 */
export function diffBytes(shown: Grid | null, wanted: Grid): Buffer {
  const parts: Buffer[] = [];
  wanted.forEach((row, r) => {
    const before = shown ? shown[r]! : ' '.repeat(row.length);
    let first = 0;
    while (first < row.length && row[first] === before[first]) first++;
    if (first === row.length) return;
    let last = row.length - 1;
    while (row[last] === before[last]) last--;
    parts.push(Buffer.from([CMD, MTXORB.goTo, first + 1, r + 1]), Buffer.from(row.slice(first, last + 1), 'latin1'));
  });
  return Buffer.concat(parts);
}

/** Every row in full, whatever the device is believed to show (the periodic refresh). */
export function fullBytes(wanted: Grid): Buffer {
  return Buffer.concat(wanted.flatMap((row, r) => [Buffer.from([CMD, MTXORB.goTo, 1, r + 1]), Buffer.from(row, 'latin1')]));
}
