import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TestDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// Issue 12, finding 6: an IPv6 client picks a fresh address from its /64 for every guess.
// Loopback has only ::1, so the test puts a few addresses of fd00:104::/64 (and one of the
// next /64) on lo for its run (needs root, as the integration tests run) and removes them after.
const HOST = 'fd00:104::1';
const SAME_64 = ['fd00:104::a1', 'fd00:104::a2', 'fd00:104::a3', 'fd00:104::a4'];
const OTHER_64 = 'fd00:104:0:1::b1';
const ADDRS = [HOST, ...SAME_64, OTHER_64];
const run = promisify(execFile);
let d: TestDaemon | undefined;
let skip: string | false = false;

before(async () => {
  try {
    for (const a of ADDRS) await run('ip', ['-6', 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad']);
  } catch (err) {
    skip = `cannot add IPv6 test addresses to lo: ${(err as Error).message.split('\n')[0]}`;
    return;
  }
  d = await TestDaemon.create({ host: HOST, config: { auth: { lockout: { maxFailures: 3, windowMinutes: 10, lockMinutes: 15 } } } });
  await d.start();
  await d.addUser('bob@example.test', 'bob-secret-1');
});
after(async () => {
  await d?.cleanup();
  for (const a of ADDRS) await run('ip', ['-6', 'addr', 'del', `${a}/128`, 'dev', 'lo']).catch(() => undefined);
});

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

async function auth(from: string, user: string, pass: string): Promise<string> {
  const c = await RawSmtp.open(HOST, d!.ports.submission, from);
  await c.reply();
  await c.cmd('EHLO client.test');
  await c.starttls();
  await c.cmd('EHLO client.test');
  const r = await c.cmd(`AUTH PLAIN ${plain(user, pass)}`);
  c.close();
  return r;
}

test('guesses from fresh addresses of one IPv6 /64 share one count and one lock; the next /64 is not locked', async (t) => {
  if (skip) return t.skip(skip);
  for (const [i, ip] of SAME_64.slice(0, 3).entries()) assert.equal(await auth(ip, `nobody${i}@example.test`, 'guess'), '535 5.7.8 Error: authentication failed');
  assert.equal(await auth(SAME_64[3]!, 'bob@example.test', 'bob-secret-1'), '454 4.7.0 Too many failed logins, try again later');
  const lock = await d!.waitFor((l) => l.evt === 'event' && l.kind === 'auth.lockout');
  assert.equal(lock.ip, 'fd00:104::/64');
  assert.equal(await auth(OTHER_64, 'bob@example.test', 'bob-secret-1'), '235 2.7.0 Authentication successful');
});
