import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boardDir, loadBoard } from '../../src/hw/board.js';
import { LEDS } from '../../src/hw/gpio.js';

async function boardWith(edit: (b: Record<string, any>) => void, name = 'sim'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-board-'));
  const b = JSON.parse(await readFile(join(boardDir, `${name}.json`), 'utf8'));
  edit(b);
  await writeFile(join(dir, `${name}.json`), JSON.stringify(b));
  return dir;
}

test('the shipped board files are valid', async () => {
  for (const name of ['sim', 'mls-1000']) {
    const b = await loadBoard(name);
    assert.equal(b.model, name);
    assert.ok(b.serial.console.device);
    assert.deepEqual(Object.keys(b.gpio.leds).sort(), [...LEDS].sort());
    assert.equal(b.serial.lcd?.protocol, 'mtxorb');
  }
  const mls = await loadBoard('mls-1000');
  assert.deepEqual(mls.serial.lcd, { device: '/dev/ttyS2', baud: 19200, protocol: 'mtxorb', cols: 20, rows: 4 });
});

test('a bad board file is refused, naming the key', async () => {
  const cases: [(b: Record<string, any>) => void, RegExp][] = [
    [(b) => (b.serial.console.baud = '115200'), /^Error: board sim: serial\.console\.baud: .*expected number/],
    [(b) => delete b.serial.console, /^Error: board sim: serial\.console: /],
    [(b) => (b.gpio.buttons.up = -1), /^Error: board sim: gpio\.buttons\.up: /],
    [(b) => (b.adapter = 'arm'), /^Error: board sim: adapter: /],
    [(b) => (b.serial.consle = { device: 'x', baud: 9600 }), /^Error: board sim: serial\.consle: unknown key/],
    [(b) => (b.dataDisk = { kind: 'block', device: '/dev/sda' }), /^Error: board sim: dataDisk\.partition: /],
    [(b) => (b.model = 'other'), /^Error: board sim: model: /],
    [(b) => delete b.defaults, /^Error: board sim: defaults: /],
    // The LEDs are exactly the panel's: a misspelt one, a missing one, an extra one.
    [(b) => ((b.gpio.leds.activty = b.gpio.leds.activity), delete b.gpio.leds.activity), /^Error: board sim: gpio\.leds\.activity: .*; gpio\.leds\.activty: unknown key/],
    [(b) => delete b.gpio.leds.disk, /^Error: board sim: gpio\.leds\.disk: /],
    [(b) => (b.gpio.leds.alert = 9), /^Error: board sim: gpio\.leds\.alert: unknown key/],
    [(b) => (b.gpio.leds.ha = b.gpio.buttons.esc), /^Error: board sim: gpio\.leds\.ha: pin 3 is already buttons\.esc/],
    // The LCD has a size and a protocol.
    [(b) => delete b.serial.lcd.cols, /^Error: board sim: serial\.lcd\.cols: /],
    [(b) => delete b.serial.lcd.rows, /^Error: board sim: serial\.lcd\.rows: /],
    [(b) => (b.serial.lcd.rows = 5), /^Error: board sim: serial\.lcd\.rows: /],
    [(b) => (b.serial.lcd.cols = 7.5), /^Error: board sim: serial\.lcd\.cols: /],
    [(b) => (b.serial.lcd.cols = 12), /^Error: board sim: serial\.lcd\.cols: Too small/],
    [(b) => (b.serial.lcd.protocol = 'hd44780'), /^Error: board sim: serial\.lcd\.protocol: /],
    [(b) => (b.serial.lcd.colums = 20), /^Error: board sim: serial\.lcd\.colums: unknown key/],
  ];
  for (const [edit, want] of cases) {
    const dir = await boardWith(edit);
    await assert.rejects(loadBoard('sim', dir), want);
  }
});

test('a board file that is not JSON is refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-board-'));
  await writeFile(join(dir, 'sim.json'), '{ "model": ');
  await assert.rejects(loadBoard('sim', dir), /^Error: board sim: not JSON/);
  await assert.rejects(loadBoard('../etc', dir), /not a board name/);
});
