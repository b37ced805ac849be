import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boardDir, loadBoard } from '../../src/hw/board.js';

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
  }
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
