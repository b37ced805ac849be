// The disk monitor on an HA pair: a standby watches its own data disk. Loopback: 127.0.68.x
// (the pair; the SMTP client on 127.0.68.20).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, type TestDaemon } from '../helpers/daemon.js';
import { startHaPair, startedInSync, type HaPair } from '../helpers/ha-pair.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { SMARTCTL_FIXTURES as FIX } from '../helpers/sim-disk.js';

const CLIENT = '127.0.68.20';
let p: HaPair | null = null;
let disk = '';
after(async () => {
  await p?.cleanup();
  if (disk) await rm(disk, { recursive: true, force: true });
});

const put = (state: string) => copyFile(join(FIX, state, 'data.json'), join(disk, 'data.json'));

async function cli(d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `mlsd ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const kinds = async (d: TestDaemon) => (JSON.parse(await cli(d, ['events', 'list', '--json'])) as { kind: string }[]).map((e) => e.kind);

test('a standby reads its own data disk: disk status, disk poll and the status line, and its failing disk is its own event; the monitor outlives a takeover', async () => {
  // The config document is shared by the pair, so both boxes read this one fixture folder;
  // with a long poll period each reads it only at start and when told (`disk poll`).
  disk = await mkdtemp(join(tmpdir(), 'mlsd-disk-ha-'));
  await put('healthy');
  p = await startHaPair({ net: '127.0.68', config: { disk: { pollMinutes: 600, simFixtures: disk } } });
  const { active, standby } = await startedInSync(p);

  const st = JSON.parse(await cli(standby, ['disk', 'status', '--json']));
  assert.equal(st.disk.model, 'HGST HUS726020ALE614');
  assert.equal(st.failing, false);
  const status = await cli(standby, ['status']);
  assert.match(status, /this box is standby/);
  assert.match(status, /^data disk: healthy, HGST HUS726020ALE614, 27 °C/m);

  // The standby's disk starts to fail: its own poll raises the event, in its own event log.
  await put('failing');
  const from = standby.logs.length;
  const polled = JSON.parse(await cli(standby, ['disk', 'poll', '--json']));
  assert.equal(polled.failing, true);
  assert.ok((await kinds(standby)).includes('disk.failurePredicted'));
  assert.equal(standby.logs.slice(from).filter((l) => l.evt === 'disk.poll').length, 1, 'one monitor on the standby');
  assert.match(await cli(standby, ['status']), /^data disk: FAILING \(SMART\), SAMSUNG MZWLL3T2HAJQ-00005/m);
  // The active has not read the disk since its start: the event is the standby's alone.
  assert.ok(!(await kinds(active)).includes('disk.failurePredicted'));

  // The standby takes over: the same monitor goes on (a second one would raise the failing
  // disk again), and the mail services' usage unit reads space through it.
  await active.stop();
  await eventually('the standby active', async () => (await p!.status(standby)).role === 'active', 20000);
  const before = standby.logs.length;
  await cli(standby, ['disk', 'poll']);
  assert.equal(standby.logs.slice(before).filter((l) => l.evt === 'disk.poll').length, 1, 'one monitor after the takeover');
  const raised = await kinds(standby);
  assert.equal(raised.filter((k) => k === 'disk.failurePredicted').length, 1, 'a disk that stays failing is reported once');
  assert.equal(raised.filter((k) => k === 'disk.replaced').length, 1, 'the one swap, healthy to failing fixture');
  assert.equal((await cli(standby, ['status'])).match(/^data disk: /gm)?.length, 1);
  await writeFile(join(disk, 'space.json'), JSON.stringify({ totalBytes: 1e12, availableBytes: 1e12 * 0.04 }));
  const reply = await eventually('the service answers MAIL', async () => {
    const c = await RawSmtp.open(p!.service, p!.ports.mx, CLIENT).catch(() => null);
    if (!c) return false;
    try {
      await c.reply();
      await c.cmd('EHLO client.example.test');
      return await c.cmd('MAIL FROM:<alice@remote.test>');
    } finally {
      c.close();
    }
  });
  assert.match(reply, /^452 4\.3\.1 /);
});
