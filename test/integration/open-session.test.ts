import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

/**
 * Issue 12, finding 7: a session logged in before `mlsd user del`, `user passwd` or
 * `user suspend` keeps no authority: its next MAIL is refused (421 and the session ends for
 * a deleted account or a changed password; 550 5.7.1 for a suspension), and a new login with
 * the old password fails. The CLI runs between two MAIL commands of one open session.
 * Addresses 127.0.100.x: .101 mlsd, .102 the client.
 */
const HOST = '127.0.100.101';
const CLIENT = '127.0.100.102';
const GONE = '421 4.7.0 Error: authentication no longer valid (password changed or account removed), log in again';
const SUSPENDED = '550 5.7.1 Error: account suspended from sending; contact the administrator';

let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({ host: HOST });
  await d.start();
});

after(async () => d?.cleanup());

const plain = (user: string, password: string) => `AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`;

/** A session on smtps, logged in; its first transaction relays. */
async function loggedIn(user: string, password: string): Promise<RawSmtp> {
  const c = await RawSmtp.open(HOST, d.ports.smtps, CLIENT, true);
  await c.reply();
  await c.cmd('EHLO pc.example.test');
  assert.equal(await c.cmd(plain(user, password)), '235 2.7.0 Authentication successful');
  assert.match(await c.cmd(`MAIL FROM:<${user}>`), /^250 /);
  assert.match(await c.cmd('RCPT TO:<friend@remote.test>'), /^250 /);
  assert.match(await c.cmd('RSET'), /^250 /);
  return c;
}

async function loginReply(user: string, password: string): Promise<string> {
  const c = await RawSmtp.open(HOST, d.ports.smtps, CLIENT, true);
  await c.reply();
  await c.cmd('EHLO pc.example.test');
  const r = await c.cmd(plain(user, password));
  c.close();
  return r;
}

async function cli(args: string[], stdin?: string): Promise<void> {
  const r = await d.cli(args, stdin);
  assert.equal(r.code, 0, r.stderr);
}

/** The server closed the session after its 421. */
async function closed(c: RawSmtp): Promise<void> {
  assert.equal(await c.reply(), '(closed)');
}

test('user del: the open session gets 421 at its next MAIL and is closed; AUTH fails afterwards', async () => {
  await d.addUser('del@example.test', 'del-password-1');
  const c = await loggedIn('del@example.test', 'del-password-1');
  await cli(['user', 'del', 'del@example.test']);
  assert.equal(await c.cmd('MAIL FROM:<del@example.test>'), GONE);
  await closed(c);
  assert.equal(await loginReply('del@example.test', 'del-password-1'), '535 5.7.8 Error: authentication failed');
  const log = await d.waitFor((l) => l.evt === 'smtp.refuse' && l.unit === 'accounts.loginValid');
  assert.equal(log.login, 'del@example.test');
});

test('user del then user add with the same password: the old session still has no authority', async () => {
  await d.addUser('again@example.test', 'again-password-1');
  const c = await loggedIn('again@example.test', 'again-password-1');
  await cli(['user', 'del', 'again@example.test']);
  await d.addUser('again@example.test', 'again-password-1');
  assert.equal(await c.cmd('MAIL FROM:<again@example.test>'), GONE);
  await closed(c);
});

test('user passwd: the open session gets 421 at its next MAIL; the old password fails, the new one works', async () => {
  await d.addUser('pw@example.test', 'old-password-1');
  await d.addUser('other@example.test', 'other-password-1');
  const c = await loggedIn('pw@example.test', 'old-password-1');
  const bystander = await loggedIn('other@example.test', 'other-password-1');
  await cli(['user', 'passwd', 'pw@example.test', '--password-stdin'], 'new-password-1\n');
  assert.equal(await c.cmd('MAIL FROM:<pw@example.test>'), GONE);
  await closed(c);
  // Another account's session is not touched.
  assert.match(await bystander.cmd('MAIL FROM:<other@example.test>'), /^250 /);
  bystander.close();
  assert.equal(await loginReply('pw@example.test', 'old-password-1'), '535 5.7.8 Error: authentication failed');
  const fresh = await loggedIn('pw@example.test', 'new-password-1');
  assert.match(await fresh.cmd('MAIL FROM:<pw@example.test>'), /^250 /);
  fresh.close();
});

test('user suspend: the open session is refused at its next MAIL; a new login is refused too', async () => {
  await d.addUser('sus@example.test', 'sus-password-1');
  const c = await loggedIn('sus@example.test', 'sus-password-1');
  const r = await d.cli(['user', 'suspend', 'sus@example.test', '--reason', 'password found on a paste site']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /sus@example\.test suspended from sending/);
  assert.equal(await c.cmd('MAIL FROM:<sus@example.test>'), SUSPENDED);
  c.close();
  // A new login with the right password is answered as a wrong one would be (no password oracle).
  assert.equal(await loginReply('sus@example.test', 'sus-password-1'), '535 5.7.8 Error: authentication failed');
  const users = JSON.parse((await d.cli(['user', 'list', '--json'])).stdout) as { address: string; suspended: { reason: string } | null }[];
  assert.equal(users.find((u) => u.address === 'sus@example.test')!.suspended!.reason, 'password found on a paste site');
  const again = await d.cli(['user', 'suspend', 'sus@example.test']);
  assert.match(again.stdout, /already suspended/);
  const none = await d.cli(['user', 'suspend', 'nobody@example.test']);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /nobody@example\.test: no such user/);
  await cli(['user', 'unlock', 'sus@example.test']);
  const back = await loggedIn('sus@example.test', 'sus-password-1');
  back.close();
});
