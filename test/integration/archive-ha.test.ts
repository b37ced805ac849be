// The archive on an HA pair: what the active archived, and what it acknowledged but had
// not yet archived when it died, is in the archive of the box that takes over.
// Loopback: 127.0.136.x (.1/.2 the boxes, .10 the service address, .20 the client).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, type TestDaemon } from '../helpers/daemon.js';
import { startHaPair, startedInSync, type HaPair } from '../helpers/ha-pair.js';
import { sendOnce } from '../helpers/smtp-client.js';

const CLIENT = '127.0.136.20';
let p: HaPair | null = null;
after(async () => {
  await p?.cleanup();
});

async function cli(d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `mlsd ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function archived(d: TestDaemon): Promise<{ records: number; intake: number; indexedUpTo: number }> {
  return (JSON.parse(await cli(d, ['status', '--json'])) as { archive: { records: number; intake: number; indexedUpTo: number } }).archive;
}

test('after a failover the new active has the whole archive, including mail acknowledged just before the kill, and it verifies', async () => {
  // One message a batch, and while mail arrives the intake works 1 % of the time: the burst
  // below is still in the intake when the active dies, so the standby's copy of the intake
  // (written with each commit, before its 250) is what gets those messages archived.
  p = await startHaPair({ net: '127.0.136', config: { archive: { batchMax: 1, busyShare: 0.01 } } });
  const { active, standby } = await startedInSync(p);
  await active.addUser('alice@example.test', 'password-1234');
  const subjects: string[] = [];
  for (let i = 0; i < 3; i++) {
    subjects.push(`archived-${i}`);
    assert.match(await sendOnce(p.service, p.ports.mx, 'alice@example.test', `archived-${i}`, CLIENT, `這是第${i}份報價單`), /^250 /);
  }
  await eventually('three records archived on the active', async () => {
    const a = await archived(active);
    return a.records === 3 && a.intake === 0;
  });
  // The standby answers archive commands with "run that on the active box".
  const onStandby = await standby.cli(['archive', 'search', '報價']);
  assert.notEqual(onStandby.code, 0);
  assert.match(onStandby.stderr, /active box/);

  // Five more, and the active dies right after the last 250: some may still be in the intake.
  for (let i = 0; i < 5; i++) {
    subjects.push(`last-${i}`);
    assert.match(await sendOnce(p.service, p.ports.mx, 'alice@example.test', `last-${i}`, CLIENT, `invoice number ${i} 報價`), /^250 /);
  }
  const archivedByActive = active.logs.filter((l) => l.evt === 'archive.intake').reduce((n, l) => n + Number(l.archived), 0);
  await active.kill9();
  assert.ok(archivedByActive < 8, `the active archived only ${archivedByActive} of 8 before it died`);
  const from = standby.logs.length;
  await eventually('the standby active', async () => (await p!.status(standby)).role === 'active', 20000);
  await eventually('every acknowledged message archived and indexed on the survivor', async () => {
    const a = await archived(standby);
    return a.records === 8 && a.intake === 0 && a.indexedUpTo === 8;
  }, 30000);
  const takenInBySurvivor = standby.logs.slice(from).filter((l) => l.evt === 'archive.intake').reduce((n, l) => n + Number(l.archived), 0);
  assert.equal(takenInBySurvivor, 8 - archivedByActive, 'the survivor archived what was still in the intake');
  const hits = (JSON.parse(await cli(standby, ['archive', 'search', '報價', '--json'])) as { hits: { subject: string }[] }).hits;
  assert.deepEqual(hits.map((h) => h.subject).sort(), [...subjects].sort());
  assert.equal((JSON.parse(await cli(standby, ['archive', 'search', 'invoices', '--json'])) as { hits: unknown[] }).hits.length, 5);
  const v = await standby.cli(['archive', 'verify', '--json']);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.equal(JSON.parse(v.stdout).messages, 8);
  // No message archived twice: each id once.
  const ids = (JSON.parse(await cli(standby, ['archive', 'search', '--json'])) as { hits: { id: string }[] }).hits.map((h) => h.id);
  assert.equal(new Set(ids).size, 8);
});
