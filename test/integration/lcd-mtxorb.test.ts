// The Matrix Orbital adapter over a real serial line: serialportLine on one end of a socat
// pseudo-terminal pair, the LK emulator (test/helpers/lcd-emulator.ts) on the other. The screen
// arrives; a changed row rewrites only that row; a cut and restored cable (with the display
// power-cycled meanwhile) gets the whole screen again; a burst of a thousand screens ends in the
// last one with a bounded number of writes; hostile text shows as '?'. The emulator records any
// byte it cannot decode, and every test ends by asserting there was none.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CharacterDisplay } from '../../src/hw/lcd.js';
import { mtxorbDisplay } from '../../src/hw/lcd-mtxorb.js';
import type { SerialLine } from '../../src/hw/serial.js';
import { serialportLine } from '../../src/hw/serialport-line.js';
import { createLogger } from '../../src/log/logger.js';
import { removeDir } from '../helpers/daemon-process.js';
import { startLcdEmulator, type LcdEmulator } from '../helpers/lcd-emulator.js';
import { startPtyPair, type PtyPair } from '../helpers/socat.js';

const COLS = 20;
const ROWS = 4;
const WAIT_MS = 5000;

let dir = '';
let pair: PtyPair;
let emu: LcdEmulator;
let lcd: CharacterDisplay;
/** Every write the adapter asked of the line, in bytes. */
const writes: number[] = [];

/** The real line, with its writes counted. */
function counted(line: SerialLine): SerialLine {
  return Object.assign(Object.create(line) as SerialLine, {
    write(data: Buffer | string, timeoutMs: number) {
      writes.push(Buffer.byteLength(data));
      return line.write(data, timeoutMs);
    },
  });
}

const pad = (rows: string[]) => rows.map((r) => r.padEnd(COLS));
const shows = (rows: string[]) => (s: string[]) => JSON.stringify(s) === JSON.stringify(pad(rows));

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mlsd-lcd-'));
  pair = await startPtyPair(dir, 'lcd');
  emu = await startLcdEmulator(pair.b, { cols: COLS, rows: ROWS });
  const log = createLogger({ level: 'silent' });
  lcd = mtxorbDisplay(counted(serialportLine(pair.a, 19200, log, { reopenMs: 50 })), { cols: COLS, rows: ROWS, log });
});

after(async () => {
  await lcd?.close();
  await emu?.close();
  await pair?.stop();
  await removeDir(dir);
});

afterEach(() => {
  assert.deepEqual(emu.display.problems, [], 'the emulator decoded every byte the adapter sent');
});

test('the screen arrives, with wrap, scroll and the cursor off and the backlight on', async () => {
  const screen = ['mail.example.test', '192.0.2.10', 'HA: active', 'queue 0 deferred 0'];
  lcd.show(screen);
  await emu.waitFor(shows(screen), WAIT_MS);
  const d = emu.display;
  assert.deepEqual({ wrap: d.wrap, scroll: d.scroll, underline: d.underline, block: d.block, backlight: d.backlight }, {
    wrap: false,
    scroll: false,
    underline: false,
    block: false,
    backlight: true,
  });
  assert.equal(d.count('clear'), 1);
  assert.deepEqual(lcd.screen(), pad(screen));
});

test('a changed row rewrites only that row, from its first to its last changed character', async () => {
  const screen = ['mail.example.test', '192.0.2.10', 'HA: active', 'queue 17 deferred 0'];
  const goTos = emu.display.count('goTo');
  const bytes = emu.display.bytesIn;
  lcd.show(screen);
  await emu.waitFor(shows(screen), WAIT_MS);
  assert.equal(emu.display.count('goTo'), goTos + 1);
  // "queue 0 deferred 0" -> "queue 17 deferred 0": columns 7..19 rewritten, after a 4-byte go-to
  assert.equal(emu.display.bytesIn - bytes, 4 + '17 deferred 0'.length);
  assert.equal(emu.display.count('clear'), 1);
});

test('a cable cut and restored, the display power-cycled meanwhile: the whole screen is drawn again', async () => {
  const clears = emu.display.count('clear');
  await pair.cut();
  await emu.waitFor(() => !emu.isOpen, WAIT_MS).catch(() => undefined);
  const during = ['mail.example.test', '192.0.2.10', 'HA: standby', 'queue 17 deferred 0'];
  lcd.show(during); // while the line is down: kept, not lost
  assert.deepEqual(lcd.screen(), pad(during));
  emu.display.powerCycle();
  await pair.restore();
  await emu.waitOpen(WAIT_MS);
  await emu.waitFor(shows(during), WAIT_MS);
  assert.equal(emu.display.count('clear'), clears + 1, 'the reopened line was initialised');
  assert.equal(emu.display.wrap, false);
});

test('a thousand screens in a burst end in the last one, with a bounded number of writes', async () => {
  const before = writes.length;
  const bytes = emu.display.bytesIn;
  for (let i = 0; i < 1000; i++) lcd.show(['burst', `screen ${i}`, '', `${i % 7}`]);
  await emu.waitFor(shows(['burst', 'screen 999', '', `${999 % 7}`]), WAIT_MS);
  const n = writes.length - before;
  assert.ok(n >= 1 && n <= 3, `${n} writes for 1000 screens`);
  assert.ok(emu.display.bytesIn - bytes <= 3 * ROWS * (COLS + 4), `${emu.display.bytesIn - bytes} bytes for 1000 screens`);
  // And the writer is idle again: nothing more is sent for a screen already shown.
  lcd.show(['burst', 'screen 999', '', `${999 % 7}`]);
  await new Promise((r) => setImmediate(r));
  assert.equal(writes.length - before, n);
});

test('a hostname with 0xFE, Chinese and control characters shows as ?, and no command is smuggled', async () => {
  const clears = emu.display.count('clear');
  lcd.show(['mail\xfe\x58.example', '郵件 ok', 'a\x1b[2J\r\nb', '\xfe\x46light']);
  await emu.waitFor(shows(['mail?X.example', '?? ok', 'a?[2J??b', '?Flight']), WAIT_MS);
  assert.equal(emu.display.count('clear'), clears);
  assert.equal(emu.display.backlight, true);
});

test('backlight off and on reach the display', async () => {
  lcd.backlight(false);
  await emu.waitFor(() => !emu.display.backlight, WAIT_MS);
  lcd.backlight(true);
  await emu.waitFor(() => emu.display.backlight, WAIT_MS);
  assert.equal(emu.display.backlightMinutes, 0, 'on for good, no timeout');
});
