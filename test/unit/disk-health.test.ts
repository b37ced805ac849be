import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdtemp, copyFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { interpretSmartctl, failurePredicted, diskIdentity, sameDisk } from '../../src/hw/disks.js';
import { simDiskInventory } from '../../src/hw/disks-sim.js';
import { DiskMonitor } from '../../src/disk/monitor.js';
import type { EventInput } from '../../src/events/events.js';
import { ManualClock } from '../helpers/clock.js';

// The fixtures stay in test/fixtures (tsc does not copy them to dist).
const FIX = fileURLToPath(new URL('../../../test/fixtures/smartctl/', import.meta.url));
const read = async (state: string) => interpretSmartctl(JSON.parse(await readFile(join(FIX, state, 'data.json'), 'utf8')), 'x');

test('a healthy SATA disk: passed, counters and temperature read from the attribute table', async () => {
  const d = await read('healthy');
  assert.equal(d.present, true);
  assert.equal(d.model, 'HGST HUS726020ALE614');
  assert.equal(d.interface, 'ATA');
  assert.equal(d.sizeBytes, 2000398934016);
  // smartctl's wwn object (naa 5, oui 3274, id 1234567890) as its text output prints it.
  assert.equal(d.wwn, '5 000cca 0499602d2');
  assert.deepEqual(
    { ...d.smart },
    { passed: true, reallocatedSectors: 0, pendingSectors: 0, offlineUncorrectable: 0, powerOnHours: 67518, temperatureC: 27, nvmeCriticalWarning: null, nvmePercentageUsed: null },
  );
  assert.equal(failurePredicted(d.smart), false);
});

test('the reallocated snapshot differs only in its counters, and is the same disk', async () => {
  const a = await read('healthy');
  const b = await read('reallocated');
  assert.equal(b.smart?.reallocatedSectors, 8);
  assert.equal(b.smart?.pendingSectors, 2);
  assert.ok(sameDisk(diskIdentity(a)!, diskIdentity(b)!));
  assert.equal(failurePredicted(b.smart), false);
});

test('a failing NVMe disk: overall health failed and a critical warning', async () => {
  const d = await read('failing');
  assert.equal(d.interface, 'NVMe');
  assert.equal(d.smart?.passed, false);
  assert.equal(d.smart?.nvmeCriticalWarning, 16);
  assert.equal(failurePredicted(d.smart), true);
});

test('a healthy NVMe disk: wear and temperature from the NVMe health log', async () => {
  const d = await read('nvme');
  assert.equal(d.smart?.passed, true);
  assert.equal(d.smart?.nvmePercentageUsed, 0);
  assert.equal(d.smart?.temperatureC, 35);
  assert.equal(d.smart?.reallocatedSectors, null);
  assert.equal(failurePredicted(d.smart), false);
});

test('a missing disk, and hostile input (not an object, wrong types), read as no disk or unknown, never throw', async () => {
  assert.equal((await read('missing')).present, false);
  for (const raw of [null, 42, 'x', [], { smartctl: { exit_status: 2 } }]) assert.equal(interpretSmartctl(raw, 'x').smart?.passed ?? null, null);
  const odd = interpretSmartctl({ model_name: 'M', smart_status: { passed: 'no' }, ata_smart_attributes: { table: [{ id: 5, raw: { value: '9' } }] } }, 'x');
  assert.equal(odd.smart?.passed, null);
  assert.equal(odd.smart?.reallocatedSectors, null);
  assert.equal(failurePredicted(odd.smart), false);
});

test('the monitor emits one event per change of state as fixtures are swapped', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-disk-'));
  const put = (state: string) => copyFile(join(FIX, state, 'data.json'), join(dir, 'data.json'));
  const events: EventInput[] = [];
  const clock = new ManualClock();
  const m = new DiskMonitor({
    inventory: simDiskInventory(() => dir, dir),
    settings: () => ({ pollMinutes: 10, maxTemperatureC: 30, usageLevels: [80, 90, 95] }),
    emit: (ev) => void events.push(ev),
    clock,
    log: pino({ level: 'silent' }),
  });
  const kinds = () => events.splice(0).map((e) => `${e.kind}${e.limit ? ' ' + e.limit : ''}`);
  try {
    await put('healthy');
    await writeFile(join(dir, 'space.json'), JSON.stringify({ totalBytes: 1000, availableBytes: 500 }));
    await m.poll();
    assert.deepEqual(kinds(), []);
    await m.poll();
    assert.deepEqual(kinds(), [], 'an unchanged disk is not reported again');
    await put('reallocated');
    await m.poll();
    assert.deepEqual(kinds(), ['disk.sectorsRising']);
    await m.poll();
    assert.deepEqual(kinds(), [], 'counters that stay are not reported again');
    await writeFile(join(dir, 'space.json'), JSON.stringify({ totalBytes: 1000, availableBytes: 150 }));
    await m.poll();
    assert.deepEqual(kinds(), ['disk.usage 80%']);
    await writeFile(join(dir, 'space.json'), JSON.stringify({ totalBytes: 1000, availableBytes: 40 }));
    await m.poll();
    assert.deepEqual(kinds(), ['disk.usage 95%']);
    await put('replaced'); // WDC at 34 °C, over 30
    await m.poll();
    assert.deepEqual(kinds(), ['disk.replaced', 'disk.temperature']);
    await put('missing');
    await m.poll();
    assert.deepEqual(kinds(), ['disk.missing']);
    await m.poll();
    assert.deepEqual(kinds(), []);
    await put('failing');
    await m.poll();
    assert.deepEqual(kinds(), ['disk.replaced', 'disk.failurePredicted', 'disk.temperature']); // 40 °C
    // The timer polls too: back to the first disk, noticed without `disk poll`.
    m.start();
    await m.poll(); // joins the read start() began, still on the failing disk: nothing new
    assert.deepEqual(kinds(), []);
    await put('healthy');
    await clock.advance(10 * 60_000 + 1);
    // Only the timer's poll can see the swap; wait for its events (real I/O: the fixture is read).
    for (let i = 0; i < 500 && events.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(kinds(), ['disk.replaced']);
  } finally {
    await m.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
