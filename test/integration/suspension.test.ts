import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// Daemon on 127.0.12.1; the spammer uses bob's stolen password from 127.0.12.66.
const HOST = '127.0.12.1';
const SPAMMER = '127.0.12.66';
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({
    host: HOST,
    config: {
      thresholds: { alert: true, perAccountMessagesPerDay: 3, perAccountNewRecipientsPerDay: 3 },
      auth: { suspendOnThreshold: true, suspendAtMultiple: 1 },
      alerts: { adminEmails: ['admin@example.test'], periodMinutes: 60 },
    },
  });
  await d.start();
  await d.addUser('bob@example.test', 'bob-secret-1');
  await d.addUser('admin@example.test', 'admin-secret-1');
  await d.addUser('carol@example.test', 'carol-secret-1');
});
after(async () => d.cleanup());

/** Logs in and returns the reply; the session is closed unless `keep`. */
async function authReply(from: string): Promise<string> {
  const { c, reply } = await login(from);
  c.close();
  return reply;
}

async function login(from: string): Promise<{ c: RawSmtp; reply: string }> {
  const c = await RawSmtp.open(HOST, d.ports.smtps, from, true);
  await c.reply();
  await c.cmd('EHLO pc.example.test');
  const reply = await c.cmd(`AUTH PLAIN ${Buffer.from('\0bob@example.test\0bob-secret-1').toString('base64')}`);
  return { c, reply };
}

async function send(c: RawSmtp, subject: string): Promise<string> {
  const m = await c.cmd('MAIL FROM:<bob@example.test>');
  if (!m.startsWith('250')) return m;
  await c.cmd('RCPT TO:<victim@remote.test>');
  return c.data(`From: bob@example.test\r\nSubject: ${subject}\r\n\r\nbuy now`);
}

const queue = async () => JSON.parse((await d.cli(['queue', 'list', '--json'])).stdout) as { login: string | null; held: boolean }[];

test('an account past its day limit is suspended: AUTH refused, queued mail held, admin alerted with evidence', async () => {
  const { c, reply } = await login(SPAMMER);
  assert.equal(reply, '235 2.7.0 Authentication successful');
  for (let i = 0; i < 3; i++) assert.match(await send(c, `cheap pills ${i}`), /^250 /);
  assert.match(await c.cmd('MAIL FROM:<bob@example.test>'), /^450 4\.7\.1 Error: too many messages from bob@example\.test today/);
  await d.waitFor((l) => l.evt === 'event' && l.kind === 'account.suspended');
  assert.equal(await c.cmd('MAIL FROM:<bob@example.test>'), '550 5.7.1 Error: account suspended from sending; contact the administrator');
  c.close();

  // Its right password gets the reply of a wrong one: the reply cannot be used to test passwords.
  assert.equal(await authReply(SPAMMER), '535 5.7.8 Error: authentication failed');
  const q = (await queue()).filter((e) => e.login === 'bob@example.test');
  assert.equal(q.length, 3);
  assert.ok(q.every((e) => e.held));
  const users = JSON.parse((await d.cli(['user', 'list', '--json'])).stdout) as { address: string; suspended: { reason: string; evidence?: Record<string, unknown> } | null }[];
  const bob = users.find((u) => u.address === 'bob@example.test')!.suspended!;
  assert.match(bob.reason, /3 messages today, limit 3/);
  // The evidence stays with the suspension (the web admin shows it where the account is unlocked).
  assert.equal(bob.evidence?.limitName, 'thresholds.perAccountMessagesPerDay');
  assert.equal(bob.evidence?.limit, 3);
  assert.match(String(bob.evidence?.clientIps), /127\.0\.12\.66/);
  assert.match(String(bob.evidence?.sampleSubjects), /cheap pills/);

  // The alert reaches the admin's Maildir with the evidence.
  const dir = join(d.dataDir, 'mail', 'example.test', 'admin', 'Maildir', 'new');
  let mail = '';
  for (let i = 0; i < 100 && !mail; i++) {
    for (const n of await readdir(dir).catch(() => [] as string[])) {
      const text = await readFile(join(dir, n), 'utf8');
      if (text.includes('X-Mlsd-Event: account.suspended')) mail = text;
    }
    if (!mail) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(mail, 'no account.suspended alert in the admin mailbox');
});

test('the suspended account still receives mail', async () => {
  const c = await RawSmtp.open(HOST, d.ports.mx, '127.0.12.9');
  await c.reply();
  await c.cmd('EHLO friend.remote.test');
  await c.cmd('MAIL FROM:<friend@remote.test>');
  assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5 Accepted');
  assert.match(await c.data('Subject: hello bob\r\n\r\nhi'), /^250 /);
  c.close();
});

test('mlsd user unlock releases the account and its held mail, and survives a restart', async () => {
  const r = await d.cli(['user', 'unlock', 'bob@example.test']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'bob@example.test may send again; 3 held message(s) released');
  assert.ok((await queue()).filter((e) => e.login === 'bob@example.test').every((e) => !e.held));
  await d.stop();
  await d.start();
  assert.equal(await authReply('127.0.12.20'), '235 2.7.0 Authentication successful');
  const again = await d.cli(['user', 'unlock', 'bob@example.test']);
  assert.equal(again.stderr, 'mlsd: bob@example.test: is not suspended\n');
});

test('too many never-before-seen recipients in a day: 452 4.5.3 at RCPT and the account is suspended', async () => {
  const c = await RawSmtp.open(HOST, d.ports.smtps, '127.0.12.30', true);
  await c.reply();
  await c.cmd('EHLO pc.example.test');
  assert.equal(await c.cmd(`AUTH PLAIN ${Buffer.from('\0carol@example.test\0carol-secret-1').toString('base64')}`), '235 2.7.0 Authentication successful');
  await c.cmd('MAIL FROM:<carol@example.test>');
  for (const to of ['a@one.test', 'b@two.test', 'c@three.test', 'a@one.test']) assert.equal(await c.cmd(`RCPT TO:<${to}>`), '250 2.1.5 Accepted', to);
  assert.equal(
    await c.cmd('RCPT TO:<d@four.test>'),
    '452 4.5.3 Error: too many new recipients from carol@example.test today (limit thresholds.perAccountNewRecipientsPerDay = 3), try again later',
  );
  c.close();
  await d.waitFor((l) => l.evt === 'event' && l.kind === 'account.suspended' && l.account === 'carol@example.test');
  const users = JSON.parse((await d.cli(['user', 'list', '--json'])).stdout) as { address: string; suspended: unknown }[];
  assert.ok(users.find((u) => u.address === 'carol@example.test')!.suspended);
});
