import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon, swaks, serverLines } from '../helpers/daemon.js';

// Loopback plan for this file: daemon on 127.0.1.1; a listed client 127.0.2.10, a listed
// range 127.0.3.0/24, an unlisted client 127.0.4.20.
const HOST = '127.0.1.1';
const LISTED = '127.0.2.10';
const IN_RANGE = '127.0.3.77';
const UNLISTED = '127.0.4.20';
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({
    host: HOST,
    config: { relay: { allowIps: [LISTED, '127.0.3.0/24'], allowRecipientDomains: ['partner.test'], allowAuthenticated: true } },
  });
  await d.start();
  await d.addUser('bob@example.test', 'bob-secret-1');
  await d.addUser('carol@example.test', 'carol-secret-1');
  const r = await d.cli(['alias', 'add', 'sales@example.test', '--to', 'bob@example.test,carol@example.test', '--senders', 'bob@example.test']);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => d.cleanup());

const mx = (from: string, to: string, client: string, extra: string[] = []) =>
  swaks(['--server', `${HOST}:${d.ports.mx}`, '--local-interface', client, '--from', from, '--to', to, ...extra]);
const sub = (user: string, pass: string, from: string, to: string, extra: string[] = []) =>
  swaks(['--server', `${HOST}:${d.ports.submission}`, '--local-interface', UNLISTED, '--tls', '--auth', 'PLAIN', '--auth-user', user, '--auth-password', pass, '--from', from, '--to', to, ...extra]);
const lastLine = (out: string) => serverLines(out).at(-2) ?? ''; // the line before 221 Bye
const hasLine = (out: string, line: string) => serverLines(out).includes(line);

test('an unlisted client cannot relay: 554 5.7.1 at RCPT, and the refusal is logged', async () => {
  const r = await mx('a@remote.test', 'x@elsewhere.test', UNLISTED);
  assert.ok(hasLine(r.out, '554 5.7.1 Relay access denied'), r.out);
  const log = await d.waitFor((l) => l.evt === 'smtp.refuse' && l.rcpt === 'x@elsewhere.test');
  assert.equal(log.ip, UNLISTED);
  assert.equal(log.reply, '554 5.7.1 Relay access denied');
  assert.equal(log.from, 'a@remote.test');
});

test('a listed client and a client in a listed range may relay; the message is queued', async () => {
  for (const client of [LISTED, IN_RANGE]) {
    const r = await mx('pc@example.test', `x@${client.replace(/\./g, '-')}.remote.test`, client);
    assert.match(lastLine(r.out), /^250 2\.0\.0 Ok: queued as [0-9A-Z]+$/, r.out);
  }
  const q = JSON.parse((await d.cli(['queue', 'list', '--json'])).stdout) as { recipients: { address: string }[] }[];
  const rcpts = q.flatMap((e) => e.recipients.map((x) => x.address));
  assert.ok(rcpts.includes('x@127-0-2-10.remote.test'));
  assert.ok(rcpts.includes('x@127-0-3-77.remote.test'));
});

test('an allowed recipient domain is relayed for anyone, a look-alike is not', async () => {
  assert.match(lastLine((await mx('a@remote.test', 'x@partner.test', UNLISTED)).out), /^250 2\.0\.0/);
  assert.ok(hasLine((await mx('a@remote.test', 'x@partner.test.evil.test', UNLISTED)).out, '554 5.7.1 Relay access denied'));
  assert.ok(hasLine((await mx('a@remote.test', 'x@notpartner.test', UNLISTED)).out, '554 5.7.1 Relay access denied'));
});

test('local mail from outside is delivered to the Maildir with Received and Delivered-To', async () => {
  const r = await mx('friend@remote.test', 'bob@example.test', UNLISTED, ['--header', 'Subject: local-delivery-check']);
  assert.match(lastLine(r.out), /^250 2\.0\.0/, r.out);
  await d.waitFor((l) => l.evt === 'delivery.local' && l.rcpt === 'bob@example.test');
  const msgs = (await d.mailbox('bob')).filter((m) => m.includes('local-delivery-check'));
  assert.equal(msgs.length, 1);
  assert.match(msgs[0]!, /^Return-Path: <friend@remote\.test>\r\nDelivered-To: bob@example\.test\r\nReceived: from .* \(\[127\.0\.4\.20\]\)/);
});

test('unknown local user: 550 5.1.1; an alias reaches every member', async () => {
  assert.ok(hasLine((await mx('a@remote.test', 'nobody@example.test', UNLISTED)).out, '550 5.1.1 Recipient address rejected: User unknown in local recipient table'));
  const r = await mx('a@remote.test', 'sales@example.test', UNLISTED, ['--header', 'Subject: alias-fanout']);
  assert.match(lastLine(r.out), /^250 2\.0\.0/);
  await d.waitFor((l) => l.evt === 'delivery.local' && l.rcpt === 'carol@example.test');
  await d.waitFor((l) => l.evt === 'delivery.local' && l.rcpt === 'bob@example.test' && l.id === r.out.match(/queued as (\w+)/)![1]);
  assert.equal((await d.mailbox('bob')).filter((m) => m.includes('alias-fanout')).length, 1);
  assert.equal((await d.mailbox('carol')).filter((m) => m.includes('alias-fanout')).length, 1);
});

test('postmaster is accepted at every local domain and delivered with no account', async () => {
  for (const to of ['postmaster@example.test', 'postmaster@example2.test']) {
    const r = await mx('a@remote.test', to, UNLISTED, ['--header', 'Subject: to-postmaster']);
    assert.match(lastLine(r.out), /^250 2\.0\.0/, r.out);
    await d.waitFor((l) => l.evt === 'delivery.local' && l.rcpt === to);
  }
  assert.equal((await d.mailbox('postmaster')).filter((m) => m.includes('to-postmaster')).length, 1);
});

test('address tricks from an unlisted client never relay', async () => {
  const cases: [string, RegExp][] = [
    ['x%remote.test@example.test', /^550 5\.1\.1 /],
    ['remote.test!x@example.test', /^550 5\.1\.1 /],
    ['"x@remote.test"@example.test', /^50[01] /],
    ['x@[127.0.0.1]', /^501 5\.1\.3 /],
    ['bob@example.test.', /^501 5\.1\.3 /],
    ['@example.test:x@remote.test', /^554 5\.7\.1 Relay access denied$/], // source route ignored (RFC 5321 C), target judged
    ['x@remote.test@example.test', /^501 /],
  ];
  for (const [to, expected] of cases) {
    const r = await mx('a@remote.test', to, UNLISTED, ['--quit-after', 'RCPT']);
    const rcptReply = serverLines(r.out).at(-2) ?? '';
    assert.match(rcptReply, expected, `RCPT TO:<${to}> got ${rcptReply}`);
  }
});

test('AUTH is not offered or accepted before STARTTLS', async () => {
  const ehlo = await swaks(['--server', `${HOST}:${d.ports.submission}`, '--local-interface', UNLISTED, '--quit-after', 'EHLO']);
  assert.ok(!serverLines(ehlo.out).some((l) => l.includes('AUTH')), ehlo.out);
  assert.ok(serverLines(ehlo.out).some((l) => l.includes('STARTTLS')));
  const clear = await swaks(['--server', `${HOST}:${d.ports.mx}`, '--local-interface', UNLISTED, '--auth', 'PLAIN', '--auth-user', 'bob@example.test', '--auth-password', 'bob-secret-1', '--from', 'bob@example.test', '--to', 'x@remote.test']);
  assert.notEqual(clear.code, 0);
  assert.ok(!serverLines(clear.out).some((l) => l.startsWith('235')), clear.out);
});

test('submission: MAIL without AUTH is 530 5.7.0; wrong password 535 5.7.8', async () => {
  const noauth = await swaks(['--server', `${HOST}:${d.ports.submission}`, '--local-interface', UNLISTED, '--tls', '--from', 'bob@example.test', '--to', 'x@remote.test']);
  assert.ok(hasLine(noauth.out, '530 5.7.0 Authentication required'), noauth.out);
  const bad = await sub('bob@example.test', 'wrong-password', 'bob@example.test', 'x@remote.test');
  assert.ok(hasLine(bad.out, '535 5.7.8 Error: authentication failed'), bad.out);
  const unknown = await sub('mallory@example.test', 'whatever-1', 'mallory@example.test', 'x@remote.test');
  assert.ok(hasLine(unknown.out, '535 5.7.8 Error: authentication failed'), unknown.out);
});

test('AUTH PLAIN and LOGIN over STARTTLS relay for the owner of the sender address', async () => {
  const plain = await sub('bob@example.test', 'bob-secret-1', 'bob@example.test', 'friend@remote.test', ['--header', 'From: Bob <bob@example.test>']);
  assert.match(lastLine(plain.out), /^250 2\.0\.0 Ok: queued as/, plain.out);
  const login = await swaks(['--server', `${HOST}:${d.ports.submission}`, '--local-interface', UNLISTED, '--tls', '--auth', 'LOGIN', '--auth-user', 'bob@example.test', '--auth-password', 'bob-secret-1', '--from', 'sales@example.test', '--to', 'friend@remote.test', '--header', 'From: sales@example.test']);
  assert.match(lastLine(login.out), /^250 2\.0\.0 Ok: queued as/, login.out);
});

test('smtps (implicit TLS) takes AUTH at once', async () => {
  const r = await swaks(['--server', `${HOST}:${d.ports.smtps}`, '--local-interface', UNLISTED, '--tlsc', '--auth', 'PLAIN', '--auth-user', 'carol@example.test', '--auth-password', 'carol-secret-1', '--from', 'carol@example.test', '--to', 'friend@remote.test', '--header', 'From: carol@example.test']);
  assert.match(lastLine(r.out), /^250 2\.0\.0 Ok: queued as/, r.out);
});

test('sender-login mismatch: envelope 553 5.7.1 at MAIL, header From 550 5.7.1 at end of DATA', async () => {
  const env = await sub('bob@example.test', 'bob-secret-1', 'ceo@example.test', 'friend@remote.test');
  assert.ok(hasLine(env.out, '553 5.7.1 Sender address rejected: not owned by user'), env.out);
  const carolAsSales = await sub('carol@example.test', 'carol-secret-1', 'sales@example.test', 'friend@remote.test');
  assert.ok(hasLine(carolAsSales.out, '553 5.7.1 Sender address rejected: not owned by user'), carolAsSales.out);
  const hdr = await sub('bob@example.test', 'bob-secret-1', 'bob@example.test', 'friend@remote.test', ['--header', 'From: "The CEO" <ceo@example.test>', '--header', 'Subject: forged-from']);
  assert.ok(hasLine(hdr.out, '550 5.7.1 From header address rejected: not owned by user'), hdr.out);
  const log = await d.waitFor((l) => l.evt === 'smtp.refuse' && l.stage === 'data');
  assert.equal(log.login, 'bob@example.test');
  const q = JSON.parse((await d.cli(['queue', 'list', '--json'])).stdout) as { from: string }[];
  assert.ok(!q.some((e) => e.from === 'ceo@example.test'));
});

test('with senderLoginMismatch "allow" (set live) the forged header passes', async () => {
  assert.equal((await d.cli(['config', 'set', 'senderLoginMismatch', '"allow"'])).code, 0);
  try {
    const hdr = await sub('bob@example.test', 'bob-secret-1', 'bob@example.test', 'friend@remote.test', ['--header', 'From: ceo@example.test']);
    assert.match(lastLine(hdr.out), /^250 2\.0\.0/, hdr.out);
  } finally {
    await d.cli(['config', 'set', 'senderLoginMismatch', '"reject"']);
  }
});

test('relay.allowIps set with the CLI takes effect without a restart', async () => {
  const before1 = await mx('a@remote.test', 'x@later.test', '127.0.5.5', ['--quit-after', 'RCPT']);
  assert.ok(hasLine(before1.out, '554 5.7.1 Relay access denied'));
  const set = await d.cli(['config', 'set', 'relay.allowIps', JSON.stringify([LISTED, '127.0.3.0/24', '127.0.5.4/31'])]);
  assert.equal(set.code, 0, set.stderr);
  const after1 = await mx('a@remote.test', 'x@later.test', '127.0.5.5', ['--quit-after', 'RCPT']);
  assert.ok(!hasLine(after1.out, '554 5.7.1 Relay access denied'), after1.out);
  assert.ok(hasLine((await mx('a@remote.test', 'x@later.test', '127.0.5.6', ['--quit-after', 'RCPT'])).out, '554 5.7.1 Relay access denied'));
});
