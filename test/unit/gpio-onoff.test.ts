// The onoff GPIO adapter, as far as it can be exercised without GPIO hardware: the sysfs number
// of a chip's line 0 read from a sysfs tree made in a folder, and a clear refusal on a machine
// without sysfs GPIO (this one, and CI). Pressing buttons and lighting LEDs is not tested here.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onoffGpioPanel, sysfsBase } from '../../src/hw/gpio-onoff.js';
import { loadBoard } from '../../src/hw/board.js';
import { createLogger } from '../../src/log/logger.js';

const made: string[] = [];
after(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

async function sysfs(chips: Record<string, number | null>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'mlsd-sysfs-'));
  made.push(root);
  for (const [chip, base] of Object.entries(chips)) {
    const dir = join(root, 'bus/gpio/devices', chip, 'gpio');
    await mkdir(dir, { recursive: true });
    if (base === null) continue;
    await mkdir(join(dir, `gpiochip${base}`));
    await writeFile(join(dir, `gpiochip${base}`, 'base'), `${base}\n`);
  }
  return root;
}

test('a chip line is numbered from the base sysfs gives the chip, not from 0', async () => {
  const root = await sysfs({ gpiochip0: 512, gpiochip1: 570, gpiochip2: null });
  assert.equal(await sysfsBase('gpiochip0', root), 512);
  assert.equal(await sysfsBase('gpiochip1', root), 570);
  assert.equal(await sysfsBase(undefined, root), 0);
  await assert.rejects(sysfsBase('gpiochip2', root), /^Error: gpio: chip gpiochip2 has no sysfs GPIO \(.* is empty\)$/);
  await assert.rejects(sysfsBase('gpiochip9', root), /^Error: gpio: chip gpiochip9 has no sysfs GPIO .*CONFIG_GPIO_SYSFS/);
  await assert.rejects(sysfsBase('../../etc', root), /^Error: gpio: chip "\.\.\/\.\.\/etc" is not a GPIO chip name/);
});

test('without sysfs GPIO the adapter refuses to start with one clear line', async (t) => {
  const { Gpio } = await import('onoff');
  if (Gpio.accessible) return t.skip('this machine has sysfs GPIO: not opening real pins from a test');
  const board = await loadBoard('mls-1000');
  await assert.rejects(onoffGpioPanel(board.gpio, createLogger({ level: 'silent' })), /^Error: gpio: the sysfs GPIO interface \(\/sys\/class\/gpio\/export\) is not writable/);
});
