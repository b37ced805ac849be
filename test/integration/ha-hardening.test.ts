// Issue 12, finding 10: an HA catch-up that trusted file names, and serial lines that could be
// recorded and played back. Loopback: 127.0.106.x (catch-up) and 127.0.107.x (serial replay).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, open, readFile, readdir, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, type TestDaemon } from '../helpers/daemon.js';
import { startHaPair, startedInSync, waitInSync, type HaPair } from '../helpers/ha-pair.js';
import { sendOnce } from '../helpers/smtp-client.js';
import { deriveKey, signLine } from '../../src/ha/wire.js';

const pairs: HaPair[] = [];
const socats: ChildProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const p of pairs) await p.cleanup();
  for (const s of socats) s.kill('SIGTERM');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const maildirNew = (d: TestDaemon) => join(d.dataDir, 'mail', 'example.test', 'alice', 'Maildir', 'new');

test('a standby whose copy of a message was cut short while it was down gets the whole, identical file back at rejoin', async () => {
  const p = await startHaPair({ net: '127.0.106' });
  pairs.push(p);
  const { active, standby } = await startedInSync(p);
  await active.addUser('alice@example.test', 'password-1234');
  // Big enough that half of it is clearly a cut-short file, not a different message.
  const reply = await sendOnce(p.service, p.ports.mx, 'alice@example.test', 'cut-short', '127.0.106.20', 'a line of the message body\r\n'.repeat(2000));
  assert.match(reply, /^250 /);
  const name = await eventually('the message on both disks', async () => {
    const [x, y] = await Promise.all([readdir(maildirNew(active)).catch(() => []), readdir(maildirNew(standby)).catch(() => [])]);
    return x.length === 1 && y.length === 1 && x[0] === y[0] ? x[0] : false;
  });
  const whole = await readFile(join(maildirNew(active), name));

  // The standby dies as if killed while writing: its copy keeps the name and loses its end.
  await standby.kill9();
  await truncate(join(maildirNew(standby), name), Math.floor(whole.length / 2));
  await standby.start();
  await waitInSync(p, 60000);
  await eventually('the whole file on the standby', async () => (await readFile(join(maildirNew(standby), name))).equals(whole), 30000);
  assert.deepEqual(await readdir(maildirNew(standby)), [name], 'one copy, under its own name');
  // The active said why it sent the file again.
  const mismatch = active.logs.find((l) => l.evt === 'ha.sync.mismatch' && String(l.rel).endsWith(name));
  assert.equal(mismatch?.differs, 'size');
});

/** A null-modem pair like test/helpers/socat.ts, that also records what each end sends (socat -r/-R). */
async function recordingPtyPair(dir: string): Promise<{ a: string; b: string; fromA: string }> {
  const a = join(dir, 'rec-a');
  const b = join(dir, 'rec-b');
  const fromA = join(dir, 'rec-a-to-b.raw');
  const end = (path: string) => `pty,raw,echo=0,link=${path}`;
  const proc = spawn('/usr/bin/socat', ['-r', fromA, '-R', join(dir, 'rec-b-to-a.raw'), end(a), end(b)], { stdio: 'ignore' });
  socats.push(proc);
  await eventually('socat made both ends', async () => (await access(a).then(() => true, () => false)) && (await access(b).then(() => true, () => false)), 5000);
  return { a, b, fromA };
}

/** Writes one line into a pty end as another program on the cable would (the far end reads it). */
async function inject(device: string, line: string): Promise<void> {
  const fh = await open(device, constants.O_WRONLY | constants.O_NOCTTY);
  try {
    await fh.write(line);
  } finally {
    await fh.close();
  }
}

test('a takeover line recorded on the heartbeat cable and played back later is refused (ha.serial.replay): no takeover; so is a heartbeat, and a line in the old format', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-cable-'));
  dirs.push(dir);
  const cable = await recordingPtyPair(dir);
  const p = await startHaPair({ net: '127.0.107', serial: false, haA: { serial: { device: cable.a, baud: 115200 } }, haB: { serial: { device: cable.b, baud: 115200 } } });
  pairs.push(p);
  const { a, b } = p;
  const first = await startedInSync(p, 30000);
  assert.equal(first.active, a);
  await eventually('the cable carries heartbeats both ways', async () => {
    const [sa, sb] = await Promise.all([p.status(a), p.status(b)]);
    return sa.peer.links.serial === 'up' && sb.peer.links.serial === 'up';
  });

  // A switchover from a to b, and back: a's takeover line goes over the cable (and is recorded).
  assert.equal((await a.cli(['ha', 'switchover'])).code, 0);
  await eventually('b active and a its standby, in sync', async () => {
    const [sa, sb] = await Promise.all([p.status(a), p.status(b)]);
    return sb.role === 'active' && sb.replication === 'in sync' && sa.role === 'standby';
  }, 30000);
  const r = await b.cli(['ha', 'switchover']);
  assert.equal(r.code, 0, r.stderr);
  await eventually('a active again and b its standby, in sync', async () => {
    const [sa, sb] = await Promise.all([p.status(a), p.status(b)]);
    return sa.role === 'active' && sa.replication === 'in sync' && sb.role === 'standby' && sb.replication === 'in sync';
  }, 30000);

  const recorded = (await readFile(cable.fromA, 'latin1')).split('\n');
  const takeover = recorded.find((l) => l.includes('"t":"takeover"'));
  const heartbeat = recorded.find((l) => l.includes('"t":"hb"') && l.includes('"node":"a"'));
  assert.ok(takeover, 'a takeover line of a was recorded on the cable');
  assert.ok(heartbeat, 'a heartbeat line of a was recorded on the cable');
  const epochBefore = (await p.status(b)).epoch;
  const promotedBefore = b.logs.filter((l) => l.evt === 'ha.promoted').length;

  // Played back into a's end of the cable: b reads it as a's.
  const replayHb = b.waitFor((l) => l.evt === 'ha.serial.replay' && l.t === 'hb', 20000);
  await inject(cable.a, heartbeat + '\n');
  await replayHb;
  const replayTakeover = b.waitFor((l) => l.evt === 'ha.serial.replay' && l.t === 'takeover', 20000);
  await inject(cable.a, takeover + '\n');
  const refused = await replayTakeover;
  assert.equal(refused.node, 'a');

  // A takeover of the previous line format, rightly signed (as a box of the previous version
  // would send it): refused with its own log line, not acted on.
  const oldFormat = b.waitFor((l) => l.evt === 'ha.serial.oldFormat' && l.t === 'takeover', 20000);
  await inject(cable.a, signLine({ t: 'takeover', node: 'a', epoch: (await p.status(a)).epoch }, deriveKey('test-shared-key-0123456789', 'heartbeat')));
  await oldFormat;

  // Each line was read and refused: nothing moved.
  const [sa, sb] = await Promise.all([p.status(a), p.status(b)]);
  assert.equal(sb.role, 'standby');
  assert.equal(sa.role, 'active');
  assert.equal(sb.epoch, epochBefore);
  assert.equal(b.logs.filter((l) => l.evt === 'ha.promoted').length, promotedBefore, 'b did not take over');
  // The live cable still works after the refusals.
  assert.equal(sb.peer.links.serial, 'up');
});
