// The box commands on an HA pair: the LAN settings, power and alarms are each box's own
// and work on the standby; the admin password is the pair's and is reset on the active only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eventually, type TestDaemon } from '../helpers/daemon.js';
import { startHaPair, startedInSync, type HaPair } from '../helpers/ha-pair.js';
import { verifyAdmin } from '../../src/accounts/admin.js';

// The pair on 127.0.23.1 and .2, relays on .3 and .4, the service address .10.
let p: HaPair;
let active: TestDaemon;
let standby: TestDaemon;

before(async () => {
  p = await startHaPair({ net: '127.0.23' });
  ({ active, standby } = await startedInSync(p));
});

after(async () => {
  await p?.cleanup();
});

async function ok(d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `mlsd ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('on the standby: network show/set, alarm list/ack, system reboot and the status alarms field work', async () => {
  const set = JSON.parse(await ok(standby, ['network', 'set', '--address', '127.0.23.22', '--netmask', '255.255.255.0', '--gateway', '127.0.23.254', '--json']));
  assert.equal(set.applied.address, '127.0.23.22');
  assert.equal(JSON.parse(await ok(standby, ['network', 'show', '--json'])).address, '127.0.23.22');
  assert.ok(Array.isArray(JSON.parse(await ok(standby, ['alarm', 'list', '--json']))));
  assert.equal(typeof JSON.parse(await ok(standby, ['alarm', 'ack', '--json'])).acknowledged, 'number');
  assert.match(await ok(standby, ['system', 'reboot', '--confirm']), /reboot requested/);
  const st = JSON.parse(await ok(standby, ['status', '--json'])) as { alarms?: { unacknowledged: number } };
  assert.equal(typeof st.alarms?.unacknowledged, 'number');
  assert.match(await ok(standby, ['status']), /^alarms: /m);
});

test("network settings stay on their box: the active's own after a config change reached the standby", async () => {
  await ok(active, ['network', 'set', '--address', '127.0.23.21', '--netmask', '255.255.255.0', '--gateway', '127.0.23.254']);
  await ok(standby, ['network', 'set', '--address', '127.0.23.23', '--netmask', '255.255.255.0', '--gateway', '127.0.23.254']);
  // A config change on the active ships its config-dir files to the standby before it returns.
  await ok(active, ['config', 'set', 'hostname', '"mail2.example.test"']);
  await eventually('the config change on the standby', async () => JSON.parse(await readFile(join(standby.configDir, 'config.json'), 'utf8')).hostname === 'mail2.example.test');
  assert.equal(JSON.parse(await ok(active, ['network', 'show', '--json'])).address, '127.0.23.21');
  assert.equal(JSON.parse(await ok(standby, ['network', 'show', '--json'])).address, '127.0.23.23');
  const rec = JSON.parse(await readFile(join(standby.configDir, 'sim-board', 'power.json'), 'utf8')) as { requests: unknown[] };
  assert.equal(rec.requests.length, 1, "the standby's reboot request is its own");
  await assert.rejects(readFile(join(active.configDir, 'sim-board', 'power.json')), /ENOENT/);
});

test('admin reset: refused on the standby; on the active the new password reaches the standby', async () => {
  const r = await standby.cli(['admin', 'reset']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /this box is the HA standby box; run that on the active box/);
  const { password } = JSON.parse(await ok(active, ['admin', 'reset', '--json'])) as { password: string };
  assert.equal(await verifyAdmin(active.configDir, 'admin', password), true);
  await eventually('the new admin password on the standby', () => verifyAdmin(standby.configDir, 'admin', password));
});
