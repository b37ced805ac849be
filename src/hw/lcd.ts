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
