// Proves the real peers that the outbound-delivery tests drive: dnsmasq as the DNS, a throw-away
// Postfix as a remote MTA (plain, AUTH over STARTTLS, implicit TLS) and smtp-sink as a remote
// MTA that accepts, defers or rejects. If one of these is broken, a delivery test failing on it
// would blame the delivery engine; this file makes the fixture the suspect first.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as dnsPromises } from 'node:dns';
import { connect } from 'node:net';
import { stat } from 'node:fs/promises';
import { swaks, serverLines, freePort } from '../helpers/daemon.js';
import { DnsServer } from '../helpers/dns.js';
import { PostfixPeer } from '../helpers/postfix.js';
import { SmtpSink } from '../helpers/smtp-sink.js';

// Loopback plan for this file (127.0.20.0/24): DNS 127.0.20.53; Postfix peers .25 (plain), .26
// (AUTH over STARTTLS), .27 (implicit TLS); smtp-sinks .30-.32; swaks connects from .100.
const DNS_HOST = '127.0.20.53';
const CLIENT = '127.0.20.100';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

function resolver(dns: DnsServer): dnsPromises.Resolver {
  const r = new dnsPromises.Resolver({ timeout: 1000, tries: 1 });
  r.setServers([dns.address]);
  return r;
}

async function dnsError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

/** A unique Subject, so a test finds its own message and not an earlier one. */
const subject = (tag: string) => `peers-${tag}-${process.pid}-${Date.now()}`;

const send = (server: string, to: string, extra: string[] = []) =>
  swaks(['--server', server, '--local-interface', CLIENT, '--from', 'a@x.test', '--to', to, ...extra]);

/** What a plaintext client receives within ms of connecting. */
function firstBytes(host: string, port: number, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString()));
    s.once('error', reject);
    s.once('connect', () => setTimeout(() => (s.destroy(), resolve(got)), ms));
  });
}

function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

test('dnsmasq answers MX, A, TXT, null MX and NXDOMAIN, and a setA change is seen', async () => {
  const dns = await DnsServer.start({
    host: DNS_HOST,
    records: {
      mx: [
        { domain: 'remote.test', host: 'mx1.remote.test', pref: 10 },
        { domain: 'remote.test', host: 'mx2.remote.test', pref: 20 },
        { domain: 'nullmx.test', host: '.', pref: 0 },
      ],
      a: [
        { name: 'mx1.remote.test', ip: '127.0.20.25' },
        { name: 'mx2.remote.test', ip: '127.0.20.26' },
        { name: 'amx.test', ip: '127.0.20.30' },
        { name: '10.2.0.192.bl.test', ip: '127.0.0.2' },
      ],
      // 192.0.2.10 is listed from the start (A + TXT reason); 192.0.2.11 gets listed by setA.
      txt: [{ name: '10.2.0.192.bl.test', text: 'Listed: see https://bl.test/q?ip=192.0.2.10, really' }],
    },
  });
  cleanups.push(() => dns.stop());
  assert.match(dns.address, /^127\.0\.20\.53:\d+$/);
  const r = resolver(dns);

  const mx = await r.resolveMx('remote.test');
  assert.deepEqual(
    mx.sort((a, b) => a.priority - b.priority),
    [
      { exchange: 'mx1.remote.test', priority: 10 },
      { exchange: 'mx2.remote.test', priority: 20 },
    ],
  );
  assert.deepEqual(await r.resolve4('mx1.remote.test'), ['127.0.20.25']);
  assert.deepEqual(await r.resolve4('mx2.remote.test'), ['127.0.20.26']);
  // A domain with an A record and no MX: the A answers, the MX is NODATA (not NXDOMAIN), which
  // is what sends a sender to the implicit MX (RFC 5321 5.1).
  assert.deepEqual(await r.resolve4('amx.test'), ['127.0.20.30']);
  assert.equal(await dnsError(r.resolveMx('amx.test')), 'ENODATA');
  // RFC 7505 null MX: preference 0, root target (Node gives the root name as "").
  assert.deepEqual(await r.resolveMx('nullmx.test'), [{ exchange: '', priority: 0 }]);
  // An MX host that exists but has no AAAA: NODATA, not REFUSED.
  assert.equal(await dnsError(r.resolve6('mx1.remote.test')), 'ENODATA');

  // The DNSBL zone: a listed IP answers 127.0.0.2 with a TXT reason (the comma in it survives:
  // dnsmasq would otherwise split it into two strings); an unlisted one is NXDOMAIN, which Node
  // reports as ENOTFOUND.
  assert.deepEqual(await r.resolve4('10.2.0.192.bl.test'), ['127.0.0.2']);
  assert.deepEqual(await r.resolveTxt('10.2.0.192.bl.test'), [['Listed: see https://bl.test/q?ip=192.0.2.10, really']]);
  assert.equal(await dnsError(r.resolve4('11.2.0.192.bl.test')), 'ENOTFOUND');
  assert.equal(await dnsError(r.resolveTxt('11.2.0.192.bl.test')), 'ENOTFOUND');
  assert.equal(await dnsError(r.resolve4('nowhere.example')), 'ENOTFOUND');

  await dns.setA([{ name: '11.2.0.192.bl.test', ip: '127.0.0.2' }]); // listed at run time
  assert.deepEqual(await r.resolve4('11.2.0.192.bl.test'), ['127.0.0.2']);
  assert.equal(await dnsError(r.resolve4('12.2.0.192.bl.test')), 'ENOTFOUND');
  // Static records are untouched by setA.
  assert.deepEqual(await r.resolve4('10.2.0.192.bl.test'), ['127.0.0.2']);
  assert.deepEqual(await r.resolve4('mx1.remote.test'), ['127.0.20.25']);

  await dns.setA([]); // delisted again
  assert.equal(await dnsError(r.resolve4('11.2.0.192.bl.test')), 'ENOTFOUND');

  await dns.stop();
  assert.equal(await dnsError(resolver(dns).resolve4('mx1.remote.test')), 'ECONNREFUSED');
});

test('dnsmasq with explicit authoritative zones refuses names outside them', async () => {
  const dns = await DnsServer.start({
    host: '127.0.20.54',
    records: { a: [{ name: 'mx.remote.test', ip: '127.0.20.25' }], authoritative: ['bl.test'] },
  });
  cleanups.push(() => dns.stop());
  const r = resolver(dns);
  assert.equal(await dnsError(r.resolve4('1.2.0.192.bl.test')), 'ENOTFOUND');
  assert.equal(await dnsError(r.resolve4('other.example')), 'EREFUSED');
  assert.deepEqual(await r.resolve4('mx.remote.test'), ['127.0.20.25']);
  await dns.stop();
});

test('Postfix peer without auth: takes mail for its domains into a Maildir, refuses relay', async () => {
  const host = '127.0.20.25';
  const pf = await PostfixPeer.start({ host, port: await freePort(host), domains: ['remote.test', 'remote2.test'] });
  cleanups.push(() => pf.stop());
  const server = `${host}:${pf.port}`;

  const subj = subject('plain');
  const ok = await send(server, 'User.One@remote.test', ['--header', `Subject: ${subj}`]);
  assert.equal(ok.code, 0, ok.out);
  assert.match(serverLines(ok.out).at(0) ?? '', /^220 mx\.remote\.test ESMTP/);
  assert.match(serverLines(ok.out).at(-2) ?? '', /^250 2\.0\.0 Ok: queued as /, ok.out);

  const relay = await send(server, 'u@elsewhere.test');
  assert.ok(serverLines(relay.out).includes('554 5.7.1 <u@elsewhere.test>: Relay access denied'), relay.out);

  const [m, ...rest] = await pf.waitForMessages(1, 10000);
  assert.equal(rest.length, 0);
  assert.equal(m!.rcpt, 'User.One@remote.test'); // Delivered-To keeps the case as sent
  assert.match(m!.path, /\/mail\/remote\.test\/Maildir\/new\//);
  assert.ok(m!.raw.toString().includes(`Subject: ${subj}`));
  assert.match(m!.raw.toString(), /^Return-Path: <a@x\.test>$/m);
  assert.match(await pf.log(), /to=<user\.one@remote\.test>, relay=virtual.*status=sent \(delivered to maildir\)/i);

  const dir = pf.dir;
  await pf.stop();
  assert.ok(await refused(host, pf.port), 'still listening after stop');
  await assert.rejects(stat(dir), 'instance dir left behind');
});

test('Postfix peer with auth and STARTTLS: AUTH only after STARTTLS, no mail without it', async () => {
  const host = '127.0.20.26';
  const pf = await PostfixPeer.start({
    host,
    port: await freePort(host),
    domains: ['remote.test'],
    auth: { user: 'relay@mlsd.test', password: 'peer-secret' },
    tls: 'starttls',
  });
  cleanups.push(() => pf.stop());
  const server = `${host}:${pf.port}`;

  // Before STARTTLS: STARTTLS offered, AUTH not (smtpd_tls_auth_only).
  const ehlo = await send(server, 'u@remote.test', ['--quit-after', 'EHLO']);
  assert.ok(serverLines(ehlo.out).includes('250-STARTTLS'), ehlo.out);
  assert.ok(!serverLines(ehlo.out).some((l) => /AUTH/.test(l)), ehlo.out);

  // Unauthenticated, even over TLS and even to its own domain: refused at RCPT.
  const noAuth = await send(server, 'u@remote.test', ['--tls']);
  assert.ok(serverLines(noAuth.out).includes('554 5.7.1 <u@remote.test>: Recipient address rejected: Access denied'), noAuth.out);

  const wrong = await send(server, 'u@remote.test', ['--tls', '--auth', 'PLAIN', '--auth-user', 'relay@mlsd.test', '--auth-password', 'nope']);
  assert.ok(serverLines(wrong.out).some((l) => l.startsWith('535 5.7.8')), wrong.out);

  const subjPlain = subject('auth-plain');
  const plain = await send(server, 'u@remote.test', [
    '--tls', '--auth', 'PLAIN', '--auth-user', 'relay@mlsd.test', '--auth-password', 'peer-secret', '--header', `Subject: ${subjPlain}`,
  ]);
  assert.ok(serverLines(plain.out).some((l) => /^250-AUTH .*\bPLAIN\b/.test(l) && /\bLOGIN\b/.test(l)), plain.out);
  assert.ok(serverLines(plain.out).includes('235 2.7.0 Authentication successful'), plain.out);
  const subjLogin = subject('auth-login');
  const login = await send(server, 'v@remote.test', [
    '--tls', '--auth', 'LOGIN', '--auth-user', 'relay@mlsd.test', '--auth-password', 'peer-secret', '--header', `Subject: ${subjLogin}`,
  ]);
  assert.ok(serverLines(login.out).includes('235 2.7.0 Authentication successful'), login.out);

  const msgs = await pf.waitForMessages(2, 10000);
  assert.deepEqual(msgs.map((m) => m.rcpt).sort(), ['u@remote.test', 'v@remote.test']);
  assert.ok(msgs.some((m) => m.raw.toString().includes(`Subject: ${subjPlain}`)));
  assert.ok(msgs.some((m) => m.raw.toString().includes(`Subject: ${subjLogin}`)));
  // Received: records TLS, so a delivery test can tell the engine used STARTTLS.
  assert.ok(msgs.every((m) => /\(using TLSv1\.[23] /.test(m.raw.toString())), msgs[0]!.raw.toString());
  assert.equal((await pf.messages()).length, 2, 'the refused attempts delivered nothing');
});

test('Postfix peer with implicit TLS takes authenticated mail; a plaintext client gets no greeting', async () => {
  const host = '127.0.20.27';
  const pf = await PostfixPeer.start({
    host,
    port: await freePort(host),
    domains: ['remote.test'],
    auth: { user: 'relay', password: 'pw-implicit' },
    tls: 'implicit',
  });
  cleanups.push(() => pf.stop());
  assert.ok(pf.certFile);
  const server = `${host}:${pf.port}`;

  // Wrapper mode waits for a TLS ClientHello: a plaintext client sees no 220 at all.
  assert.equal(await firstBytes(host, pf.port, 500), '');

  const ok = await send(server, 'u@remote.test', ['--tlsc', '--auth', 'LOGIN', '--auth-user', 'relay', '--auth-password', 'pw-implicit']);
  assert.ok(serverLines(ok.out).includes('235 2.7.0 Authentication successful'), ok.out);
  const [m] = await pf.waitForMessages(1, 10000);
  assert.equal(m!.rcpt, 'u@remote.test');
});

test('a Postfix peer left running by a crashed run on the same address is replaced on start', async () => {
  const host = '127.0.20.28';
  const port = await freePort(host);
  const first = await PostfixPeer.start({ host, port, domains: ['remote.test'] });
  cleanups.push(() => first.stop());
  // Simulate the crash: no stop(); the next start on host:port must clean it up itself.
  const second = await PostfixPeer.start({ host, port, domains: ['remote.test'] });
  cleanups.push(() => second.stop());
  const r = await send(`${host}:${port}`, 'u@remote.test');
  assert.match(serverLines(r.out).at(-2) ?? '', /^250 2\.0\.0 Ok: queued as /, r.out);
  assert.equal((await second.waitForMessages(1)).length, 1);
  await second.stop();
  assert.ok(await refused(host, port));
});

test('smtp-sink accepts and dumps a message', async () => {
  const host = '127.0.20.30';
  const sink = await SmtpSink.start({ host, port: await freePort(host), dumpDir: true, hostname: 'sink.remote.test' });
  cleanups.push(() => sink.stop());
  const subj = subject('sink');
  const r = await send(`${host}:${sink.port}`, 'u@remote.test,w@remote.test', ['--header', `Subject: ${subj}`, '--body', 'hello sink']);
  const lines = serverLines(r.out);
  assert.equal(lines[0], '220 sink.remote.test ESMTP');
  assert.ok(lines.includes('250-PIPELINING'), r.out);
  assert.ok(!lines.some((l) => /AUTH|XCLIENT|XFORWARD/.test(l)), r.out);
  assert.equal(lines.at(-2), '250 2.0.0 Ok', r.out);

  const [d, ...more] = await sink.waitForMessages(1);
  assert.equal(more.length, 0);
  assert.equal(d!.clientAddr, CLIENT);
  assert.equal(d!.mailFrom, 'a@x.test');
  assert.deepEqual(d!.rcptTo, ['<u@remote.test>', '<w@remote.test>']);
  assert.match(d!.message, new RegExp(`^Subject: ${subj}$`, 'm'));
  // The message alone: neither smtp-sink's envelope headers nor its Received: header, nor the
  // empty line it appends.
  assert.match(d!.message, /^Date: /);
  assert.ok(!/X-Client-Addr|\(smtp-sink\)/.test(d!.message), d!.message);
  assert.ok(d!.message.includes('\n\nhello sink\n'), JSON.stringify(d!.message));
  assert.equal(d!.raw.toString().slice(-d!.message.length - 1), d!.message + '\n');
  assert.deepEqual(await sink.messages(), [d!.raw]);
});

test('smtp-sink defers and rejects at RCPT, DATA and end of data with the documented lines', async () => {
  const host = '127.0.20.31';
  const port = await freePort(host);
  const cases = [
    { reply: 'defer-rcpt', line: '450 4.3.0 Error: command failed', at: 'RCPT' },
    { reply: 'reject-rcpt', line: '500 5.3.0 Error: command failed', at: 'RCPT' },
    { reply: 'defer-data', line: '450 4.3.0 Error: command failed', at: 'DATA' },
    { reply: 'reject-data', line: '500 5.3.0 Error: command failed', at: 'DATA' },
    { reply: 'defer-eod', line: '450 4.3.0 Error: command failed', at: '.' },
    { reply: 'reject-eod', line: '500 5.3.0 Error: command failed', at: '.' },
  ] as const;
  for (const c of cases) {
    // Each on the same port, as a test that swaps peers does: stop() must free it at once.
    const sink = await SmtpSink.start({ host, port, reply: c.reply, dumpDir: true });
    try {
      const r = await send(`${host}:${port}`, 'u@remote.test');
      const lines = serverLines(r.out);
      assert.equal(lines.at(-2), c.line, `${c.reply}: ${r.out}`);
      assert.ok(!lines.includes('250-PIPELINING'), `${c.reply} still offers PIPELINING`);
      // What was accepted before the failure: MAIL always; RCPT unless it failed there; 354 only
      // when the failure is at the final dot.
      assert.ok(lines.includes('250 2.1.0 Ok'), r.out);
      assert.equal(lines.includes('250 2.1.5 Ok'), c.at !== 'RCPT', r.out);
      assert.equal(lines.some((l) => l.startsWith('354')), c.at === '.', r.out);
      // smtp-sink writes the dump before the final reply, so even a rejected message is there.
      assert.equal((await sink.messages()).length, c.at === '.' ? 1 : 0, c.reply);
    } finally {
      await sink.stop();
    }
  }

  const custom = await SmtpSink.start({ host, port, reply: 'reject-rcpt', hardReply: '550 5.1.1 No such user here' });
  try {
    const r = await send(`${host}:${port}`, 'u@remote.test');
    assert.equal(serverLines(r.out).at(-2), '550 5.1.1 No such user here', r.out);
  } finally {
    await custom.stop();
  }
});

test('a deferring smtp-sink can be replaced by an accepting one on the same address:port', async () => {
  const host = '127.0.20.32';
  const port = await freePort(host);
  const defer = await SmtpSink.start({ host, port, reply: 'defer-rcpt' });
  const r1 = await send(`${host}:${port}`, 'u@remote.test');
  assert.equal(serverLines(r1.out).at(-2), '450 4.3.0 Error: command failed', r1.out);
  await defer.stop();
  assert.ok(await refused(host, port));

  const accept = await SmtpSink.start({ host, port, dumpDir: true });
  cleanups.push(() => accept.stop());
  const r2 = await send(`${host}:${port}`, 'u@remote.test');
  assert.equal(serverLines(r2.out).at(-2), '250 2.0.0 Ok', r2.out);
  assert.equal((await accept.waitForMessages(1)).length, 1);
});
