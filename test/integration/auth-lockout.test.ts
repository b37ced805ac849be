import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// Daemon on 127.0.9.1; the guessing client 127.0.9.66; the real user 127.0.9.20.
const HOST = '127.0.9.1';
const GUESSER = '127.0.9.66';
const OWNER = '127.0.9.20';
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({ host: HOST, config: { auth: { lockout: { maxFailures: 3, windowMinutes: 10, lockMinutes: 15 } } } });
  await d.start();
  await d.addUser('bob@example.test', 'bob-secret-1');
});
after(async () => d.cleanup());

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

async function auth(from: string, user: string, pass: string): Promise<string> {
  const c = await RawSmtp.open(HOST, d.ports.smtps, from, true);
  await c.reply();
  await c.cmd('EHLO client.test');
  const r = await c.cmd(`AUTH PLAIN ${plain(user, pass)}`);
  c.close();
  return r;
}

test('failed logins lock the guessing IP out, even with the right password; others are unaffected', async () => {
  for (let i = 0; i < 3; i++) assert.equal(await auth(GUESSER, 'bob@example.test', `guess-${i}`), '535 5.7.8 Error: authentication failed');
  assert.equal(await auth(GUESSER, 'bob@example.test', 'bob-secret-1'), '454 4.7.0 Too many failed logins, try again later');
  assert.equal(await auth(GUESSER, 'someone@example.test', 'whatever-1'), '454 4.7.0 Too many failed logins, try again later');
  // The guessed account was also locked, but only for the guessing IP.
  assert.equal(await auth(OWNER, 'bob@example.test', 'bob-secret-1'), '235 2.7.0 Authentication successful');
  const refused = await d.waitFor((l) => l.evt === 'smtp.refuse' && l.ip === GUESSER && l.reply === '454 4.7.0 Too many failed logins, try again later');
  assert.equal(refused.stage, 'auth');
});

test('the lock is an event in the persistent event log, newest first, kept across a restart', async () => {
  const list = async () => JSON.parse((await d.cli(['events', 'list', '--json'])).stdout) as { kind: string; ip: string; account: string; severity: string; text: string }[];
  const evs = await list();
  const lock = evs.find((e) => e.kind === 'auth.lockout');
  assert.ok(lock, JSON.stringify(evs));
  assert.equal(lock.ip, GUESSER);
  assert.equal(lock.severity, 'warning');
  assert.match(lock.text, /locked out of AUTH for 15 min after 3 failed logins in 10 min/);
  await d.stop();
  await d.start();
  assert.deepEqual(await list(), evs);
  const text = await d.cli(['events', 'list']);
  assert.match(text.stdout, /warning\s+auth\.lockout/);
});
