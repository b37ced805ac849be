import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { TestDaemon, swaks, freePort, eventually, type LogLine } from '../helpers/daemon.js';
import { DnsServer } from '../helpers/dns.js';
import { PostfixPeer } from '../helpers/postfix.js';
import { SmtpSink } from '../helpers/smtp-sink.js';
import type { QueueEntry } from '../../src/delivery/queue.js';

/**
 * Outbound delivery against real peers on loopback: Postfix as the smarthost (with and
 * without AUTH/STARTTLS), Postfix's smtp-sink as remote MX hosts answering 2xx, 4xx or
 * 5xx, and dnsmasq serving MX records and a DNS blacklist zone.
 * Addresses: 127.0.21.x. .1 mlsd, .2 the sending PC, .25 Postfix smarthost, .53 dnsmasq,
 * .3x MX hosts (smtp-sink on port 25), .9 a smarthost sink.
 */
const HOST = '127.0.21.1';
const PC = '127.0.21.2';
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function daemon(config: Record<string, unknown>, host = HOST): Promise<TestDaemon> {
  const d = await TestDaemon.create({
    host,
    config: {
      relay: { allowIps: [PC], allowRecipientDomains: [], allowAuthenticated: true },
      delivery: { retryBaseSeconds: 1, retryMaxSeconds: 2 },
      ...config,
    },
  });
  cleanups.push(() => d.cleanup());
  await d.start();
  return d;
}

async function send(d: TestDaemon, to: string, opts: { from?: string; subject?: string; auth?: [string, string] } = {}) {
  const args = ['--server', `${d.host}:${opts.auth ? d.ports.submission : d.ports.mx}`, '--from', opts.from ?? 'alice@example.test', '--to', to, '--h-Subject', opts.subject ?? 'outbound test'];
  if (opts.auth) args.push('--tls', '--auth', 'PLAIN', '--auth-user', opts.auth[0], '--auth-password', opts.auth[1]);
  else args.push('--local-interface', PC);
  const r = await swaks(args);
  assert.equal(r.code, 0, r.out);
  return /queued as (\w+)/.exec(r.out)![1]!;
}

async function queue(d: TestDaemon): Promise<QueueEntry[]> {
  const r = await d.cli(['queue', 'list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as QueueEntry[];
}

const attempt = (id: string, result: string) => (l: LogLine) => l.evt === 'delivery.attempt' && l.id === id && l.result === result;
/** The runner has finished every attempt and nothing is left queued: it cannot send anything more. */
const emptyAndIdle = (l: LogLine) => l.evt === 'queue.idle' && l.messages === 0;

/** mailauth's verifier, with the key look-up answered from `mlsd dkim show`. */
async function verifyDkim(d: TestDaemon, raw: Buffer) {
  const r = await d.cli(['dkim', 'show', 'example.test', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const rec = JSON.parse(r.stdout) as { name: string; zoneLine: string };
  const strings = [...rec.zoneLine.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
  const res = await dkimVerify(raw, {
    resolver: async (name: string, type: string) => {
      if (type === 'TXT' && name === rec.name) return [strings];
      throw Object.assign(new Error('NXDOMAIN'), { code: 'ENOTFOUND' });
    },
  });
  return res.results;
}

test('smarthost with AUTH over STARTTLS (Postfix + Cyrus SASL): delivered, DKIM-signed, attempt logged', async () => {
  const port = await freePort('127.0.21.25');
  const pf = await PostfixPeer.start({ host: '127.0.21.25', port, domains: ['remote.test'], auth: { user: 'mlsd@isp.test', password: 'relay-secret' }, tls: 'starttls' });
  cleanups.push(() => pf.stop());
  const d = await daemon({
    routing: { mode: 'smarthost', sourceAddress: HOST, smarthost: { host: '127.0.21.25', port, user: 'mlsd@isp.test', password: 'relay-secret', tls: 'starttls', verifyCertificate: false } },
  });
  const id = await send(d, 'bob@remote.test', { subject: 'via the smarthost' });
  const line = await d.waitFor(attempt(id, 'delivered'));
  assert.equal(line.route, 'smarthost');
  assert.match(String(line.remote), /^127\.0\.21\.25\[127\.0\.21\.25\]:\d+$/);
  assert.match(String(line.reply), /^250 /);
  assert.equal(typeof line.ms, 'number');
  const [msg] = await pf.waitForMessages(1);
  assert.equal(msg!.rcpt, 'bob@remote.test');
  const text = msg!.raw.toString();
  assert.match(text, /Subject: via the smarthost/);
  // Postfix records the TLS session and the SASL login in its Received header.
  assert.match(text, /with ESMTPSA/);
  const results = await verifyDkim(d, msg!.raw);
  assert.equal(results.length, 1);
  assert.equal(results[0]!.status.result, 'pass', JSON.stringify(results[0]!.status));
  assert.equal(results[0]!.signingDomain, 'example.test');
  assert.deepEqual(await queue(d), []);
  const log = await pf.log();
  assert.match(log, /sasl_method=(PLAIN|LOGIN), sasl_username=mlsd@isp\.test/);
});

test('smarthost without AUTH or TLS; a wrong smarthost password defers (nothing lost) and is reported', async () => {
  const port = await freePort('127.0.21.26');
  const open = await PostfixPeer.start({ host: '127.0.21.26', port, domains: ['remote.test'] });
  cleanups.push(() => open.stop());
  const d = await daemon({ routing: { mode: 'smarthost', sourceAddress: HOST, smarthost: { host: '127.0.21.26', port, tls: 'none' } } }, '127.0.21.3');
  const id = await send(d, 'carol@remote.test');
  await d.waitFor(attempt(id, 'delivered'));
  await open.waitForMessages(1);

  const aport = await freePort('127.0.21.27');
  const authed = await PostfixPeer.start({ host: '127.0.21.27', port: aport, domains: ['remote.test'], auth: { user: 'mlsd@isp.test', password: 'right' }, tls: 'starttls' });
  cleanups.push(() => authed.stop());
  const set = await d.cli(['config', 'set', 'routing.smarthost', JSON.stringify({ host: '127.0.21.27', port: aport, user: 'mlsd@isp.test', password: 'wrong', tls: 'starttls', verifyCertificate: false })]);
  assert.equal(set.code, 0, set.stderr);
  const id2 = await send(d, 'dave@remote.test');
  const line = await d.waitFor(attempt(id2, 'deferred'));
  assert.match(String(line.reply), /^451 4\.7\.8 .*refused our login/);
  const q = await queue(d);
  assert.equal(q.length, 1);
  assert.equal(q[0]!.recipients[0]!.state, 'deferred');
  // Fix the password: the queued message goes at the next flush.
  await d.cli(['config', 'set', 'routing.smarthost.password', '"right"']);
  assert.equal((await d.cli(['queue', 'flush'])).code, 0);
  await d.waitFor(attempt(id2, 'delivered'));
  const [m] = await authed.waitForMessages(1);
  assert.equal(m!.rcpt, 'dave@remote.test');
});

test('mx mode: MX records from a DNS server on loopback, the first MX down, the second takes it; null MX and unknown domains bounce', async () => {
  const dns = await DnsServer.start({
    host: '127.0.21.53',
    records: {
      mx: [
        { domain: 'remote.test', host: 'mx1.remote.test', pref: 10 },
        { domain: 'remote.test', host: 'mx2.remote.test', pref: 20 },
        { domain: 'nomail.test', host: '.', pref: 0 },
      ],
      a: [
        { name: 'mx1.remote.test', ip: '127.0.21.31' },
        { name: 'mx2.remote.test', ip: '127.0.21.32' },
      ],
    },
  });
  cleanups.push(() => dns.stop());
  const sink = await SmtpSink.start({ host: '127.0.21.32', port: 25, dumpDir: true });
  cleanups.push(() => sink.stop());
  const d = await daemon({ dns: { servers: [dns.address], timeoutSeconds: 2 } }, '127.0.21.4');
  await d.addUser('alice@example.test', 'alice-password-1');

  const id = await send(d, 'erin@remote.test', { auth: ['alice@example.test', 'alice-password-1'], subject: 'direct to MX' });
  const line = await d.waitFor(attempt(id, 'delivered'));
  assert.match(String(line.remote), /^mx2\.remote\.test\[127\.0\.21\.32\]:25$/);
  const [dump] = await sink.waitForMessages(1);
  assert.deepEqual(dump!.rcptTo.map((r) => r.replace(/ .*/, '')), ['<erin@remote.test>']);
  assert.equal(dump!.mailFrom.replace(/ .*/, '').replace(/^<|>$/g, ''), 'alice@example.test');
  const results = await verifyDkim(d, Buffer.from(dump!.message.replace(/\r?\n/g, '\r\n')));
  assert.equal(results[0]!.status.result, 'pass', JSON.stringify(results[0]!.status));

  // A null MX and a domain that does not exist: bounced at once, DSN back to alice.
  const id2 = await send(d, 'x@nomail.test', { auth: ['alice@example.test', 'alice-password-1'], subject: 'to null MX' });
  const l2 = await d.waitFor(attempt(id2, 'bounced'));
  assert.match(String(l2.reply), /^556 5\.1\.10 /);
  const id3 = await send(d, 'y@no-such-domain.test', { auth: ['alice@example.test', 'alice-password-1'], subject: 'to nowhere' });
  const l3 = await d.waitFor(attempt(id3, 'bounced'));
  assert.match(String(l3.reply), /^550 5\.1\.2 /);
  const dsns = await eventually('two DSNs in alice\'s mailbox', async () => {
    const box = (await d.mailbox('alice')).filter((m) => m.includes('report-type=delivery-status'));
    return box.length >= 2 && box;
  });
  assert.ok(dsns.some((m) => /Status: 5\.1\.10/.test(m) && /Final-Recipient: rfc822; ?x@nomail\.test/i.test(m)));
  assert.ok(dsns.some((m) => /Status: 5\.1\.2/.test(m) && /Final-Recipient: rfc822; ?y@no-such-domain\.test/i.test(m)));
});

test('4xx then 2xx: deferred with the reply, retried, delivered once; 5xx: a DSN with the original headers reaches the sender, never a bounce of a bounce', async () => {
  const dns = await DnsServer.start({
    host: '127.0.21.54',
    records: {
      mx: [
        { domain: 'slow.test', host: 'mx.slow.test', pref: 10 },
        { domain: 'strict.test', host: 'mx.strict.test', pref: 10 },
      ],
      a: [
        { name: 'mx.slow.test', ip: '127.0.21.33' },
        { name: 'mx.strict.test', ip: '127.0.21.34' },
      ],
    },
  });
  cleanups.push(() => dns.stop());
  let slow = await SmtpSink.start({ host: '127.0.21.33', port: 25, reply: 'defer-rcpt', softReply: '450 4.2.0 <frank@slow.test>: mailbox busy' });
  cleanups.push(() => slow.stop());
  const strict = await SmtpSink.start({ host: '127.0.21.34', port: 25, reply: 'reject-rcpt', hardReply: '550 5.1.1 <gina@strict.test>: Recipient address rejected: User unknown' });
  cleanups.push(() => strict.stop());
  // Long retry waits: the retry below is what `mlsd queue flush` / `queue retry` start.
  const d = await daemon({ dns: { servers: [dns.address], timeoutSeconds: 2 }, delivery: { retryBaseSeconds: 600, retryMaxSeconds: 3600 } }, '127.0.21.5');
  await d.addUser('alice@example.test', 'alice-password-1');

  const id = await send(d, 'frank@slow.test', { auth: ['alice@example.test', 'alice-password-1'], subject: 'first try deferred' });
  await d.waitFor(attempt(id, 'deferred'));
  let [e] = await queue(d);
  assert.equal(e!.recipients[0]!.state, 'deferred');
  assert.equal(e!.recipients[0]!.lastReply, '450 4.2.0 <frank@slow.test>: mailbox busy');
  assert.equal(e!.recipients[0]!.attempts, 1);
  assert.ok(Date.parse(e!.recipients[0]!.nextAttempt) - Date.now() > 500_000, 'next attempt after the 10-minute first wait');
  const listed = await d.cli(['queue', 'list']);
  assert.match(listed.stdout, /frank@slow\.test deferred, 1 attempt\(s\), next .*: 450 4\.2\.0/);

  await slow.stop();
  slow = await SmtpSink.start({ host: '127.0.21.33', port: 25, dumpDir: true });
  cleanups.push(() => slow.stop());
  const retried = await d.cli(['queue', 'retry', id]);
  assert.equal(retried.code, 0, retried.stderr);
  await d.waitFor(attempt(id, 'delivered'));
  await slow.waitForMessages(1);
  assert.deepEqual(await queue(d), []);
  await d.waitFor(emptyAndIdle);
  assert.equal((await slow.messages()).length, 1, 'delivered exactly once');

  const id2 = await send(d, 'gina@strict.test', { auth: ['alice@example.test', 'alice-password-1'], subject: 'Quarterly figures' });
  await d.waitFor(attempt(id2, 'bounced'));
  const dsn = await eventually('the DSN', async () => (await d.mailbox('alice')).find((m) => m.includes('report-type=delivery-status')));
  assert.match(dsn, /^Return-Path: <>/m);
  assert.match(dsn, /From: Mail Delivery System <MAILER-DAEMON@mail\.example\.test>/);
  assert.match(dsn, /Content-Type: message\/delivery-status/);
  assert.match(dsn, /Final-Recipient: rfc822; ?gina@strict\.test/i);
  assert.match(dsn, /Action: failed/);
  assert.match(dsn, /Status: 5\.1\.1/);
  assert.match(dsn, /Remote-MTA: dns; ?mx\.strict\.test/);
  assert.match(dsn.replace(/\r\n[ \t]+/g, ' '), /Diagnostic-Code: smtp; ?550 5\.1\.1 <gina@strict\.test>: Recipient address rejected: User unknown/);
  assert.match(dsn, /Content-Type: text\/rfc822-headers/);
  assert.match(dsn, /Subject: Quarterly figures/);
  assert.deepEqual(await queue(d), []);

  // A message with the null sender that bounces makes no DSN at all.
  const before = (await d.mailbox('alice')).length;
  const r = await swaks(['--server', `${d.host}:${d.ports.mx}`, '--local-interface', PC, '--from', '<>', '--to', 'gina@strict.test', '--h-Subject', 'a bounce itself']);
  const id3 = /queued as (\w+)/.exec(r.out)![1]!;
  await d.waitFor(attempt(id3, 'bounced'));
  await d.waitFor((l) => l.evt === 'bounce.suppressed' && l.id === id3);
  assert.equal((await d.mailbox('alice')).length, before);
  assert.deepEqual(await queue(d), []);
});

test('a restart (kill -9) in the middle of a deferred queue loses nothing and sends nothing twice', async () => {
  const dns = await DnsServer.start({
    host: '127.0.21.55',
    records: {
      mx: [
        { domain: 'ok.test', host: 'mx.ok.test', pref: 10 },
        { domain: 'later.test', host: 'mx.later.test', pref: 10 },
      ],
      a: [
        { name: 'mx.ok.test', ip: '127.0.21.35' },
        { name: 'mx.later.test', ip: '127.0.21.36' },
      ],
    },
  });
  cleanups.push(() => dns.stop());
  const ok = await SmtpSink.start({ host: '127.0.21.35', port: 25, dumpDir: true });
  cleanups.push(() => ok.stop());
  let later = await SmtpSink.start({ host: '127.0.21.36', port: 25, reply: 'defer-rcpt' });
  cleanups.push(() => later.stop());
  const d = await daemon({ dns: { servers: [dns.address], timeoutSeconds: 2 }, delivery: { retryBaseSeconds: 600 } }, '127.0.21.6');
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await swaks(['--server', `${d.host}:${d.ports.mx}`, '--local-interface', PC, '--from', 'alice@example.test', '--to', `a${i}@ok.test,b${i}@later.test`, '--h-Subject', `pair ${i}`]);
    ids.push(/queued as (\w+)/.exec(r.out)![1]!);
  }
  // An attempt's line is logged once its outcome is on record: killing right after the
  // last one must not send any of these copies again.
  for (const id of ids) {
    await d.waitFor(attempt(id, 'delivered'));
    await d.waitFor(attempt(id, 'deferred'));
  }
  await ok.waitForMessages(5);
  await d.kill9();

  await later.stop();
  later = await SmtpSink.start({ host: '127.0.21.36', port: 25, dumpDir: true });
  cleanups.push(() => later.stop());
  const firstRun = d.logs;
  await d.start();
  const q = await queue(d);
  // On a failure, what each run logged says why (a record that still said "queued" is re-sent at once).
  const why = () => {
    const pick = (ls: LogLine[]) => ls.filter((l) => typeof l.evt === 'string' && /^(queue\.|spool\.|route\.|delivery\.|daemon\.|services\.|scan\.)/.test(l.evt)).map((l) => JSON.stringify(l)).join('\n');
    return `ids ${ids.join(' ')}\n--- before kill -9:\n${pick(firstRun)}\n--- after restart:\n${pick(d.logs)}`;
  };
  assert.deepEqual(q.map((e) => e.id).sort(), [...ids].sort(), why());
  for (const e of q) assert.deepEqual(e.recipients.map((r) => r.state).sort(), ['deferred', 'delivered'], why());
  await d.cli(['queue', 'flush']);
  await later.waitForMessages(5);
  await eventually('an empty queue', async () => (await queue(d)).length === 0);
  await d.waitFor(emptyAndIdle);
  assert.equal((await ok.messages()).length, 5, `no second copy to the peer that had answered 250\n${why()}`);
  assert.equal((await later.messages()).length, 5);
});

test('a per-domain route sends a partner domain to its fixed host, whatever the DNS says', async () => {
  const port = await freePort('127.0.21.38');
  const partner = await SmtpSink.start({ host: '127.0.21.38', port, dumpDir: true });
  cleanups.push(() => partner.stop());
  // The default test DNS is a closed port: without the route this mail would be deferred.
  const d = await daemon({ routing: { sourceAddress: '127.0.21.10', domains: { 'partner.test': { host: '127.0.21.38', port, tls: 'opportunistic' } } } }, '127.0.21.10');
  const id = await send(d, 'jo@partner.test', { subject: 'to the partner' });
  const line = await d.waitFor(attempt(id, 'delivered'));
  assert.equal(line.route, 'fixed:partner.test');
  const [dump] = await partner.waitForMessages(1);
  assert.equal(dump!.clientAddr, '127.0.21.10', 'sent from routing.sourceAddress');
  assert.match(dump!.message, /Subject: to the partner/);
});

test('queue delete and retry: unknown IDs are refused with a clear error; delete drops the message', async () => {
  const d = await daemon({}, '127.0.21.7');
  // The default test DNS is a closed port: remote mail stays deferred.
  const id = await send(d, 'hank@remote.test');
  await d.waitFor(attempt(id, 'deferred'));
  const bad = await d.cli(['queue', 'retry', 'NOPE']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /mlsd: queue: no message NOPE/);
  const del = await d.cli(['queue', 'delete', id]);
  assert.equal(del.code, 0, del.stderr);
  assert.match(del.stdout, /deleted; not delivered to: hank@remote\.test/);
  assert.deepEqual(await queue(d), []);
  assert.deepEqual(await readdir(join(d.dataDir, 'spool')).then((f) => f.filter((n) => n.endsWith('.eml'))).catch(() => []), []);
  const dk = await d.cli(['dkim', 'show', 'nosuch.test']);
  assert.notEqual(dk.code, 0);
  assert.match(dk.stderr, /not a local domain/);
  const shown = await d.cli(['dkim', 'show', 'example.test']);
  assert.match(shown.stdout, /^mlsd\._domainkey\.example\.test\. IN TXT "v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+" "[A-Za-z0-9+/=]+"$/m);
});

test('DNSBL self-check: a listing is an event, an alert and a status line; with autoReroute mail goes via the smarthost until delisted', async () => {
  const dns = await DnsServer.start({
    host: '127.0.21.56',
    records: {
      mx: [{ domain: 'remote.test', host: 'mx.remote.test', pref: 10 }],
      a: [{ name: 'mx.remote.test', ip: '127.0.21.37' }],
      txt: [{ name: '10.2.0.192.bl.test', text: 'Listed: spam trap hits, see http://bl.test/192.0.2.10' }],
      authoritative: ['bl.test', 'remote.test'],
    },
  });
  cleanups.push(() => dns.stop());
  await dns.setA([{ name: '10.2.0.192.bl.test', ip: '127.0.0.2' }]);
  const mx = await SmtpSink.start({ host: '127.0.21.37', port: 25, dumpDir: true });
  cleanups.push(() => mx.stop());
  const smarthost = await SmtpSink.start({ host: '127.0.21.9', port: 2525, dumpDir: true });
  cleanups.push(() => smarthost.stop());
  const d = await daemon(
    {
      dns: { servers: [dns.address], timeoutSeconds: 2 },
      dnsbl: { checkIps: ['192.0.2.10'], zones: ['bl.test'], intervalMinutes: 0.01, autoReroute: true },
      routing: { mode: 'mx', sourceAddress: '127.0.21.8', smarthost: { host: '127.0.21.9', port: 2525, tls: 'none' } },
      alerts: { adminEmails: ['admin@example.test'] },
    },
    '127.0.21.8',
  );
  await d.addUser('admin@example.test', 'admin-password-1');
  await d.waitFor((l) => l.evt === 'dnsbl.check' && l.listed === 1);
  const status = await d.cli(['status']);
  assert.match(status.stdout, /blacklists: 192\.0\.2\.10 \(own\) LISTED on bl\.test \(Listed: spam trap hits/);
  const events = JSON.parse((await d.cli(['events', 'list', '--json'])).stdout) as { kind: string; text: string }[];
  assert.ok(events.some((e) => e.kind === 'dnsbl.listed' && /192\.0\.2\.10 is listed on bl\.test \(127\.0\.0\.2/.test(e.text)));
  await eventually('the admin alert', async () => (await d.mailbox('admin')).find((m) => m.includes('X-Mlsd-Event: dnsbl.listed')));

  const id = await send(d, 'ivy@remote.test', { subject: 'while listed' });
  const l1 = await d.waitFor(attempt(id, 'delivered'));
  assert.equal(l1.route, 'smarthost');
  await smarthost.waitForMessages(1);
  assert.match((await d.cli(['status'])).stdout, /routing: smarthost \(rerouted from mx/);

  await dns.setA([]);
  await d.waitFor((l) => l.evt === 'routing.restored', 10000);
  const id2 = await send(d, 'ivy@remote.test', { subject: 'after delisting' });
  const l2 = await d.waitFor(attempt(id2, 'delivered'));
  assert.equal(l2.route, 'mx:remote.test');
  await mx.waitForMessages(1);
  const kinds = (JSON.parse((await d.cli(['events', 'list', '--json'])).stdout) as { kind: string }[]).map((e) => e.kind);
  for (const k of ['dnsbl.listed', 'routing.rerouted', 'dnsbl.delisted', 'routing.restored']) assert.ok(kinds.includes(k), `${k} in ${kinds.join(',')}`);
  assert.match((await d.cli(['status'])).stdout, /blacklists: 192\.0\.2\.10 \(own\) not listed/);
});
