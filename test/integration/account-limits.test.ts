import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { TestDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { openDb, sublevel } from '../../src/store/db.js';

/**
 * Issue 12, finding 12 (the account limits part):
 * - auth.suspendAtMultiple above 1 suspends: MAILs refused at the day limit count as attempts;
 * - the first-time-recipient store learns a recipient only from a committed message, and
 *   forgets one not written to for thresholds.newRecipientMemoryDays.
 * Addresses 127.0.99.x: .1 mlsd, .2 the client.
 */
const HOST = '127.0.99.1';
const CLIENT = '127.0.99.2';
const DAY = 86_400_000;

let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({
    host: HOST,
    config: {
      thresholds: { perAccountMessagesPerDay: 2, perAccountNewRecipientsPerDay: 3 },
      auth: { suspendOnThreshold: true, suspendAtMultiple: 2 },
    },
  });
  await d.start();
  await d.addUser('bob@example.test', 'bob-password-1');
  await d.addUser('carol@example.test', 'carol-password-1');
});

after(async () => d?.cleanup());

async function login(user: string, password: string): Promise<RawSmtp> {
  const c = await RawSmtp.open(HOST, d.ports.smtps, CLIENT, true);
  await c.reply();
  await c.cmd('EHLO pc.example.test');
  assert.equal(await c.cmd(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`), '235 2.7.0 Authentication successful');
  return c;
}

async function send(c: RawSmtp, from: string, to: string[], subject: string): Promise<string> {
  const m = await c.cmd(`MAIL FROM:<${from}>`);
  if (!m.startsWith('250')) return m;
  for (const r of to) assert.match(await c.cmd(`RCPT TO:<${r}>`), /^250 /);
  return c.data(`From: ${from}\r\nSubject: ${subject}\r\n\r\nhello`);
}

type Users = { address: string; suspended: { reason: string } | null }[];
const suspension = async (who: string) => (JSON.parse((await d.cli(['user', 'list', '--json'])).stdout) as Users).find((u) => u.address === who)!.suspended;

test('auth.suspendAtMultiple 2: a client that goes on trying past the day limit is suspended once its attempts reach twice the limit', async () => {
  const c = await login('bob@example.test', 'bob-password-1');
  for (let i = 0; i < 2; i++) assert.match(await send(c, 'bob@example.test', ['x@remote.test'], `message ${i}`), /^250 /);
  const limited = /^450 4\.7\.1 Error: too many messages from bob@example\.test today \(limit thresholds\.perAccountMessagesPerDay = 2\)/;
  assert.match(await c.cmd('MAIL FROM:<bob@example.test>'), limited);
  // 2 sent + 1 refused = 3 attempts, below 2 x 2: not suspended yet.
  assert.equal(await suspension('bob@example.test'), null);
  assert.match(await c.cmd('MAIL FROM:<bob@example.test>'), limited);
  const ev = await d.waitFor((l) => l.evt === 'event' && l.kind === 'account.suspended' && l.account === 'bob@example.test');
  assert.match(String(ev.msg), /2 messages today, 2 more refused, limit 2/);
  assert.equal(await c.cmd('MAIL FROM:<bob@example.test>'), '550 5.7.1 Error: account suspended from sending; contact the administrator');
  c.close();
  assert.match((await suspension('bob@example.test'))!.reason, /2 messages today, 2 more refused, limit 2 \(thresholds\.perAccountMessagesPerDay\)/);
});

/** The known-recipient store, read with the daemon stopped. */
async function seen(): Promise<Map<string, unknown>> {
  const db = await openDb(join(d.dataDir, 'db'));
  try {
    return new Map(await sublevel(db, 'seen').iterator().all());
  } finally {
    await db.close();
  }
}

test('first-time recipients: learnt at commit only, counted once a day, forgotten after thresholds.newRecipientMemoryDays', async () => {
  const c = await login('carol@example.test', 'carol-password-1');
  // A probe that never sends a message: counted (2 of 3 today) but not learnt.
  assert.match(await c.cmd('MAIL FROM:<carol@example.test>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<probe1@remote.test>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<probe2@remote.test>'), /^250 /);
  assert.match(await c.cmd('RSET'), /^250 /);
  // Asked again the same day, probe1 is not counted twice; sent1 is the 3rd new one.
  const before = Date.now();
  assert.match(await send(c, 'carol@example.test', ['probe1@remote.test', 'sent1@remote.test'], 'real message'), /^250 /);
  assert.match(await c.cmd('MAIL FROM:<carol@example.test>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<probe3@remote.test>'), /^452 4\.5\.3 Error: too many new recipients from carol@example\.test today/);
  c.close();
  await d.stop();

  const after1 = await seen();
  after1.delete('bob@example.test\nx@remote.test'); // the first test's message
  assert.deepEqual([...after1.keys()].sort(), ['carol@example.test\nprobe1@remote.test', 'carol@example.test\nsent1@remote.test']);
  for (const at of after1.values()) assert.ok(typeof at === 'number' && at >= before - 1000 && at <= Date.now(), String(at));

  // An old correspondent, one from before recipients were dated, and a recent one.
  const db = await openDb(join(d.dataDir, 'db'));
  await sublevel(db, 'seen').batch([
    { type: 'put', key: 'carol@example.test\nold@remote.test', value: Date.now() - 100 * DAY },
    { type: 'put', key: 'carol@example.test\nlegacy@remote.test', value: 1 },
    { type: 'put', key: 'carol@example.test\nrecent@remote.test', value: Date.now() - 10 * DAY },
  ]);
  await db.close();
  await d.start();
  const pruned = await d.waitFor((l) => l.evt === 'thresholds.seen.prune');
  assert.equal(pruned.removed, 1);
  assert.equal(pruned.dated, 1);
  assert.equal(pruned.days, 90);
  await d.stop();
  const after2 = await seen();
  assert.ok(!after2.has('carol@example.test\nold@remote.test'));
  assert.ok(after2.has('carol@example.test\nrecent@remote.test'));
  const legacy = after2.get('carol@example.test\nlegacy@remote.test');
  assert.ok(typeof legacy === 'number' && legacy > Date.now() - DAY, String(legacy));
  await d.start();
});
