// A character display that only keeps its screen: the panel's display when the board has no LCD
// device (the sim board's "pty") and the config names none (`panel.lcdDevice`). `mlsd panel
// screen` reads it, so a person on `make run` still sees what the LCD would show.
import { toGrid, type CharacterDisplay } from './lcd.js';

export function memoryDisplay(cols: number, rows: number): CharacterDisplay {
  let screen = toGrid([], cols, rows);
  return {
    cols,
    rows,
    show(lines) {
      screen = toGrid(lines, cols, rows);
    },
    backlight() {},
    screen: () => [...screen],
    async close() {},
  };
}
