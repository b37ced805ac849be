import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { sameDisk } from '../../src/hw/disks.js';
import { simDiskInventory } from '../../src/hw/disks-sim.js';
import { DiskMonitor } from '../../src/disk/monitor.js';
import { DISK_DATA, configDirIdentityStore, parseIdentity } from '../../src/disk/identity.js';
import { configDirFiles, applyConfigDirFiles } from '../../src/ha/configsync.js';
import { DataRegistry } from '../../src/store/data.js';
import { CONFIG_DATA } from '../../src/config/config.js';
import { ADMIN_DATA } from '../../src/accounts/admin.js';
import type { EventInput } from '../../src/events/events.js';
import { ManualClock } from '../helpers/clock.js';

const FIX = fileURLToPath(new URL('../../../test/fixtures/smartctl/', import.meta.url));

test('one disk unless model, serial or a WWN known on both sides differ', () => {
  const a = { model: 'M', serial: 'S1', wwn: '5 000cca 0499602d2' };
  assert.ok(sameDisk(a, { ...a }));
  assert.ok(sameDisk(a, { ...a, wwn: '' }), 'a WWN not read this time is no other disk');
  assert.ok(!sameDisk(a, { ...a, wwn: '5 000cca 000000001' }));
  assert.ok(!sameDisk(a, { ...a, serial: 'S2' }));
  assert.ok(!sameDisk(a, { ...a, model: 'N' }));
});

test('a hostile identity file is no identity, with the reason', () => {
  for (const raw of ['', '{"model": "HG', 'null', '[]', '42', '{"model":"M","serial":5}', `{"model":"${'x'.repeat(300)}","serial":"s"}`, '{"model":"","serial":"s"}', '{"model":"M","serial":"s","wwn":{}}']) {
    assert.equal(typeof parseIdentity(raw), 'string', raw);
  }
  assert.deepEqual(parseIdentity('{"model":"M","serial":"s"}'), { model: 'M', serial: 's', wwn: '' });
});

test('the identity file is this box\'s own: never among the config files sent to the HA peer, nor taken from it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-diskid-'));
  try {
    const data = new DataRegistry([CONFIG_DATA, ADMIN_DATA, DISK_DATA]);
    await writeFile(join(dir, 'config.json'), '{}');
    await writeFile(join(dir, 'admin.json'), '{}');
    await configDirIdentityStore(dir, () => 0).save({ model: 'Mine', serial: '1', wwn: '' });
    const sent = await configDirFiles(dir, data);
    assert.ok('config.json' in sent && 'admin.json' in sent, 'the shared files are sent (the walk works)');
    assert.ok(!('data-disk.json' in sent));
    // A peer that sends one anyway does not overwrite this box's.
    await applyConfigDirFiles(dir, { 'data-disk.json': Buffer.from('{"model":"Theirs","serial":"2"}') }, data);
    assert.equal(JSON.parse(await readFile(join(dir, 'data-disk.json'), 'utf8')).model, 'Mine');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a config flash that cannot be written is logged and tried again at the next poll; the disk is still watched', async () => {
  const root = await mkdtemp(join(tmpdir(), 'mlsd-diskid-'));
  const disk = join(root, 'disk');
  const configDir = join(root, 'config');
  const logs: Record<string, unknown>[] = [];
  const events: EventInput[] = [];
  const clock = new ManualClock();
  try {
    await mkdir(disk);
    await copyFile(join(FIX, 'healthy', 'data.json'), join(disk, 'data.json'));
    // A file where the folder should be: every write under it fails.
    await writeFile(configDir, 'not a folder');
    const m = new DiskMonitor({
      inventory: simDiskInventory(() => disk, disk),
      settings: () => ({ pollMinutes: 10, maxTemperatureC: 55, usageLevels: [80, 90, 95] }),
      emit: (ev) => void events.push(ev),
      clock,
      log: pino({ level: 'info' }, { write: (s: string) => void logs.push(JSON.parse(s)) }),
      known: configDirIdentityStore(configDir, () => clock.now()),
    });
    const s = await m.poll();
    assert.equal(s.disk?.model, 'HGST HUS726020ALE614');
    assert.ok(logs.some((l) => l.evt === 'disk.identity.fail'));
    assert.deepEqual(events, []);
    await rm(configDir);
    await mkdir(configDir);
    await m.poll();
    assert.equal(JSON.parse(await readFile(join(configDir, 'data-disk.json'), 'utf8')).model, 'HGST HUS726020ALE614');
    assert.equal(JSON.parse(await readFile(join(configDir, 'data-disk.json'), 'utf8')).seenAt, new Date(clock.now()).toISOString());
    await m.stop();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
