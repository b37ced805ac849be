// A Matrix Orbital LK-series display for tests: it holds the far end of a socat pseudo-terminal
// pair (test/helpers/socat.ts) and decodes what arrives into a cols x rows character grid with a
// cursor, as the real display would. Its command table is written from the LK manual, apart from
// the adapter's (src/hw/mtxorb-encode.ts), so that a wrong byte in one is not agreed to by the
// other. Every command byte of the LK set that the adapter may send is decoded with its argument
// count; anything else (an unknown command, a control byte in text, a go-to off the screen, a
// character written past the end of a row) is recorded in `problems`, which a test asserts empty.
//
// Writing past a row's end: with auto line wrap off, this emulator drops the character and
// leaves the cursor where it is (recorded as a problem). Real LK firmware is not consistent here
// (some models run on into the next row of the controller's memory, which on a 4-row display is
// not the next row on the glass), so the adapter must never do it and the emulator calls it out.
// With wrap on, the cursor goes to the start of the next row (the first after the last).
//
// The device is opened with plain fs and read through tty.ReadStream (libuv's tty, no thread
// pool), not with serialport: serialport flushes the input at open, and a display is never
// "opened late": bytes the adapter sent before the emulator reopened after a restored cable must
// arrive, as they would at a display that never went away.
import { closeSync, constants, openSync } from 'node:fs';
import { ReadStream } from 'node:tty';

interface CommandSpec {
  name: string;
  args: number;
}

/** The LK command set (after the 0xFE prefix): the letter and how many argument bytes follow. */
const COMMANDS: ReadonlyMap<number, CommandSpec> = new Map([
  [0x58, { name: 'clear', args: 0 }], // X
  [0x48, { name: 'home', args: 0 }], // H
  [0x47, { name: 'goTo', args: 2 }], // G col row
  [0x4c, { name: 'left', args: 0 }], // L
  [0x4d, { name: 'right', args: 0 }], // M
  [0x42, { name: 'backlightOn', args: 1 }], // B minutes
  [0x46, { name: 'backlightOff', args: 0 }], // F
  [0x99, { name: 'brightness', args: 1 }],
  [0x50, { name: 'contrast', args: 1 }], // P
  [0x43, { name: 'wrapOn', args: 0 }], // C
  [0x44, { name: 'wrapOff', args: 0 }], // D
  [0x51, { name: 'scrollOn', args: 0 }], // Q
  [0x52, { name: 'scrollOff', args: 0 }], // R
  [0x4a, { name: 'underlineOn', args: 0 }], // J
  [0x4b, { name: 'underlineOff', args: 0 }], // K
  [0x53, { name: 'blockOn', args: 0 }], // S
  [0x54, { name: 'blockOff', args: 0 }], // T
  [0x4e, { name: 'customChar', args: 9 }], // N index + 8 rows
]);

export interface Problem {
  /** Offset of the offending byte in everything received. */
  offset: number;
  what: string;
}

/** The display itself: feed it bytes, read its state. Power-on defaults: blank, cursor home,
 *  backlight on, wrap and scroll on, underline cursor on (as an LK comes up). */
export class MtxorbDecoder {
  grid: string[][] = [];
  col = 0;
  row = 0;
  backlight = true;
  backlightMinutes = 0;
  wrap = true;
  scroll = true;
  underline = true;
  block = false;
  contrast: number | null = null;
  readonly problems: Problem[] = [];
  /** How many times each command was received, by name. */
  readonly counts = new Map<string, number>();
  bytesIn = 0;
  textBytes = 0;
  private pending: { code: number; spec: CommandSpec; args: number[] } | null = null;
  private prefixed = false;

  constructor(
    readonly cols: number,
    readonly rows: number,
  ) {
    this.powerCycle();
  }

  /** The display loses power and comes back: blank, settings at their defaults (counts kept). */
  powerCycle(): void {
    this.grid = Array.from({ length: this.rows }, () => Array<string>(this.cols).fill(' '));
    this.col = this.row = 0;
    this.backlight = this.wrap = this.scroll = this.underline = true;
    this.block = false;
    this.contrast = null;
    this.pending = null;
    this.prefixed = false;
  }

  screen(): string[] {
    return this.grid.map((r) => r.join(''));
  }

  count(name: string): number {
    return this.counts.get(name) ?? 0;
  }

  feed(chunk: Buffer): void {
    for (const b of chunk) {
      const offset = this.bytesIn++;
      if (this.pending) {
        this.pending.args.push(b);
        if (this.pending.args.length === this.pending.spec.args) this.run(this.pending.spec, this.pending.args, offset);
      } else if (this.prefixed) {
        this.prefixed = false;
        const spec = COMMANDS.get(b);
        if (!spec) this.problems.push({ offset, what: `unknown command 0xfe 0x${b.toString(16).padStart(2, '0')}` });
        else if (spec.args === 0) this.run(spec, [], offset);
        else this.pending = { code: b, spec, args: [] };
      } else if (b === 0xfe) {
        this.prefixed = true;
      } else {
        this.text(b, offset);
      }
    }
  }

  private run(spec: CommandSpec, args: number[], offset: number): void {
    this.pending = null;
    this.counts.set(spec.name, this.count(spec.name) + 1);
    switch (spec.name) {
      case 'clear':
        this.grid.forEach((r) => r.fill(' '));
        this.col = this.row = 0;
        break;
      case 'home':
        this.col = this.row = 0;
        break;
      case 'goTo': {
        const [c, r] = args as [number, number];
        if (c < 1 || c > this.cols || r < 1 || r > this.rows) {
          this.problems.push({ offset, what: `go to column ${c} row ${r}, off a ${this.cols}x${this.rows} screen` });
        } else {
          this.col = c - 1;
          this.row = r - 1;
        }
        break;
      }
      case 'left':
        this.col = Math.max(0, this.col - 1);
        break;
      case 'right':
        this.col = Math.min(this.cols, this.col + 1);
        break;
      case 'backlightOn':
        this.backlight = true;
        this.backlightMinutes = args[0]!;
        break;
      case 'backlightOff':
        this.backlight = false;
        break;
      case 'contrast':
        this.contrast = args[0]!;
        break;
      case 'wrapOn':
      case 'wrapOff':
        this.wrap = spec.name === 'wrapOn';
        break;
      case 'scrollOn':
      case 'scrollOff':
        this.scroll = spec.name === 'scrollOn';
        break;
      case 'underlineOn':
      case 'underlineOff':
        this.underline = spec.name === 'underlineOn';
        break;
      case 'blockOn':
      case 'blockOff':
        this.block = spec.name === 'blockOn';
        break;
      // brightness and customChar change nothing this emulator shows.
    }
  }

  private text(b: number, offset: number): void {
    this.textBytes++;
    let ch = String.fromCharCode(b);
    if (b < 0x20 || b > 0x7e) {
      this.problems.push({ offset, what: `byte 0x${b.toString(16).padStart(2, '0')} in text (no ROM character for it)` });
      ch = '\ufffd'; // unlike '?', which is what the adapter is meant to send in its place
    }
    if (this.col >= this.cols) {
      if (!this.wrap) {
        this.problems.push({ offset, what: `character ${JSON.stringify(ch)} past the end of row ${this.row + 1} (wrap off: dropped)` });
        return;
      }
      this.col = 0;
      this.row++;
      if (this.row >= this.rows) {
        if (this.scroll) {
          this.grid.shift();
          this.grid.push(Array<string>(this.cols).fill(' '));
        }
        this.row = this.scroll ? this.rows - 1 : 0;
      }
    }
    this.grid[this.row]![this.col] = ch;
    this.col++;
  }
}

export type ScreenPredicate = RegExp | ((screen: string[]) => boolean);

export interface LcdEmulator {
  readonly device: string;
  readonly display: MtxorbDecoder;
  /** True while the device is open (it is reopened after a cut cable is restored). */
  readonly isOpen: boolean;
  screen(): string[];
  /** The rows joined by newlines, trailing blanks kept. */
  text(): string;
  /** Resolves with the screen once it matches (a RegExp is tried on text()); rejects after timeoutMs, showing the screen. */
  waitFor(want: ScreenPredicate, timeoutMs?: number): Promise<string[]>;
  /** Resolves once the device is open. */
  waitOpen(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const REOPEN_MS = 20;

/** Opens `device` (one end of a pty pair) as a cols x rows display; resolves once it is open. */
export async function startLcdEmulator(device: string, size: { cols: number; rows: number }): Promise<LcdEmulator> {
  const emu = new PtyLcdEmulator(device, new MtxorbDecoder(size.cols, size.rows));
  await emu.waitOpen();
  return emu;
}

class PtyLcdEmulator implements LcdEmulator {
  private stream: ReadStream | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly device: string,
    readonly display: MtxorbDecoder,
  ) {
    this.open();
  }

  get isOpen(): boolean {
    return this.stream !== null;
  }

  screen(): string[] {
    return this.display.screen();
  }

  text(): string {
    return this.screen().join('\n');
  }

  waitFor(want: ScreenPredicate, timeoutMs = 5000): Promise<string[]> {
    const ok = () => (want instanceof RegExp ? want.test(this.text()) : want(this.screen()));
    return this.until(ok, timeoutMs, () => `the LCD did not show ${String(want)} within ${timeoutMs} ms; it shows:\n${this.text()}`).then(() => this.screen());
  }

  waitOpen(timeoutMs = 5000): Promise<void> {
    return this.until(() => this.isOpen, timeoutMs, () => `the LCD emulator could not open ${this.device} within ${timeoutMs} ms`);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.drop();
  }

  private until(ok: () => boolean, timeoutMs: number, message: () => string): Promise<void> {
    if (ok()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!ok()) return;
        cleanup();
        resolve();
      };
      const t = setTimeout(() => (cleanup(), reject(new Error(message()))), timeoutMs);
      const cleanup = () => (clearTimeout(t), this.waiters.delete(check));
      this.waiters.add(check);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private open(): void {
    this.timer = null;
    if (this.closed) return;
    let fd: number;
    try {
      // O_NOCTTY: the test process must not make the pty its controlling terminal.
      fd = openSync(this.device, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
    } catch {
      this.timer = setTimeout(() => this.open(), REOPEN_MS);
      return;
    }
    let s: ReadStream;
    try {
      s = new ReadStream(fd);
    } catch {
      closeSync(fd);
      this.timer = setTimeout(() => this.open(), REOPEN_MS);
      return;
    }
    this.stream = s;
    s.on('data', (chunk: Buffer) => {
      this.display.feed(chunk);
      this.wake();
    });
    // A cut cable: the pty is gone, the read fails (EIO) or ends. Reopen until it is back.
    const lost = () => {
      if (this.stream !== s) return;
      this.drop();
      this.wake();
      if (!this.closed) this.timer = setTimeout(() => this.open(), REOPEN_MS);
    };
    s.on('error', lost);
    s.on('end', lost);
    s.on('close', lost);
    this.wake();
  }

  private drop(): void {
    const s = this.stream;
    this.stream = null;
    s?.destroy();
  }
}
