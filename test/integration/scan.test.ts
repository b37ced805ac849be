import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';
import yazl from 'yazl';
import { TestDaemon, freePort, swaks, eventually, type LogLine } from '../helpers/daemon.js';
import { SmtpSink } from '../helpers/smtp-sink.js';
import { SpamdServer } from '../helpers/spamd.js';
import { ClamdServer } from '../helpers/clamd.js';
import type { QuarantineRecord } from '../../src/scan/quarantine.js';

/**
 * Outbound scanning as a company PC or a stolen password would meet it: mail from local
 * senders goes through the scanners before it may leave through the smarthost (an
 * smtp-sink on loopback, so what leaves is seen). Sent with nodemailer (a real client).
 * Addresses 127.0.41.x: .1 mlsd, .2 a PC in relay.allowIps, .3 an outside server, .9 the smarthost.
 */
const HOST = '127.0.41.1';
const PC = '127.0.41.2';
const OUTSIDE = '127.0.41.3';
const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function setup(host: string, scan: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const sinkPort = await freePort('127.0.41.9');
  const sink = await SmtpSink.start({ host: '127.0.41.9', port: sinkPort, dumpDir: true });
  cleanups.push(() => sink.stop());
  const d = await TestDaemon.create({
    host,
    config: {
      relay: { allowIps: [PC], allowRecipientDomains: [], allowAuthenticated: true },
      routing: { mode: 'smarthost', sourceAddress: host, smarthost: { host: '127.0.41.9', port: sinkPort, tls: 'none' } },
      alerts: { adminEmails: ['admin@example.test'] },
      scan,
      ...extra,
    },
  });
  cleanups.push(() => d.cleanup());
  await d.start();
  await d.addUser('alice@example.test', 'alice-password-1');
  await d.addUser('admin@example.test', 'admin-password-1');
  return { d, sink };
}

/** Sends as alice over submission (STARTTLS + AUTH), as her mail program would. */
async function sendAsAlice(d: TestDaemon, mail: { subject: string; text?: string; attachments?: { filename: string; content: Buffer | string }[] }, to = 'bob@remote.test') {
  const t = nodemailer.createTransport({
    host: d.host,
    port: d.ports.submission,
    secure: false,
    requireTLS: true,
    tls: { rejectUnauthorized: false },
    auth: { user: 'alice@example.test', pass: 'alice-password-1' },
  });
  try {
    const info = await t.sendMail({ from: 'alice@example.test', to, subject: mail.subject, text: mail.text ?? 'Hello, see attached.', attachments: mail.attachments });
    return { ok: true as const, response: info.response, id: /queued as (\w+)/.exec(info.response)?.[1] ?? '' };
  } catch (err) {
    return { ok: false as const, response: (err as { response?: string }).response ?? (err as Error).message };
  } finally {
    t.close();
  }
}

async function quarantine(d: TestDaemon): Promise<QuarantineRecord[]> {
  const r = await d.cli(['quarantine', 'list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as QuarantineRecord[];
}

function zip(entries: Record<string, Buffer | string>): Promise<Buffer> {
  const z = new yazl.ZipFile();
  for (const [name, data] of Object.entries(entries)) z.addBuffer(Buffer.from(data), name);
  z.end();
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    z.outputStream.on('data', (c: Buffer) => parts.push(c)).on('end', () => resolve(Buffer.concat(parts))).on('error', reject);
  });
}

/** A tiny but well-formed PE header: what a Windows executable starts with. */
function fakeExe(): Buffer {
  const b = Buffer.alloc(512);
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  return b;
}

const scanned = (l: LogLine) => l.evt === 'scan.result';

/**
 * True once every message the daemon accepted from a client has reached its end: quarantined,
 * deleted by the scan, or routed (each local recipient in its mailbox, the remote ones queued
 * and the queue done with them), and every queued message (alerts included) is done. Only
 * then is what the smarthost received final.
 */
function everyMessageSettled(d: TestDaemon): boolean {
  const ids = (evt: string) => new Set(d.logs.filter((l) => l.evt === evt).map((l) => String(l.id)));
  const [quarantined, deleted, queued, done] = [ids('quarantine.add'), ids('scan.deleted'), ids('queue.add'), ids('queue.done')];
  const inMailbox = new Set(d.logs.filter((l) => l.evt === 'delivery.local').map((l) => `${String(l.id)} ${String(l.rcpt)}`));
  const accepted = d.logs.filter((l) => l.evt === 'smtp.accept');
  return (
    accepted.every((l) => {
      const id = String(l.id);
      if (quarantined.has(id) || deleted.has(id)) return true;
      return (l.rcpt as string[]).every((r) => (r.endsWith('@example.test') ? inMailbox.has(`${id} ${r}`) : queued.has(id) && done.has(id)));
    }) && [...queued].every((id) => done.has(id))
  );
}

test('built-in layer: clean mail leaves; GTUBE is quarantined (250, never reaches the smarthost); EICAR and a zipped .exe get 554 5.7.1; repeated hits raise a compromised-account alert', async () => {
  const { d, sink } = await setup(HOST);
  const clean = await sendAsAlice(d, { subject: 'Quarterly figures', text: 'The figures are attached.', attachments: [{ filename: 'figures.txt', content: 'a,b\n1,2\n' }] });
  assert.ok(clean.ok, clean.response);
  await sink.waitForMessages(1);

  // Large messages (past the spool's 64 KiB write buffer) are read back from the file and scanned too.
  const bigClean = await sendAsAlice(d, { subject: 'the catalogue', attachments: [{ filename: 'catalogue.txt', content: 'product line\n'.repeat(20_000) }] });
  assert.ok(bigClean.ok, bigClean.response);
  await sink.waitForMessages(2);
  const bigExe = await sendAsAlice(d, { subject: 'big installer', attachments: [{ filename: 'tools.zip', content: await zip({ 'manual.txt': 'x'.repeat(300_000), 'install.exe': fakeExe() }) }] });
  assert.equal(bigExe.ok, false);
  assert.match(bigExe.response, /^554 5\.7\.1 /);

  const spam = await sendAsAlice(d, { subject: 'cheap pills', text: `Buy now ${GTUBE}` });
  assert.ok(spam.ok, spam.response);
  const [q] = await quarantine(d);
  assert.equal(q!.class, 'spam');
  assert.equal(q!.envelope.login, 'alice@example.test');
  assert.match(q!.summary, /builtin:GTUBE/);
  assert.equal(q!.id, spam.id);

  const virus = await sendAsAlice(d, { subject: 'invoice', attachments: [{ filename: 'invoice.com', content: EICAR }] });
  assert.equal(virus.ok, false);
  assert.match(virus.response, /^554 5\.7\.1 Message content rejected/);

  const exe = await sendAsAlice(d, { subject: 'your order', attachments: [{ filename: 'order.zip', content: await zip({ 'readme.txt': 'hi', 'setup.exe': fakeExe() }) }] });
  assert.equal(exe.ok, false);
  assert.match(exe.response, /^554 5\.7\.1 /);
  const line = await d.waitFor((l) => scanned(l) && l.class === 'virus' && /setup\.exe/.test(String(l.findings)));
  assert.equal(line.decision, 'refuse');

  // Three hits from alice in 24 h (scan.alertAfterHits): she is compromised, the admin is told.
  const events = JSON.parse((await d.cli(['events', 'list', '--json'])).stdout) as { kind: string; account?: string; text: string }[];
  assert.ok(events.some((e) => e.kind === 'scan.compromised' && e.account === 'alice@example.test'), JSON.stringify(events.map((e) => e.kind)));
  assert.ok(events.some((e) => e.kind === 'scan.quarantined'));
  await eventually('the admin alert mail', async () => (await d.mailbox('admin')).some((m) => m.includes('X-Mlsd-Event: scan.compromised')));

  await eventually('every accepted message settled', async () => everyMessageSettled(d));
  assert.equal((await sink.messages()).length, 2, 'only the clean messages left the box');

  // The administrator looks at the quarantined one and lets it go.
  const shown = await d.cli(['quarantine', 'show', q!.id]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.ok(shown.stdout.includes(GTUBE));
  const rel = await d.cli(['quarantine', 'release', q!.id]);
  assert.equal(rel.code, 0, rel.stderr);
  await d.waitFor((l) => l.evt === 'quarantine.release' && l.id === q!.id);
  const dumps = await sink.waitForMessages(3);
  assert.ok(dumps.some((x) => x.message.includes('Subject: cheap pills')));
  assert.deepEqual(await quarantine(d), []);
  const again = await d.cli(['quarantine', 'release', q!.id]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /quarantine: no message/);
});

test('spam actions: deliver adds X-Spam headers, delete drops it (logged); a relay.allowIps PC is scanned too; inbound mail is not scanned by default', async () => {
  const { d, sink } = await setup('127.0.41.4', { outbound: { action: 'deliver' } });
  const r = await sendAsAlice(d, { subject: 'tagged', text: `x ${GTUBE}` });
  assert.ok(r.ok, r.response);
  const [dump] = await sink.waitForMessages(1);
  assert.match(dump!.message, /^X-Spam-Flag: YES$/m);
  assert.match(dump!.message, /^X-Spam-Report: builtin:GTUBE/m);

  assert.equal((await d.cli(['config', 'set', 'scan.outbound.action', '"delete"'])).code, 0);
  const del = await sendAsAlice(d, { subject: 'dropped', text: `x ${GTUBE}` });
  assert.ok(del.ok, del.response);
  await d.waitFor((l) => l.evt === 'scan.deleted' && l.id === del.id);

  assert.equal((await d.cli(['config', 'set', 'scan.outbound.action', '"quarantine"'])).code, 0);
  const pc = await swaks(['--server', `${d.host}:${d.ports.mx}`, '--local-interface', PC, '--from', 'printer@example.test', '--to', 'carol@remote.test', '--h-Subject', 'from the PC', '--body', `infected PC says ${GTUBE}`]);
  assert.equal(pc.code, 0, pc.out);
  await d.waitFor((l) => l.evt === 'quarantine.add' && l.ip === PC);

  const inbound = await swaks(['--server', `${d.host}:${d.ports.mx}`, '--local-interface', OUTSIDE, '--from', 'someone@remote.test', '--to', 'alice@example.test', '--h-Subject', 'inbound', '--body', GTUBE]);
  assert.equal(inbound.code, 0, inbound.out);
  // Inbound scanning is off by default: the GTUBE mail from outside is delivered.
  await eventually('the inbound mail in alice\'s mailbox', async () => (await d.mailbox('alice')).some((m) => m.includes('Subject: inbound')));
  await eventually('every accepted message settled', async () => everyMessageSettled(d));
  assert.equal((await sink.messages()).length, 1, 'only the tagged message left');
});

test('quarantine delete and expiry; viruses can be quarantined instead of refused', async () => {
  const { d } = await setup('127.0.41.5', { virusAction: 'quarantine', quarantineDays: 0.00001 });
  const v = await sendAsAlice(d, { subject: 'invoice', attachments: [{ filename: 'eicar.com', content: EICAR }] });
  assert.ok(v.ok, v.response);
  const s = await sendAsAlice(d, { subject: 'spam', text: GTUBE });
  assert.ok(s.ok, s.response);
  let q = await quarantine(d);
  assert.deepEqual(q.map((r) => r.class).sort(), ['spam', 'virus']);
  const del = await d.cli(['quarantine', 'delete', s.id]);
  assert.equal(del.code, 0, del.stderr);
  q = await quarantine(d);
  assert.deepEqual(q.map((r) => r.id), [v.id]);
  // Past scan.quarantineDays (here under a second) the next expiry run removes it; one runs at start.
  // Waited out to the moment the record itself says it expires, not for a guessed while.
  const expires = Date.parse(q[0]!.expires);
  while (Date.now() <= expires) await new Promise((r) => setTimeout(r, expires - Date.now() + 1));
  await d.stop();
  await d.start();
  await d.waitFor((l) => l.evt === 'quarantine.expire');
  assert.deepEqual(await quarantine(d), []);
  assert.deepEqual((await readdir(join(d.dataDir, 'quarantine'))).filter((f) => f.endsWith('.eml')), []);
});

test('with real engines (spamd, clamd on loopback): verdicts combine; a clamd-only signature is refused; an engine down defers (451 4.7.1) or passes with a header', async () => {
  const [spamd, clamd] = await Promise.all([SpamdServer.start({ host: '127.0.41.20' }), ClamdServer.start({ host: '127.0.41.21' })]);
  cleanups.push(() => spamd.stop(), () => clamd.stop());
  const { d, sink } = await setup('127.0.41.6', {
    spamassassin: { enabled: true, host: spamd.host, port: spamd.port },
    clamav: { enabled: true, host: clamd.host, port: clamd.port },
    timeoutSeconds: 20,
  });
  const spam = await sendAsAlice(d, { subject: 'offer', text: `Dear friend ${GTUBE}` });
  assert.ok(spam.ok, spam.response);
  const [q] = await quarantine(d);
  assert.match(q!.summary, /builtin:GTUBE/);
  assert.match(q!.summary, /spamassassin:[^;]*GTUBE/, 'spamd saw it too');

  // Only clamd knows this pattern (test/fixtures/clamav): the verdict is clamd's.
  const v = await sendAsAlice(d, { subject: 'scan me', attachments: [{ filename: 'data.bin', content: 'xx MLSD-CLAMAV-ONLY-TEST-PATTERN-7f3a9c xx' }] });
  assert.equal(v.ok, false);
  assert.match(v.response, /^554 5\.7\.1 /);
  const line = await d.waitFor((l) => scanned(l) && l.class === 'virus');
  assert.match(String(line.findings), /clamav:Mlsd\.Test\.ClamavOnly/);

  const clean = await sendAsAlice(d, { subject: 'minutes of the meeting', text: 'Hi Bob,\n\nthe minutes are below.\n\nRegards,\nAlice' });
  assert.ok(clean.ok, clean.response);
  await sink.waitForMessages(1);

  // clamd goes away: mail is deferred, nothing is lost (the client keeps it and retries).
  await clamd.stop();
  const deferred = await sendAsAlice(d, { subject: 'while clamd is down', text: 'hello' });
  assert.equal(deferred.ok, false);
  assert.match(deferred.response, /^451 4\.7\.1 /);
  const events = JSON.parse((await d.cli(['events', 'list', '--json'])).stdout) as { kind: string; text: string }[];
  assert.ok(events.some((e) => e.kind === 'scan.engineFailure' && /clamd/.test(e.text)));
  assert.equal((await d.cli(['config', 'set', 'scan.onEngineFailure', '"pass"'])).code, 0);
  const passed = await sendAsAlice(d, { subject: 'passed unscanned', text: 'hello' });
  assert.ok(passed.ok, passed.response);
  const dumps = await sink.waitForMessages(2);
  const p = dumps.find((x) => x.message.includes('Subject: passed unscanned'))!;
  assert.match(p.message, /^X-Mlsd-Scan: incomplete \(1 engine\(s\) did not answer\)$/m);
});
