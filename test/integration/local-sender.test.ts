import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon, swaks, eventually } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { DnsServer } from '../helpers/dns.js';
import { SmtpSink, type SinkDump } from '../helpers/smtp-sink.js';

/**
 * Issue 12, finding 1: a forger on the MX port claiming one of our domains. It is refused
 * at MAIL (envelope) or at end of DATA (header From) with 550 5.7.1, unless the site allows
 * it (relay.localSenderFromOutside); and only mail someone vouches for (a login, a
 * relay.allowIps client, mlsd itself) leaves DKIM-signed. The remote is Postfix's smtp-sink
 * behind an MX record served by dnsmasq.
 * Addresses 127.0.100.x: .1 mlsd, .2 a PC in relay.allowIps, .3 an outside server,
 * .30 the remote MX (smtp-sink), .53 dnsmasq.
 */
const HOST = '127.0.100.1';
const PC = '127.0.100.2';
const OUTSIDE = '127.0.100.3';
const REMOTE_MX = '127.0.100.30';

let d: TestDaemon;
let dns: DnsServer;
let sink: SmtpSink;

before(async () => {
  dns = await DnsServer.start({
    host: '127.0.100.53',
    records: {
      mx: [
        { domain: 'remote.test', host: 'mx.remote.test', pref: 10 },
        { domain: 'partner.test', host: 'mx.remote.test', pref: 10 },
      ],
      a: [{ name: 'mx.remote.test', ip: REMOTE_MX }],
    },
  });
  sink = await SmtpSink.start({ host: REMOTE_MX, port: 25, dumpDir: true });
  d = await TestDaemon.create({
    host: HOST,
    config: {
      relay: { allowIps: [PC], allowRecipientDomains: ['partner.test'], allowAuthenticated: true },
      dns: { servers: [dns.address], timeoutSeconds: 2 },
      delivery: { retryBaseSeconds: 1, retryMaxSeconds: 2 },
    },
  });
  await d.start();
  await d.addUser('alice@example.test', 'alice-password-1');
  // An alias that forwards outside: the forger's way out through a local recipient.
  const a = await d.cli(['alias', 'add', 'fwd@example.test', '--to', 'friend@remote.test', '--senders', 'alice@example.test']);
  assert.equal(a.code, 0, a.stderr);
});

after(async () => {
  await d?.cleanup();
  await sink?.stop();
  await dns?.stop();
});

/** The message the remote received with this subject. */
async function received(subject: string): Promise<SinkDump> {
  return eventually(`the remote to receive "${subject}"`, async () => (await sink.dumps()).find((m) => m.message.includes(`Subject: ${subject}\n`)), 20000);
}

const signed = (m: SinkDump) => /^DKIM-Signature:/im.test(m.message);

async function mx(from: string, to: string, subject: string, client = OUTSIDE, extra: string[] = []) {
  return swaks(['--server', `${HOST}:${d.ports.mx}`, '--local-interface', client, '--from', from, '--to', to, '--h-Subject', subject, ...extra]);
}

test('outside client, MAIL FROM a local domain: 550 5.7.1 at MAIL, whether the recipient is an alias forwarding out, a relay.allowRecipientDomains domain or a local user', async () => {
  for (const [from, to] of [
    ['ceo@example.test', 'fwd@example.test'],
    ['ceo@example.test', 'someone@partner.test'],
    ['ceo@example.test', 'alice@example.test'],
    ['CEO@Example.TEST', 'fwd@example.test'],
    ['alice@example2.test', 'fwd@example.test'],
  ]) {
    const r = await mx(from!, to!, `forged ${from} to ${to}`);
    assert.match(r.out, /<\*\* +550 5\.7\.1 Sender address rejected: a local domain sender needs authentication/, r.out);
    assert.doesNotMatch(r.out, /queued as/);
  }
  const log = await d.waitFor((l) => l.evt === 'smtp.refuse' && l.stage === 'mail' && l.unit === 'relay.localSender');
  assert.equal(log.ip, OUTSIDE);
  // A source route is ignored and the real sender judged.
  const c = await RawSmtp.open(HOST, d.ports.mx, OUTSIDE);
  await c.reply();
  await c.cmd('EHLO outside.test');
  assert.equal(await c.cmd('MAIL FROM:<@relay.remote.test:ceo@example.test>'), '550 5.7.1 Sender address rejected: a local domain sender needs authentication');
  // The null sender (a bounce from outside) and outside senders still get in.
  assert.match(await c.cmd('MAIL FROM:<>'), /^250 /);
  await c.cmd('RSET');
  assert.match(await c.cmd('MAIL FROM:<someone@remote.test>'), /^250 /);
  c.close();
});

test('outside client, remote envelope sender but a local header From: 550 5.7.1 at end of DATA, in any spelling', async () => {
  for (const from of ['From: The CEO <ceo@example.test>', 'From: ceo@EXAMPLE.test', 'From: "ceo"@example.test', 'From: ceo@example.test.', 'From: a@remote.test, ceo@example.test']) {
    const r = await mx('someone@remote.test', 'alice@example.test', 'header forged', OUTSIDE, ['--header', from]);
    assert.match(r.out, /<\*\* +550 5\.7\.1 From header address rejected: a local domain sender needs authentication/, `${from}\n${r.out}`);
  }
  // A bounce with a local header From is judged the same; one with its own From gets in.
  const c = await RawSmtp.open(HOST, d.ports.mx, OUTSIDE);
  await c.reply();
  await c.cmd('EHLO outside.test');
  await c.cmd('MAIL FROM:<>');
  await c.cmd('RCPT TO:<alice@example.test>');
  assert.equal(await c.data('From: alice@example.test\r\nSubject: fake bounce\r\n\r\nx'), '550 5.7.1 From header address rejected: a local domain sender needs authentication');
  await c.cmd('MAIL FROM:<>');
  await c.cmd('RCPT TO:<alice@example.test>');
  assert.match(await c.data('From: MAILER-DAEMON@remote.test\r\nSubject: real bounce\r\n\r\nx'), /^250 /);
  c.close();
  assert.equal((await d.mailbox('alice')).filter((m) => m.includes('Subject: header forged')).length, 0);
});

test('a relay.allowIps PC and an authenticated client may use the local domain: accepted, and the copy the remote gets is DKIM-signed', async () => {
  const pc = await mx('ceo@example.test', 'fwd@example.test', 'from the office PC', PC);
  assert.match(pc.out, /<[~-] +250 2\.0\.0 Ok: queued as/, pc.out);
  const viaPartner = await mx('ceo@example.test', 'someone@partner.test', 'office PC to partner', PC);
  assert.match(viaPartner.out, /<[~-] +250 2\.0\.0 Ok: queued as/, viaPartner.out);
  const sub = await swaks([
    '--server', `${HOST}:${d.ports.submission}`, '--local-interface', OUTSIDE, '--tls', '--auth', 'PLAIN',
    '--auth-user', 'alice@example.test', '--auth-password', 'alice-password-1',
    '--from', 'alice@example.test', '--to', 'someone@partner.test', '--h-Subject', 'alice to partner',
  ]);
  assert.match(sub.out, /<[~-] +250 2\.0\.0 Ok: queued as/, sub.out);
  for (const s of ['from the office PC', 'office PC to partner', 'alice to partner']) {
    const m = await received(s);
    assert.ok(signed(m), `${s}: no DKIM-Signature\n${m.message}`);
    assert.match(m.message, /^DKIM-Signature:[^]*?\bd=example\.test;/im);
  }
});

test('a bounce from outside forwarded through an alias leaves unsigned', async () => {
  const c = await RawSmtp.open(HOST, d.ports.mx, OUTSIDE);
  await c.reply();
  await c.cmd('EHLO outside.test');
  assert.match(await c.cmd('MAIL FROM:<>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<fwd@example.test>'), /^250 /);
  assert.match(await c.data('From: MAILER-DAEMON@remote.test\r\nSubject: outside bounce\r\n\r\nundeliverable'), /^250 /);
  c.close();
  const m = await received('outside bounce');
  assert.ok(!signed(m), m.message);
});

test('with relay.localSenderFromOutside "allow" (set live) the forged sender is accepted but leaves unsigned', async () => {
  const set = await d.cli(['config', 'set', 'relay.localSenderFromOutside', '"allow"']);
  assert.equal(set.code, 0, set.stderr);
  try {
    const r = await mx('ceo@example.test', 'fwd@example.test', 'allowed forgery via alias', OUTSIDE);
    assert.match(r.out, /<[~-] +250 2\.0\.0 Ok: queued as/, r.out);
    const p = await mx('ceo@example.test', 'someone@partner.test', 'allowed forgery to partner', OUTSIDE);
    assert.match(p.out, /<[~-] +250 2\.0\.0 Ok: queued as/, p.out);
    for (const s of ['allowed forgery via alias', 'allowed forgery to partner']) {
      const m = await received(s);
      assert.ok(!signed(m), `${s}: signed although nobody vouched for the sender\n${m.message}`);
    }
  } finally {
    await d.cli(['config', 'set', 'relay.localSenderFromOutside', '"reject"']);
  }
  const bad = await d.cli(['config', 'set', 'relay.localSenderFromOutside', '"sometimes"']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /relay\.localSenderFromOutside/);
});

/** One message over a fresh MX connection from the outside client; the reply to its DATA. */
async function mxData(from: string, to: string, message: string): Promise<string> {
  const c = await RawSmtp.open(HOST, d.ports.mx, OUTSIDE);
  try {
    await c.reply();
    await c.cmd('EHLO outside.test');
    assert.match(await c.cmd(`MAIL FROM:<${from}>`), /^250 /);
    assert.match(await c.cmd(`RCPT TO:<${to}>`), /^250 /);
    return await c.data(message);
  } finally {
    c.close();
  }
}

test('outside client, a local header From in the obsolete spellings readers honour (space or tab before the colon, folded): 550 5.7.1', async () => {
  for (const from of [
    'From : CEO <ceo@example.test>',
    'FROM\t: ceo@example.test',
    'from  :ceo@example.test',
    'From\r\n : ceo@example.test',
    'From: "The\r\n CEO"\r\n <ceo@example.test>',
    'From:\r\n\tceo@example.test',
  ]) {
    const r = await mxData('someone@remote.test', 'fwd@example.test', `${from}\r\nSubject: obs from\r\n\r\nx`);
    assert.equal(r, '550 5.7.1 From header address rejected: a local domain sender needs authentication', JSON.stringify(from));
  }
  // A display name that looks like a local address is not the address: this is x@remote.test.
  for (const from of ['From: "ceo@example.test" <x@remote.test>', 'From: =?utf-8?q?ceo@example.test?= <x@remote.test>', 'From : ceo@example.test <x@remote.test>']) {
    assert.match(await mxData('x@remote.test', 'alice@example.test', `${from}\r\nSubject: display name\r\n\r\nx`), /^250 /, from);
  }
  // Two mailboxes in one From are both judged, in any spelling.
  assert.equal(await mxData('x@remote.test', 'alice@example.test', 'FROM : x@remote.test,\r\n ceo@example.test\r\nSubject: two authors\r\n\r\nx'), '550 5.7.1 From header address rejected: a local domain sender needs authentication');
  const log = await d.waitFor((l) => l.evt === 'smtp.refuse' && l.stage === 'data' && l.unit === 'relay.localHeaderFrom');
  assert.equal(log.ip, OUTSIDE);
  assert.equal((await d.mailbox('alice')).filter((m) => m.includes('Subject: two authors')).length, 0);
});

test('a header block that does not end within 256 KiB is refused with 552 5.3.4, so a From past it is never left unjudged', async () => {
  const pad = `X-Pad: ${'p'.repeat(1000)}\r\n`.repeat(270);
  const r = await mxData('someone@remote.test', 'fwd@example.test', `Subject: late from\r\n${pad}From: ceo@example.test\r\n\r\nx`);
  assert.equal(r, '552 5.3.4 Error: message header size exceeds limit');
  const log = await d.waitFor((l) => l.evt === 'smtp.refuse' && l.stage === 'data' && l.maxHeaderBytes === 256 * 1024);
  assert.equal(log.ip, OUTSIDE);
  // A large header block that does end in time is judged as usual and accepted.
  const ok = await mxData('someone@remote.test', 'alice@example.test', `Subject: big header\r\n${`X-Pad: ${'p'.repeat(1000)}\r\n`.repeat(200)}From: someone@remote.test\r\n\r\nx`);
  assert.match(ok, /^250 /);
});

test('more than one From field, in any spelling, is refused with 550 5.7.1 for every client, an authenticated one too', async () => {
  for (const froms of ['From: x@remote.test\r\nFrom: y@remote.test', 'From: x@remote.test\r\nFROM\t: y@remote.test', 'From : x@remote.test\r\nfrom:x@remote.test']) {
    const r = await mxData('x@remote.test', 'alice@example.test', `${froms}\r\nSubject: two from fields\r\n\r\nx`);
    assert.equal(r, '550 5.7.1 Message rejected: more than one From header field (RFC 5322 3.6)', JSON.stringify(froms));
  }
  // alice owns alice@: the first From is hers, the second names the boss and would be signed d=example.test.
  const c = await RawSmtp.open(HOST, d.ports.submission, OUTSIDE);
  try {
    await c.reply();
    await c.cmd('EHLO pc.example.test');
    await c.starttls();
    await c.cmd('EHLO pc.example.test');
    assert.match(await c.cmd(`AUTH PLAIN ${Buffer.from('\0alice@example.test\0alice-password-1').toString('base64')}`), /^235 /);
    assert.match(await c.cmd('MAIL FROM:<alice@example.test>'), /^250 /);
    assert.match(await c.cmd('RCPT TO:<someone@partner.test>'), /^250 /);
    assert.equal(await c.data('From: alice@example.test\r\nFrom : boss@example.test\r\nSubject: boss too\r\n\r\nx'), '550 5.7.1 Message rejected: more than one From header field (RFC 5322 3.6)');
    // One From of her own still goes.
    assert.match(await c.cmd('MAIL FROM:<alice@example.test>'), /^250 /);
    assert.match(await c.cmd('RCPT TO:<someone@partner.test>'), /^250 /);
    assert.match(await c.data('From: alice@example.test\r\nSubject: alice alone\r\n\r\nx'), /^250 /);
  } finally {
    c.close();
  }
  await received('alice alone');
  assert.equal((await sink.dumps()).filter((m) => m.message.includes('Subject: boss too')).length, 0);
});
