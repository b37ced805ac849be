import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// Issue 12, finding 6: AUTH lockout evasion. Daemon on 127.0.104.1; each test's clients
// have their own addresses in 127.0.104.0/24, so the lockout state of one test is not another's.
const HOST = '127.0.104.1';
const LOCKED = '454 4.7.0 Too many failed logins, try again later';
const FAILED = '535 5.7.8 Error: authentication failed';
const OK = '235 2.7.0 Authentication successful';
const BUSY = '454 4.7.0 Temporary authentication failure';
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({
    host: HOST,
    config: {
      thresholds: { alert: true, perAccountMessagesPerDay: 1 },
      auth: { lockout: { maxFailures: 3, windowMinutes: 10, lockMinutes: 15 }, maxConcurrentChecks: 1, maxQueuedChecks: 1, suspendOnThreshold: true },
      alerts: { adminEmails: ['admin@example.test'], periodMinutes: 60 },
    },
  });
  await d.start();
  for (const u of ['bob', 'carol', 'dave', 'erin', 'admin']) await d.addUser(`${u}@example.test`, `${u}-secret-1`);
});
after(async () => d.cleanup());

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

/** A submission session from `from`, logged in over STARTTLS; the AUTH reply, and the session (closed unless kept). */
async function login(from: string, user: string, pass: string, keep = false): Promise<{ c: RawSmtp; reply: string }> {
  const c = await RawSmtp.open(HOST, d.ports.submission, from);
  await c.reply();
  await c.cmd('EHLO client.test');
  await c.starttls();
  await c.cmd('EHLO client.test');
  const reply = await c.cmd(`AUTH PLAIN ${plain(user, pass)}`);
  if (!keep) c.close();
  return { c, reply };
}
const auth = async (from: string, user: string, pass: string) => (await login(from, user, pass)).reply;

test('a success clears only its own (client, account) pair: logging in to its own account does not wipe the guesser\'s failures', async () => {
  const GUESSER = '127.0.104.10';
  assert.equal(await auth(GUESSER, 'nobody1@example.test', 'guess-1'), FAILED);
  assert.equal(await auth(GUESSER, 'nobody2@example.test', 'guess-2'), FAILED);
  assert.equal(await auth(GUESSER, 'carol@example.test', 'carol-secret-1'), OK); // the guesser owns carol
  assert.equal(await auth(GUESSER, 'nobody3@example.test', 'guess-3'), FAILED);
  assert.equal(await auth(GUESSER, 'nobody4@example.test', 'guess-4'), LOCKED);
  // The lock reply does not say whether the password was right.
  assert.equal(await auth(GUESSER, 'carol@example.test', 'carol-secret-1'), LOCKED);
  assert.equal(await auth(GUESSER, 'carol@example.test', 'wrong-password'), LOCKED);
});

test('an account guessed from many clients is one alert per period, naming the clients', async () => {
  const guessers = ['127.0.104.31', '127.0.104.32', '127.0.104.33', '127.0.104.34', '127.0.104.35'];
  for (const ip of guessers) assert.equal(await auth(ip, 'dave@example.test', `guess-${ip}`), FAILED);
  // Locked for every guesser, whatever the password; the owner elsewhere still logs in.
  for (const ip of guessers) assert.equal(await auth(ip, 'dave@example.test', 'dave-secret-1'), LOCKED);
  assert.equal(await auth('127.0.104.39', 'dave@example.test', 'dave-secret-1'), OK);
  // Three locks (the 3rd, 4th and 5th guessers): the first is mailed, the next two held back.
  await d.waitFor((l) => l.evt === 'alert.suppressed' && String(l.key).includes('dave@example.test') && l.suppressed === 2);
  const dir = join(d.dataDir, 'mail', 'example.test', 'admin', 'Maildir', 'new');
  let mails: string[] = [];
  for (let i = 0; i < 100; i++) {
    mails = [];
    for (const n of await readdir(dir).catch(() => [] as string[])) {
      const text = await readFile(join(dir, n), 'utf8');
      if (text.includes('X-Mlsd-Event: auth.lockout') && text.includes('dave@example.test')) mails.push(text);
    }
    if (mails.length > 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 500)); // a second mail, if one were sent, has reached the Maildir by now
  const again = (await readdir(dir)).length;
  assert.equal(mails.length, 1, `auth.lockout mails about dave: ${mails.length} (mailbox holds ${again})`);
  const body = mails[0]!.replace(/=\r?\n/g, '');
  for (const ip of guessers.slice(0, 3)) assert.ok(body.includes(ip), `the alert names ${ip}`);
});

test('a suspended account\'s right password gets the reply of a wrong one, counts as a failure, and the log says why', async () => {
  const OWNER = '127.0.104.50';
  const { c, reply } = await login(OWNER, 'erin@example.test', 'erin-secret-1', true);
  assert.equal(reply, OK);
  assert.match(await c.cmd('MAIL FROM:<erin@example.test>'), /^250 /);
  await c.cmd('RCPT TO:<someone@remote.test>');
  assert.match(await c.data('From: erin@example.test\r\nSubject: one\r\n\r\nhello'), /^250 /);
  await c.cmd('MAIL FROM:<erin@example.test>'); // past the day limit: the account is suspended
  c.close();
  await d.waitFor((l) => l.evt === 'event' && l.kind === 'account.suspended');

  const PROBER = '127.0.104.51';
  assert.equal(await auth(PROBER, 'erin@example.test', 'wrong-password'), FAILED);
  assert.equal(await auth(PROBER, 'erin@example.test', 'erin-secret-1'), FAILED);
  await d.waitFor((l) => l.evt === 'auth.suspended' && l.ip === PROBER && l.account === 'erin@example.test');
  // It counted: the third try is a failure that locks, and the fourth is the lock reply.
  assert.equal(await auth(PROBER, 'erin@example.test', 'erin-secret-1'), FAILED);
  assert.equal(await auth(PROBER, 'erin@example.test', 'erin-secret-1'), LOCKED);
});

test('a flood of password checks past the queue is answered 454 4.7.0 at once; the checks that ran answer 535', async () => {
  // maxConcurrentChecks 1, maxQueuedChecks 1: of many AUTHs arriving together at most two are checked.
  const n = 10;
  const sessions = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const c = await RawSmtp.open(HOST, d.ports.submission, `127.0.104.${100 + i}`);
      await c.reply();
      await c.cmd('EHLO flood.test');
      await c.starttls();
      await c.cmd('EHLO flood.test');
      return c;
    }),
  );
  const replies = await Promise.all(sessions.map((c, i) => c.cmd(`AUTH PLAIN ${plain(`flood${i}@example.test`, 'wrong')}`)));
  for (const c of sessions) c.close();
  const busy = replies.filter((r) => r === BUSY).length;
  const failed = replies.filter((r) => r === FAILED).length;
  assert.equal(busy + failed, n, replies.join('\n'));
  assert.ok(busy >= 1, `no 454 among ${replies.join(' | ')}`);
  assert.ok(failed >= 1 && failed < n);
  await d.waitFor((l) => l.evt === 'auth.busy');
  // The flood over, a client refused as busy is checked again.
  const i = replies.indexOf(BUSY);
  assert.equal(await auth(`127.0.104.${100 + i}`, 'bob@example.test', 'bob-secret-1'), OK);
});
