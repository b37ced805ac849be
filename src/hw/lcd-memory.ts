// A character display that only keeps its screen: the panel's display when the board has no LCD
// device (the sim board's "pty") and the config names none (`panel.lcdDevice`). `mlsd panel
// screen` reads it, so a person on `make run` still sees what the LCD would show.
import type { CharacterDisplay } from './lcd.js';

/** Pads or cuts `line` to `cols` characters, anything outside printable ASCII as '?'. */
export function lcdRow(line: string, cols: number): string {
  const ascii = line.replace(/[^\x20-\x7e]/g, '?');
  return ascii.length >= cols ? ascii.slice(0, cols) : ascii + ' '.repeat(cols - ascii.length);
}

/** `rows` rows of exactly `cols` characters: what a display shows for `lines`. */
export function lcdScreen(lines: string[], cols: number, rows: number): string[] {
  return Array.from({ length: rows }, (_, i) => lcdRow(lines[i] ?? '', cols));
}

export function memoryDisplay(cols: number, rows: number): CharacterDisplay {
  let screen = lcdScreen([], cols, rows);
  return {
    cols,
    rows,
    show(lines) {
      screen = lcdScreen(lines, cols, rows);
    },
    backlight() {},
    screen: () => [...screen],
    async close() {},
  };
}
