// The Matrix Orbital encoder: the exact bytes for a screen change (golden), hostile text (0xFE,
// Chinese, control characters) shown as '?' with no stray command, and the adapter's writer over
// an in-memory line feeding the test emulator's decoder (a write that fails, a burst of shows).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clearBytes, diffBytes, fullBytes, settingsBytes } from '../../src/hw/mtxorb-encode.js';
import { toGrid, toRom } from '../../src/hw/lcd.js';
import { mtxorbDisplay } from '../../src/hw/lcd-mtxorb.js';
import { SerialLineError, type SerialLine } from '../../src/hw/serial.js';
import { createLogger } from '../../src/log/logger.js';
import { ManualClock } from '../helpers/clock.js';
import { MtxorbDecoder } from '../helpers/lcd-emulator.js';

const hex = (b: Buffer) => b.toString('hex');
const g = (lines: string[]) => toGrid(lines, 8, 2);

test('a changed row is one go-to and the run from its first to its last changed character', () => {
  const before = g(['status  ', 'queue 12']);
  const golden: [string[], string][] = [
    [['status  ', 'queue 12'], ''],
    // row 2, columns 7..8 ("12" -> "9 "): FE 47 07 02 "9 "
    [['status  ', 'queue 9'], 'fe4707023920'],
    // row 1 column 1 only, row 2 untouched
    [['Status  ', 'queue 12'], 'fe470101' + hex(Buffer.from('S'))],
    // both rows: each its own run
    [['st      ', 'QUEUE 12'], 'fe470301' + hex(Buffer.from('    ')) + 'fe470102' + hex(Buffer.from('QUEUE'))],
  ];
  for (const [lines, want] of golden) assert.equal(hex(diffBytes(before, g(lines))), want, JSON.stringify(lines));
});

test('after a clear only the non-blank runs are drawn; a refresh draws every row in full', () => {
  assert.equal(hex(diffBytes(null, g(['  ab', '']))), 'fe470301' + hex(Buffer.from('ab')));
  assert.equal(hex(fullBytes(g(['ab', '']))), 'fe470101' + hex(Buffer.from('ab      ')) + 'fe470102' + hex(Buffer.from(' '.repeat(8))));
  // wrap off, scroll off, underline off, block off, contrast
  assert.equal(hex(settingsBytes(122)), 'fe44fe52fe4bfe54fe507a');
  assert.equal(hex(settingsBytes(999)), 'fe44fe52fe4bfe54fe50ff');
  assert.equal(hex(clearBytes()), 'fe58');
});

test('text outside printable ASCII is shown as ? and never reaches the device as a command', () => {
  const hostile = [
    'mail\xfe\x58.example', // 0xFE X would clear the screen
    '郵件伺服器 ok', // Traditional Chinese: one ? per character
    'a\x1b[2Jb\r\n\tc\x00', // control characters
    'emoji 📫!', // one code point outside the BMP: one cell
  ];
  assert.deepEqual(toGrid(hostile, 20, 4), ['mail?X.example      ', '????? ok            ', 'a?[2Jb???c?         ', 'emoji ?!            ']);
  const bytes = diffBytes(null, toGrid(hostile, 20, 4));
  const d = new MtxorbDecoder(20, 4);
  d.feed(Buffer.concat([clearBytes(), bytes]));
  assert.deepEqual(d.problems, []);
  assert.deepEqual(d.screen(), toGrid(hostile, 20, 4));
  // Every 0xFE in the stream is a command prefix the encoder put there: one per row and the clear.
  assert.equal([...bytes].filter((b) => b === 0xfe).length, 4);
  assert.ok([...bytes].every((b) => b === 0xfe || b <= 20 || (b >= 0x20 && b <= 0x7e)));
});

test('rows are cut or padded to the width, missing rows blank, extra rows dropped, non-strings shown', () => {
  assert.deepEqual(toGrid(['a'.repeat(30), 'b'], 4, 3), ['aaaa', 'b   ', '    ']);
  assert.deepEqual(toGrid(['1', '2', '3', '4', '5'], 2, 2), ['1 ', '2 ']);
  assert.equal(toRom(undefined, 3), '   ');
  assert.equal(toRom(42, 3), '42 ');
});

/** An in-memory SerialLine whose writes go to a decoder, and whose failures a test turns on. */
class MemoryLine implements SerialLine {
  readonly device = '/dev/memory';
  isOpen = false;
  failing = false;
  writes: Buffer[] = [];
  readonly display = new MtxorbDecoder(8, 2);
  private stateFns: ((open: boolean) => void)[] = [];
  start(): void {}
  async write(data: Buffer | string): Promise<void> {
    if (!this.isOpen) throw new SerialLineError('notOpen', this.device, 'not open');
    await Promise.resolve(); // the OS takes the data later than the call
    if (this.failing) {
      this.setOpen(false);
      throw new SerialLineError('writeFailed', this.device, 'EIO');
    }
    const b = Buffer.from(data);
    this.writes.push(b);
    this.display.feed(b);
  }
  onData(): void {}
  onState(fn: (open: boolean) => void): void {
    this.stateFns.push(fn);
  }
  setOpen(open: boolean): void {
    this.isOpen = open;
    for (const f of this.stateFns) f(open);
  }
  async stop(): Promise<void> {}
}

const settle = () => new Promise((r) => setImmediate(r));

function logged() {
  const events: { evt?: string; level: number }[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (s: string) => void events.push(JSON.parse(s)) } });
  return { log, events };
}

test('a burst of show() calls ends in the last screen with at most two writes', async () => {
  const line = new MemoryLine();
  const { log } = logged();
  const lcd = mtxorbDisplay(line, { cols: 8, rows: 2, log, clock: new ManualClock() });
  line.setOpen(true);
  for (let i = 0; i < 1000; i++) lcd.show([`n ${i}`, 'x']);
  await settle();
  await settle();
  assert.deepEqual(line.display.screen(), ['n 999   ', 'x       ']);
  assert.deepEqual(lcd.screen(), ['n 999   ', 'x       ']);
  assert.ok(line.writes.length <= 2, `${line.writes.length} writes`);
  assert.deepEqual(line.display.problems, []);
  await lcd.close();
});

test('a failed write is logged once per outage, and the next open clears and redraws the whole screen', async () => {
  const line = new MemoryLine();
  const { log, events } = logged();
  const clock = new ManualClock();
  const lcd = mtxorbDisplay(line, { cols: 8, rows: 2, log, clock, refreshMs: 0 });
  lcd.show(['one', 'two']);
  await settle();
  assert.equal(line.writes.length, 0, 'nothing is written while the line is down');
  assert.deepEqual(lcd.screen(), ['one     ', 'two     '], 'screen() answers while the line is down');
  line.setOpen(true);
  await settle();
  assert.deepEqual(line.display.screen(), ['one     ', 'two     ']);
  line.failing = true;
  lcd.show(['three', 'two']);
  await settle();
  line.setOpen(true); // reopened: still failing
  await settle();
  await settle();
  assert.equal(events.filter((e) => e.evt === 'lcd.writeFailed').length, 1);
  line.display.powerCycle();
  line.failing = false;
  const clearsBefore = line.display.count('clear');
  line.setOpen(true);
  await settle();
  await settle();
  assert.equal(line.display.count('clear'), clearsBefore + 1);
  assert.deepEqual(line.display.screen(), ['three   ', 'two     ']);
  assert.equal(line.display.wrap, false);
  assert.equal(line.display.underline, false);
  assert.equal(events.filter((e) => e.evt === 'lcd.redrawn').length, 1);
  await lcd.close();
});

test('the periodic refresh redraws a display that lost its screen on an unbroken line', async () => {
  const line = new MemoryLine();
  const { log } = logged();
  const clock = new ManualClock();
  const lcd = mtxorbDisplay(line, { cols: 8, rows: 2, log, clock, refreshMs: 60_000 });
  line.setOpen(true);
  lcd.show(['up', 'time']);
  await settle();
  line.display.powerCycle();
  lcd.backlight(false);
  await settle();
  assert.deepEqual(line.display.screen(), ['        ', '        ']);
  await clock.advance(60_000);
  await settle();
  assert.deepEqual(line.display.screen(), ['up      ', 'time    ']);
  assert.equal(line.display.backlight, false);
  assert.equal(line.display.count('clear'), 1, 'the refresh does not clear (no flicker)');
  await lcd.close();
});

test('the emulator flags what a real LK would not show as meant, so "no problems" can fail', () => {
  const d = new MtxorbDecoder(8, 2);
  // Wrap off, then a go-to split across two chunks: still one command with its two arguments.
  d.feed(Buffer.from([0xfe, 0x44, 0xfe, 0x47, 7]));
  d.feed(Buffer.from([2, 0x61, 0x62, 0x63]));
  assert.deepEqual(d.screen(), ['        ', '      ab']);
  d.feed(Buffer.from([0xfe, 0x01, 0xfe, 0x47, 1, 1, 0x07, 0xfe, 0x47, 9, 1]));
  assert.equal(d.screen()[0], '\ufffd       ', 'a control byte shows as neither itself nor ?');
  assert.deepEqual(
    d.problems.map((p) => p.what),
    [
      'character "c" past the end of row 2 (wrap off: dropped)',
      'unknown command 0xfe 0x01',
      'byte 0x07 in text (no ROM character for it)',
      'go to column 9 row 1, off a 8x2 screen',
    ],
  );
  // Wrap on (the power-on default): past the last row the screen scrolls up.
  const w = new MtxorbDecoder(2, 2);
  w.feed(Buffer.from('abcde'));
  assert.deepEqual(w.screen(), ['cd', 'e ']);
  assert.deepEqual(w.problems, []);
});

test('close() first writes what was asked for last: the panel blanks the screen and the light as it stops', async () => {
  const line = new MemoryLine();
  const { log } = logged();
  const lcd = mtxorbDisplay(line, { cols: 8, rows: 2, log, clock: new ManualClock(), refreshMs: 0 });
  line.setOpen(true);
  lcd.show(['secret', 'pw']);
  await settle();
  assert.deepEqual(line.display.screen(), ['secret  ', 'pw      ']);
  // As Panel.stop() does: blank, light off, close, all in one turn.
  lcd.show([]);
  lcd.backlight(false);
  await lcd.close();
  assert.deepEqual(line.display.screen(), ['        ', '        '], 'the last screen is not left on the glass');
  assert.equal(line.display.backlight, false);
  // Nothing is written after close.
  const writes = line.writes.length;
  lcd.show(['late']);
  await settle();
  assert.equal(line.writes.length, writes);
});
