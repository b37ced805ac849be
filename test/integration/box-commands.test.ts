// The box's own commands of issue 13 (the front panel's menus and the serial console call
// them), through the real CLI against a real daemon on the sim board: the LAN settings,
// reboot and shutdown, alarms, and the admin password reset.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestDaemon, eventually } from '../helpers/daemon.js';
import { verifyAdmin } from '../../src/accounts/admin.js';
import { configDirFiles } from '../../src/ha/configsync.js';
import { DataRegistry } from '../../src/store/data.js';
import { BUILT_IN_DATA } from '../../src/main.js';

// Daemon on 127.0.23.50; the LAN settings typed are in 127.0.23.0/24 too (the sim board's
// LAN is loopback, and nothing is applied to an interface anyway).
const HOST = '127.0.23.50';
const FIX = fileURLToPath(new URL('../../../test/fixtures/smartctl/', import.meta.url));
let d: TestDaemon;
let disk: string;

interface Ev {
  id: string;
  kind: string;
  severity: string;
  text: string;
  data?: Record<string, unknown>;
}

async function ok(args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `mlsd ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const json = async <T>(args: string[]): Promise<T> => JSON.parse(await ok([...args, '--json'])) as T;

/** The one line a refused command prints, and that it was refused. */
async function refused(args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.notEqual(r.code, 0, `mlsd ${args.join(' ')} was accepted: ${r.stdout}`);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  return r.stderr.trim();
}

const eventsOf = async (kind: string) => (await json<Ev[]>(['events', 'list'])).filter((e) => e.kind === kind);

before(async () => {
  // The sim data disk: a fixture folder of the test's own, swapped between polls.
  disk = await mkdtemp(join(tmpdir(), 'mlsd-box-disk-'));
  d = await TestDaemon.create({ host: HOST, config: { disk: { pollMinutes: 600, simFixtures: disk } } });
  await copyFile(join(FIX, 'healthy', 'data.json'), join(disk, 'data.json'));
  await d.start();
});

after(async () => {
  await d?.cleanup();
  if (disk) await rm(disk, { recursive: true, force: true });
});

test('network show: the sim board LAN before anything is set', async () => {
  assert.deepEqual(await json(['network', 'show']), { interface: 'lan0', address: '127.0.0.1', netmask: '255.0.0.0', gateway: '127.0.0.254' });
  assert.match(await ok(['network', 'show']), /^interface: lan0\naddress: +127\.0\.0\.1\nnetmask: +255\.0\.0\.0\ngateway: +127\.0\.0\.254\n$/);
});

test('network set: applied (recorded by the sim board), shown, logged, an event with old and new', async () => {
  const before = await json<Record<string, string>>(['network', 'show']);
  const out = await json<{ applied: Record<string, string> }>(['network', 'set', '--address', '127.0.23.10', '--netmask', '255.255.255.0', '--gateway', '127.0.23.1']);
  const want = { interface: 'lan0', address: '127.0.23.10', netmask: '255.255.255.0', gateway: '127.0.23.1' };
  assert.deepEqual(out, { applied: want });
  assert.deepEqual(await json(['network', 'show']), want);
  const rec = JSON.parse(await readFile(join(d.configDir, 'sim-board', 'network.json'), 'utf8')) as { current: unknown; applied: { settings: unknown }[] };
  assert.deepEqual(rec.current, want);
  assert.deepEqual(rec.applied.at(-1)?.settings, want);
  await d.waitFor((l) => l.evt === 'network.apply' && l.address === '127.0.23.10');
  const ev = (await eventsOf('network.changed'))[0]!;
  assert.equal(ev.severity, 'info');
  assert.deepEqual(ev.data, { old: before, new: want });
  // The text form (--address=VALUE as well).
  assert.match(await ok(['network', 'set', '--address=127.0.23.11', '--netmask', '255.255.255.0', '--gateway', '127.0.23.1']), /127\.0\.23\.11\/255\.255\.255\.0 via 127\.0\.23\.1 on lan0/);
  assert.equal(JSON.parse(await readFile(join(d.configDir, 'sim-board', 'network.json'), 'utf8')).applied.length, 2);
});

test('network set: hostile and wrong input refused with one line naming the option; nothing applied', async () => {
  const good = { address: '127.0.23.20', netmask: '255.255.255.0', gateway: '127.0.23.1' };
  const before = await readFile(join(d.configDir, 'sim-board', 'network.json'), 'utf8');
  const table: [Partial<typeof good>, RegExp][] = [
    [{ address: '1.2.3.256' }, /network set: --address: "1\.2\.3\.256" is not an IPv4 address/],
    [{ address: '01.2.3.4' }, /--address: "01\.2\.3\.4" is not/],
    [{ address: '1.2.3.4.5' }, /--address: "1\.2\.3\.4\.5" is not/],
    [{ address: '127.0.23.20\n' }, /--address: "127\.0\.23\.20\?" is not/],
    [{ address: '../../etc/passwd' }, /--address: /],
    [{ netmask: '255.0.255.0' }, /--netmask: 255\.0\.255\.0 is not a contiguous netmask/],
    [{ netmask: '0.0.0.0' }, /--netmask: /],
    [{ gateway: '127.0.24.1' }, /--gateway: 127\.0\.24\.1 is outside the LAN 127\.0\.23\.0\/24/],
    [{ gateway: '127.0.23.20' }, /--gateway: .*own address/],
    [{ address: '127.0.23.255' }, /--address: 127\.0\.23\.255 is the broadcast address of 127\.0\.23\.0\/24/],
    [{ address: '127.0.23.0' }, /--address: 127\.0\.23\.0 is the network address/],
  ];
  for (const [change, want] of table) {
    const s = { ...good, ...change };
    assert.match(await refused(['network', 'set', '--address', s.address, '--netmask', s.netmask, '--gateway', s.gateway]), want);
  }
  assert.match(await refused(['network', 'set', '--address', good.address, '--netmask', good.netmask]), /network set: missing --gateway/);
  assert.equal(await readFile(join(d.configDir, 'sim-board', 'network.json'), 'utf8'), before, 'nothing applied');
});

test('network settings are per box: the HA config-dir copy leaves sim-board/ out', async () => {
  const files = await configDirFiles(d.configDir, new DataRegistry(BUILT_IN_DATA));
  assert.ok('admin.json' in files, 'the replicated files are there');
  assert.deepEqual(Object.keys(files).filter((f) => f.startsWith('sim-board')), []);
  await ok(['system', 'reboot', '--confirm']);
  assert.deepEqual(Object.keys(await configDirFiles(d.configDir, new DataRegistry(BUILT_IN_DATA))).filter((f) => f.startsWith('sim-board')), []);
});

test('system reboot and shutdown: refused without --confirm; with it, an event first and the sim board records it, the daemon runs on', async () => {
  assert.match(await refused(['system', 'reboot']), /system reboot: .*say --confirm/);
  assert.match(await refused(['system', 'shutdown']), /system shutdown: .*say --confirm/);
  assert.match(await refused(['system', 'reboot', '--confirm=yes']), /--confirm takes no value/);
  const recorded = async () => ((await readFile(join(d.configDir, 'sim-board', 'power.json'), 'utf8').then(JSON.parse, () => ({ requests: [] }))) as { requests: { action: string }[] }).requests.map((r) => r.action);
  const had = await recorded();
  assert.equal((await json<{ requested: string }>(['system', 'reboot', '--confirm'])).requested, 'reboot');
  assert.match(await ok(['system', 'shutdown', '--confirm']), /shutdown requested/);
  assert.deepEqual((await recorded()).slice(had.length), ['reboot', 'shutdown']);
  for (const kind of ['system.reboot', 'system.shutdown']) assert.equal((await eventsOf(kind))[0]?.severity, 'warning', kind);
  assert.ok(d.proc && d.proc.exitCode === null, 'the sim daemon keeps running');
  await ok(['status']);
});

/** Swaps the sim disk to a fixture and polls: the disk monitor raises its events. */
async function diskState(state: string): Promise<void> {
  await copyFile(join(FIX, state, 'data.json'), join(disk, 'data.json'));
  await ok(['disk', 'poll']);
}

test('alarms: critical events until acknowledged, in alarm list and status; ack by id, refusals, ack all; acks survive a restart', async () => {
  assert.deepEqual(await json(['alarm', 'list']), []);
  assert.equal(await ok(['alarm', 'list']), 'no alarms\n');
  assert.deepEqual((await json<{ alarms: unknown }>(['status'])).alarms, { unacknowledged: 0, latest: null });
  await diskState('failing');
  await diskState('missing');
  const criticals = (await json<Ev[]>(['events', 'list'])).filter((e) => e.severity === 'critical');
  assert.ok(criticals.length >= 2, `the disk raised critical events: ${criticals.map((e) => e.kind)}`);
  const alarms = await json<Ev[]>(['alarm', 'list']);
  assert.deepEqual(alarms.map((e) => e.id), criticals.map((e) => e.id), 'exactly the critical events, newest first');
  const st = (await json<{ alarms: { unacknowledged: number; latest: string } }>(['status'])).alarms;
  assert.deepEqual(st, { unacknowledged: alarms.length, latest: alarms[0]!.text });
  assert.match(await ok(['status']), new RegExp(`alarms: ${alarms.length} unacknowledged, latest: `));
  assert.match(await ok(['alarm', 'list']), new RegExp(`^${alarms[0]!.id} .*${alarms[0]!.kind}`));

  assert.match(await refused(['alarm', 'ack', '../../x']), /alarm ack: "\.\.\/\.\.\/x" is not an event id/);
  assert.match(await refused(['alarm', 'ack', 'zzzzzzzzz00000000']), /alarm ack: no event zzzzzzzzz00000000/);
  await ok(['network', 'set', '--address', '127.0.23.30', '--netmask', '255.255.255.0', '--gateway', '127.0.23.1']);
  const info = (await eventsOf('network.changed'))[0]!;
  assert.match(await refused(['alarm', 'ack', info.id]), /is info, not an alarm/);
  assert.match(await refused(['alarm', 'ack', alarms[0]!.id, 'extra']), /unexpected argument/);

  const oldest = alarms.at(-1)!;
  assert.deepEqual(await json(['alarm', 'ack', oldest.id]), { acknowledged: 1 });
  assert.deepEqual(await json(['alarm', 'ack', oldest.id]), { acknowledged: 0 }, 'once only');
  const left = alarms.slice(0, -1).map((e) => e.id);
  assert.deepEqual((await json<Ev[]>(['alarm', 'list'])).map((e) => e.id), left);

  // A healthy disk again, so the restart raises no alarm of its own.
  await diskState('healthy');
  await d.stop();
  await d.start();
  assert.deepEqual((await json<Ev[]>(['alarm', 'list'])).map((e) => e.id), left, 'the acknowledgement survived the restart');
  assert.deepEqual(await json(['alarm', 'ack']), { acknowledged: left.length });
  assert.equal(await ok(['alarm', 'list']), 'no alarms\n');
  assert.deepEqual((await json<{ alarms: unknown }>(['status'])).alarms, { unacknowledged: 0, latest: null });
  assert.deepEqual(await json(['alarm', 'ack']), { acknowledged: 0 });
  // A new critical event after the ack is a new alarm.
  await diskState('healthy');
  await diskState('failing');
  await eventually('a new alarm', async () => (await json<Ev[]>(['alarm', 'list'])).length === 1);
  await diskState('healthy');
  await d.stop();
  await d.start();
  assert.equal((await json<Ev[]>(['alarm', 'list'])).length, 1, 'acknowledged ones stay acknowledged, the new one stays an alarm');
});

test('admin reset: a new readable password that logs in (the old one no longer), an event and no log line with it', async () => {
  const old = (await readFile(join(d.configDir, 'initial-admin-password'), 'utf8')).trim();
  assert.equal(await verifyAdmin(d.configDir, 'admin', old), true);
  const text = await ok(['admin', 'reset']);
  const m = /^new admin password: (\S+)\n$/.exec(text);
  assert.ok(m, text);
  const first = m[1]!;
  const { password } = await json<{ password: string }>(['admin', 'reset']);
  for (const p of [first, password]) assert.match(p, /^[a-km-zA-HJ-NP-Z2-9]{12}$/, 'twelve characters, no 0/O/1/l/I');
  assert.notEqual(password, first);
  assert.equal(await verifyAdmin(d.configDir, 'admin', password), true);
  assert.equal(await verifyAdmin(d.configDir, 'admin', first), false);
  assert.equal(await verifyAdmin(d.configDir, 'admin', old), false);
  const evs = await eventsOf('admin.reset');
  assert.equal(evs.length, 2);
  assert.equal(evs[0]!.severity, 'warning');
  await d.waitFor((l) => l.evt === 'event' && l.kind === 'admin.reset');
  const everything = JSON.stringify(d.logs) + d.stderr + d.notices.join('\n') + JSON.stringify(await json(['events', 'list']));
  for (const p of [first, password]) assert.ok(!everything.includes(p), 'the password is in no log line and no event');
  assert.match(await refused(['admin', 'reset', '--password-stdin']), /admin reset: reads nothing from standard input/);
});
