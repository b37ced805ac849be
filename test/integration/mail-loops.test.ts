import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon, swaks, eventually, type LogLine } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { DnsServer } from '../helpers/dns.js';
import type { QueueEntry } from '../../src/delivery/queue.js';

/**
 * Issue 12 finding 3, mail loops: the hop count (smtp.maxHops), a Delivered-To loop through
 * aliases of two boxes, and an MX that is the box itself. Addresses 127.0.101.x:
 * .30 hop-count daemon, .31 its client; .40 the daemon whose MX listener is on port 25,
 * .41 its sending PC, .53 dnsmasq; .60 and .61 two boxes forwarding to each other, .62 their PC.
 */
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function daemon(host: string, config: Record<string, unknown>, o: { mxPort25?: boolean } = {}): Promise<TestDaemon> {
  const d = await TestDaemon.create({ host, config: { delivery: { retryBaseSeconds: 1, retryMaxSeconds: 2 }, ...config } });
  cleanups.push(() => d.cleanup());
  if (o.mxPort25) {
    // A real MX listener, on the port other servers (and our own delivery) connect to.
    const path = join(d.configDir, 'config.json');
    const cfg = JSON.parse(await readFile(path, 'utf8')) as { smtp: { listeners: { name: string; port: number }[] } };
    cfg.smtp.listeners.find((l) => l.name === 'mx')!.port = 25;
    await writeFile(path, JSON.stringify(cfg, null, 2));
    d.ports.mx = 25;
  }
  await d.start();
  return d;
}

async function queue(d: TestDaemon): Promise<QueueEntry[]> {
  const r = await d.cli(['queue', 'list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as QueueEntry[];
}

async function spoolFiles(d: TestDaemon): Promise<string[]> {
  return (await readdir(join(d.dataDir, 'spool')).catch(() => [] as string[])).filter((n) => n.endsWith('.eml'));
}

/** Sends through the submission port as an authenticated local user; returns the queue id. */
async function submit(d: TestDaemon, from: [string, string], to: string, subject: string): Promise<string> {
  const r = await swaks(['--server', `${d.host}:${d.ports.submission}`, '--tls', '--auth', 'PLAIN', '--auth-user', from[0], '--auth-password', from[1], '--from', from[0], '--to', to, '--h-Subject', subject]);
  assert.equal(r.code, 0, r.out);
  return /queued as (\w+)/.exec(r.out)![1]!;
}

const received = (n: number, name = 'Received') =>
  Array.from({ length: n }, (_, i) => `${name}: from hop${i}.remote.test ([192.0.2.${i % 250}])\r\n\tby relay${i}.remote.test; Thu, 1 Jan 2026 00:00:00 +0000\r\n`).join('');

test('smtp.maxHops: more Received fields than the limit (ours counted, obsolete forms too) get 554 5.4.6 at end of DATA and nothing is kept', async () => {
  const d = await daemon('127.0.101.30', {});
  await d.addUser('bob@example.test', 'bob-secret-1');
  const c = await RawSmtp.open(d.host, d.ports.mx, '127.0.101.31');
  await c.reply();
  await c.cmd('EHLO client.test');
  const send = async (headers: string, subject: string) => {
    assert.equal(await c.cmd('MAIL FROM:<someone@remote.test>'), '250 2.1.0 Accepted');
    assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5 Accepted');
    return c.data(`${headers}Subject: ${subject}\r\n\r\nbody`);
  };
  // The case: 120 Received fields.
  assert.equal(await send(received(120), 'looping'), '554 5.4.6 Error: too many hops, mail loop?');
  // 49 + ours = 50: the limit itself is allowed; 50 + ours is one too many.
  assert.match(await send(received(49), 'forty-nine hops'), /^250 2\.0\.0 /);
  assert.equal(await send(received(50), 'fifty hops'), '554 5.4.6 Error: too many hops, mail loop?');
  // Hostile spellings that mail software still reads as Received fields.
  assert.equal(await send(received(30, 'Received ') + received(30, 'rEcEiVeD'), 'odd spellings'), '554 5.4.6 Error: too many hops, mail loop?');
  c.close();
  await eventually('the one accepted message delivered', async () => (await d.mailbox('bob')).length === 1);
  assert.match((await d.mailbox('bob'))[0]!, /Subject: forty-nine hops/);
  // The spool file of the delivered message goes just after its mailbox copy: wait for it.
  // None of the refused ones was ever kept.
  await eventually('the spool empty', async () => (await spoolFiles(d)).length === 0);
  assert.ok(d.logs.some((l) => l.evt === 'smtp.refuse' && l.stage === 'data' && l.hops === 121 && l.maxHops === 50));
  // The limit is a config key, applied at once.
  assert.equal((await d.cli(['config', 'set', 'smtp.maxHops', '10'])).code, 0);
  const c2 = await RawSmtp.open(d.host, d.ports.mx, '127.0.101.31');
  await c2.reply();
  await c2.cmd('EHLO client.test');
  await c2.cmd('MAIL FROM:<someone@remote.test>');
  await c2.cmd('RCPT TO:<bob@example.test>');
  assert.equal(await c2.data(`${received(10)}Subject: ten\r\n\r\nbody`), '554 5.4.6 Error: too many hops, mail loop?');
  c2.close();
  assert.notEqual((await d.cli(['config', 'set', 'smtp.maxHops', '0'])).code, 0);
});

test('an MX that is this box (its own address, or its own hostname) is never sent to: the sender gets a "loops back to myself" DSN and the queue empties', async () => {
  const HOST = '127.0.101.40';
  const dns = await DnsServer.start({
    host: '127.0.101.53',
    records: {
      mx: [
        // Points at our own listening address.
        { domain: 'loop-addr.test', host: 'mx.loop-addr.test', pref: 10 },
        // Names our own hostname (its address is one nobody listens on).
        { domain: 'loop-name.test', host: 'mail.example.test', pref: 10 },
        // We are the best MX; the backup (worse preference) would hand it back to us.
        { domain: 'loop-backup.test', host: 'mx.loop-addr.test', pref: 10 },
        { domain: 'loop-backup.test', host: 'backup.loop-backup.test', pref: 20 },
      ],
      a: [
        { name: 'mx.loop-addr.test', ip: HOST },
        { name: 'mail.example.test', ip: '127.0.101.49' },
        { name: 'backup.loop-backup.test', ip: '127.0.101.48' },
      ],
    },
  });
  cleanups.push(() => dns.stop());
  const d = await daemon(HOST, { dns: { servers: [dns.address], timeoutSeconds: 2 } }, { mxPort25: true });
  await d.addUser('alice@example.test', 'alice-password-1');
  const ids: string[] = [];
  for (const to of ['x@loop-addr.test', 'y@loop-name.test', 'z@loop-backup.test']) ids.push(await submit(d, ['alice@example.test', 'alice-password-1'], to, `to ${to}`));
  for (const id of ids) {
    const l = await d.waitFor((x: LogLine) => x.evt === 'delivery.attempt' && x.id === id && x.result !== 'deferred' && x.result !== undefined, 30_000);
    assert.equal(l.result, 'bounced', JSON.stringify(l));
    assert.match(String(l.reply), /^554 5\.4\.6 mail for loop-(addr|name|backup)\.test loops back to myself$/);
  }
  const dsns = await eventually('three DSNs for alice', async () => {
    const box = (await d.mailbox('alice')).filter((m) => m.includes('report-type=delivery-status'));
    return box.length >= 3 && box;
  }, 30_000);
  for (const m of dsns) assert.match(m, /Status: 5\.4\.6/);
  await eventually('the queue is empty', async () => (await queue(d)).length === 0, 30_000);
  // It never connected to itself: no message came in from its own address.
  assert.ok(!d.logs.some((l) => l.evt === 'smtp.accept' && l.ip === HOST), 'the box delivered to itself');
  assert.equal(d.logs.filter((l) => l.evt === 'delivery.attempt').length, 3, 'one attempt each, no retries');
});

test('a Delivered-To loop through aliases of two boxes is refused with 554 5.4.6 on its second arrival, and the sender gets a DSN', async () => {
  // Box A (example.test): alias fwd@example.test → back@other.test. Box B (other.test): alias
  // back@other.test → fwd@example.test. Each routes the other's domain to the other's MX.
  // Each trusts the other as a relay client: B forwards alice's mail with her (local to A)
  // envelope sender, as forwarding does.
  const a = await daemon('127.0.101.60', { relay: { allowIps: ['127.0.101.61'] } });
  const b = await daemon('127.0.101.61', { domains: ['other.test'], hostname: 'mail.other.test', relay: { allowIps: ['127.0.101.60'] } });
  const routeTo = (d: TestDaemon, domain: string) => d.cli(['config', 'set', `routing.domains`, JSON.stringify({ [domain]: { host: d === a ? b.host : a.host, port: d === a ? b.ports.mx : a.ports.mx, tls: 'none' } })]);
  assert.equal((await routeTo(a, 'other.test')).code, 0);
  assert.equal((await routeTo(b, 'example.test')).code, 0);
  await a.addUser('alice@example.test', 'alice-password-1');
  assert.equal((await a.cli(['alias', 'add', 'fwd@example.test', '--to', 'back@other.test'])).code, 0);
  assert.equal((await b.cli(['alias', 'add', 'back@other.test', '--to', 'fwd@example.test'])).code, 0);

  const id = await submit(a, ['alice@example.test', 'alice-password-1'], 'fwd@example.test', 'round and round');
  const dsn = await eventually('the DSN for alice', async () => (await a.mailbox('alice')).find((m) => m.includes('report-type=delivery-status')), 60_000);
  assert.match(dsn.replace(/\r\n[ \t]+/g, ' '), /Diagnostic-Code: smtp; ?554 5\.4\.6 Error: mail forwarding loop for fwd@example\.test/);
  // A took the message in twice (from alice, then from B), and refused the third pass at once.
  const refused = await a.waitFor((l) => l.evt === 'smtp.refuse' && l.stage === 'data' && Array.isArray(l.looping));
  assert.deepEqual(refused.looping, ['fwd@example.test']);
  assert.equal(a.logs.filter((l) => l.evt === 'smtp.accept' && Array.isArray(l.rcpt) && (l.rcpt as string[]).includes('fwd@example.test')).length, 1, `A accepted ${id} once from alice and no more`);
  await eventually('both queues empty', async () => (await queue(a)).length === 0 && (await queue(b)).length === 0, 30_000);
});

test('a Delivered-To loop through aliases with UTF-8 local parts is caught on its second arrival too, not after smtp.maxHops', async () => {
  // As the test above, with SMTPUTF8 aliases (RFC 6531): jörg@example.test → zurück@other.test
  // → jörg@example.test. Addresses 127.0.111.60 and .61 (box A and box B), .62 the client.
  const a = await daemon('127.0.111.60', { relay: { allowIps: ['127.0.111.61'] } });
  const b = await daemon('127.0.111.61', { domains: ['other.test'], hostname: 'mail.other.test', relay: { allowIps: ['127.0.111.60'] } });
  assert.equal((await a.cli(['config', 'set', 'routing.domains', JSON.stringify({ 'other.test': { host: b.host, port: b.ports.mx, tls: 'none' } })])).code, 0);
  assert.equal((await b.cli(['config', 'set', 'routing.domains', JSON.stringify({ 'example.test': { host: a.host, port: a.ports.mx, tls: 'none' } })])).code, 0);
  const aliasA = await a.cli(['alias', 'add', 'jörg@example.test', '--to', 'zurück@other.test']);
  assert.equal(aliasA.code, 0, aliasA.stderr);
  const aliasB = await b.cli(['alias', 'add', 'zurück@other.test', '--to', 'jörg@example.test']);
  assert.equal(aliasB.code, 0, aliasB.stderr);

  const c = await RawSmtp.open(a.host, a.ports.mx, '127.0.111.62');
  await c.reply();
  await c.cmd('EHLO sender.remote.test');
  assert.match(await c.cmd('MAIL FROM:<sender@remote.test> SMTPUTF8'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<jörg@example.test>'), /^250 /);
  assert.match(await c.data('From: sender@remote.test\r\nSubject: rund und rund\r\n\r\nx'), /^250 /);
  c.close();
  const refused = await a.waitFor((l) => l.evt === 'smtp.refuse' && l.stage === 'data' && (Array.isArray(l.looping) || typeof l.hops === 'number'), 60_000);
  assert.deepEqual(refused.looping, ['jörg@example.test'], `refused for ${JSON.stringify(refused)}`);
  assert.equal(a.logs.filter((l) => l.evt === 'smtp.accept' && Array.isArray(l.rcpt) && (l.rcpt as string[]).includes('jörg@example.test')).length, 1, 'A accepted it from the client only: its return from B was refused');
});
