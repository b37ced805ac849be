import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon, eventually } from '../helpers/daemon.js';
import { ownSimDisk } from '../helpers/sim-disk.js';

// Daemon on 127.0.24.1 (no client connects: the CLI talks over the control socket).
const HOST = '127.0.24.1';
let d: TestDaemon;
let put: (state: string) => Promise<void>;

interface Ev {
  kind: string;
  text: string;
  data?: { was?: Record<string, string>; now?: Record<string, string> };
}

const events = async (kind: string): Promise<Ev[]> => {
  const r = await d.cli(['events', 'list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as Ev[]).filter((e) => e.kind === kind);
};
const recorded = async () => JSON.parse(await readFile(join(d.configDir, 'data-disk.json'), 'utf8')) as Record<string, string>;

/** A start of the box on the disk `state` holds, once its first read of that disk is done. */
async function bootOn(state: string): Promise<void> {
  await d.stop();
  await put(state);
  await d.start();
  await d.waitFor((l) => l.evt === 'disk.poll');
}

before(async () => {
  // pollMinutes is long: the only reads are the one at each start.
  d = await TestDaemon.create({
    host: HOST,
    config: { disk: { pollMinutes: 600, simFixtures: '' }, thresholds: { alert: true }, alerts: { adminEmails: ['admin@example.test'], periodMinutes: 60 } },
  });
  ({ put } = await ownSimDisk(d));
});
after(async () => d.cleanup());

test('a data disk swapped while the box was off is reported at the next start, once', async () => {
  await bootOn('healthy');
  await d.addUser('admin@example.test', 'admin-secret-1');
  // The first start ever records the disk on the config flash, with no alarm.
  assert.deepEqual(await events('disk.replaced'), []);
  assert.deepEqual({ ...(await recorded()), seenAt: undefined }, { model: 'HGST HUS726020ALE614', serial: 'REDACTED', wwn: '5 000cca 0499602d2', seenAt: undefined });

  await bootOn('replaced');
  const [ev, ...more] = await events('disk.replaced');
  assert.ok(ev, 'a disk.replaced event after a start on another disk');
  assert.deepEqual(more, []);
  assert.deepEqual(ev.data?.was, { model: 'HGST HUS726020ALE614', serial: 'REDACTED', wwn: '5 000cca 0499602d2' });
  assert.deepEqual(ev.data?.now, { model: 'WDC WD20EFRX-68EUZN0', serial: 'REDACTED', wwn: '5 0014ee 0499602d2' });
  assert.match(ev.text, /was HGST HUS726020ALE614.*now WDC WD20EFRX-68EUZN0/);
  assert.equal((await recorded()).model, 'WDC WD20EFRX-68EUZN0');
  // The first read waits for the mail services: what a boot finds reaches the administrator.
  await eventually('the disk.replaced alert mail', async () => (await d.mailbox('admin')).some((m) => /^X-Mlsd-Event: disk\.replaced/m.test(m)));

  await bootOn('replaced');
  assert.equal((await events('disk.replaced')).length, 1, 'a restart on the same disk is no second replacement');
});

test('a start with no disk says it is missing and keeps the identity; the same disk back is no replacement', async () => {
  const before = (await events('disk.replaced')).length;
  await bootOn('missing');
  assert.ok((await events('disk.missing')).length >= 1);
  assert.match((await d.cli(['status'])).stdout, /^data disk: MISSING$/m);
  assert.equal((await recorded()).model, 'WDC WD20EFRX-68EUZN0', 'the last disk seen is kept while none is there');

  await bootOn('replaced');
  assert.equal((await events('disk.replaced')).length, before);
});

test('a torn identity file is logged and rewritten, and the box still starts', async () => {
  await d.stop();
  await writeFile(join(d.configDir, 'data-disk.json'), '{"model": "HGST');
  await bootOn('replaced');
  assert.ok(d.logs.some((l) => l.evt === 'disk.identity.unreadable'));
  assert.equal((await recorded()).model, 'WDC WD20EFRX-68EUZN0');
});
