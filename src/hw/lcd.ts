// The port for the front-panel character display. The panel hands it whole screens (rows of
// text); the adapter (lcd-mtxorb.ts: Matrix Orbital LK-series command set over a SerialLine)
// turns them into device commands and writes only what changed. The character ROM has only
// ASCII: anything outside 0x20-0x7e is shown as '?', so no text (a hostname, an event) can
// smuggle a command byte (0xfe) to the device.

export interface CharacterDisplay {
  readonly cols: number;
  readonly rows: number;
  /** Shows `lines` (missing rows blank, each padded or cut to `cols`). Never throws: a line that is down is retried by the line. */
  show(lines: string[]): void;
  /** Backlight on or off. */
  backlight(on: boolean): void;
  /** The screen as last handed to show(), `rows` strings of `cols` characters (what `mlsd panel screen` prints). */
  screen(): string[];
  close(): Promise<void>;
}

/** A screen as the device shows it: `rows` strings of `cols` printable ASCII characters. */
export type Grid = string[];

/**
 * One line of text as the character ROM can show it: each character (a code point, so a Chinese
 * character or an emoji is one cell) outside 0x20..0x7e becomes '?', then cut or padded to cols.
 * This is what keeps 0xFE in a hostname or an event from reaching the device as a command, and a
 * control character from moving the cursor.
 */
export function toRom(text: unknown, cols: number): string {
  let out = '';
  for (const ch of typeof text === 'string' ? text : String(text ?? '')) {
    if (out.length === cols) break;
    const c = ch.codePointAt(0) ?? 0;
    out += c >= 0x20 && c <= 0x7e ? ch : '?';
  }
  return out.padEnd(cols, ' ');
}

/** `lines` as a grid: missing rows blank, extra rows dropped, each row through toRom. */
export function toGrid(lines: readonly unknown[], cols: number, rows: number): Grid {
  return Array.from({ length: rows }, (_, r) => toRom(lines[r], cols));
}
