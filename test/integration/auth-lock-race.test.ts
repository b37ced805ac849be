import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// Issue 12, finding 6, as a reviewer attacked the fix: (1) guesses sent together wait in the
// password-check queue; a lock set while they wait must hold for them too. (2) A suspended
// account's mail client retrying the right password must not lock out the office's shared
// address for everybody else, nor tell a guesser whether its password was right. Daemon on
// 127.0.104.201; clients 127.0.104.202-.209.
const HOST = '127.0.104.201';
const LOCKED = '454 4.7.0 Too many failed logins, try again later';
const FAILED = '535 5.7.8 Error: authentication failed';
const OK = '235 2.7.0 Authentication successful';
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({
    host: HOST,
    config: { auth: { lockout: { maxFailures: 3, windowMinutes: 10, lockMinutes: 15 }, maxConcurrentChecks: 1, maxQueuedChecks: 20 } },
  });
  await d.start();
  for (const u of ['bob', 'carol', 'sus']) await d.addUser(`${u}@example.test`, `${u}-secret-1`);
});
after(async () => d.cleanup());

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

async function session(from: string): Promise<RawSmtp> {
  const c = await RawSmtp.open(HOST, d.ports.submission, from);
  await c.reply();
  await c.cmd('EHLO client.test');
  await c.starttls();
  await c.cmd('EHLO client.test');
  return c;
}

async function auth(from: string, user: string, pass: string): Promise<string> {
  const c = await session(from);
  try {
    return await c.cmd(`AUTH PLAIN ${plain(user, pass)}`);
  } finally {
    c.close();
  }
}

test('guesses sent together from one client: once the lock is set, the ones still queued get the lock reply, not a password check', async () => {
  const GUESSER = '127.0.104.202';
  const n = 12;
  const sessions = await Promise.all(Array.from({ length: n }, () => session(GUESSER)));
  const replies = await Promise.all(sessions.map((c, i) => c.cmd(`AUTH PLAIN ${plain(`guess${i}@example.test`, 'wrong')}`)));
  for (const c of sessions) c.close();
  const failed = replies.filter((r) => r === FAILED).length;
  const locked = replies.filter((r) => r === LOCKED).length;
  assert.equal(failed + locked, n, replies.join('\n'));
  // Checks run one at a time, so the third failure sets the lock before the fourth is checked.
  assert.equal(failed, 3, `password checks that ran: ${failed} of ${n}\n${replies.join('\n')}`);
  await d.waitFor((l) => l.evt === 'auth.locked' && l.queued === true);
});

test("a suspended account's right password, retried by its mail client, locks that account but not the office's address", async () => {
  const OFFICE = '127.0.104.203';
  const r = await d.cli(['user', 'suspend', 'sus@example.test', '--reason', 'test']);
  assert.equal(r.code, 0, r.stderr);
  // The first tries: the reply of a wrong password (no oracle).
  for (let i = 0; i < 3; i++) assert.equal(await auth(OFFICE, 'sus@example.test', 'sus-secret-1'), FAILED);
  // Then the account is locked for this client, whatever the password: still no oracle.
  assert.equal(await auth(OFFICE, 'sus@example.test', 'sus-secret-1'), LOCKED);
  assert.equal(await auth(OFFICE, 'sus@example.test', 'a-wrong-one'), LOCKED);
  // Everybody else behind the same address logs in as before.
  assert.equal(await auth(OFFICE, 'carol@example.test', 'carol-secret-1'), OK);
  // Wrong passwords from that address still count against it (the source lock still works).
  for (let i = 0; i < 3; i++) assert.equal(await auth(OFFICE, `nobody${i}@example.test`, 'guess'), FAILED);
  assert.equal(await auth(OFFICE, 'bob@example.test', 'bob-secret-1'), LOCKED);
});

test("a suspended account: a right and a wrong password count alike, so the address's lock cannot tell which was right", async () => {
  // sus@ is suspended by the test above. Each probe: two wrong guesses at a decoy, one try at
  // the suspended account, then the decoy again. Were only the wrong password counted against
  // the address, its lock would start one try earlier for the wrong one.
  // (a decoy of its own per probe: an account guessed at from both would be locked by its own count)
  const probe = async (from: string, decoy: string, password: string) => {
    const out = [await auth(from, decoy, 'guess-1'), await auth(from, decoy, 'guess-2')];
    out.push(await auth(from, 'sus@example.test', password));
    out.push(await auth(from, decoy, 'guess-3'));
    return out;
  };
  const right = await probe('127.0.104.204', 'decoy1@example.test', 'sus-secret-1');
  const wrong = await probe('127.0.104.205', 'decoy2@example.test', 'not-the-password');
  assert.deepEqual(right, wrong);
  assert.deepEqual(right, [FAILED, FAILED, FAILED, FAILED]);
});
