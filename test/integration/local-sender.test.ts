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
