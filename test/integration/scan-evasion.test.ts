import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon, freePort, eventually } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { SmtpSink } from '../helpers/smtp-sink.js';
import type { QuarantineRecord } from '../../src/scan/quarantine.js';
import { EICAR, buildMail, fakePe, zipOf, type EvasiveMail, type HeaderForm, type Wrap } from '../helpers/evasive-mail.js';

/**
 * Issue 12, finding 5: a test virus or a program, in the obsolete header forms of RFC 5322 §4
 * and in nested encodings, sent over real SMTP. From an authenticated local sender to an
 * outside address (the smarthost is an smtp-sink on loopback, so what leaves is seen), and from
 * outside on the MX port with inbound scanning on: every one is refused or quarantined, none
 * leaves or reaches a mailbox. Addresses 127.0.103.x: .1/.4/.5 mlsd, .2 an outside server,
 * .3 alice's PC, .9 the smarthost.
 */
const OUTSIDE = '127.0.103.2';
const ALICE_PC = '127.0.103.3';
const SINK = '127.0.103.9';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const plain: HeaderForm = { nameCase: 0, beforeColon: '', fold: 'none' };
const spaced: HeaderForm = { nameCase: 0, beforeColon: ' ', fold: 'none' };
const b64 = (form: HeaderForm = plain): Wrap => ({ kind: 'attach', encoding: 'base64', form });
const mail = (topForm: HeaderForm, wrap: Wrap, over: Partial<EvasiveMail> = {}): Omit<EvasiveMail, 'payload'> => ({ wrap, eol: '\r\n', decoyType: false, topForm, quoteBoundary: true, ...over });

/** Each form names what it tries; the payload (EICAR, or a PE program named .dat) goes into each. */
const FORMS: [string, Omit<EvasiveMail, 'payload'>][] = [
  ['space before the colon (the form of the issue)', mail(spaced, b64())],
  ['tab before the colon', mail({ ...plain, beforeColon: '\t' }, b64())],
  ['name folded before the colon', mail({ ...plain, fold: 'beforeColon' }, b64())],
  ['value folded, odd case', mail({ nameCase: 3, beforeColon: '', fold: 'value' }, b64())],
  ['upper case, space, unquoted boundary', mail({ nameCase: 2, beforeColon: ' ', fold: 'none' }, b64(spaced), { quoteBoundary: false })],
  ['a text/plain Content-Type before the real one', mail(plain, b64(), { decoyType: true })],
  ['nested multipart, spaced headers inside', mail(spaced, { kind: 'multipart', subtype: 'alternative', form: spaced, quoteBoundary: false, inner: b64(spaced) })],
  ['base64 inside a forwarded message in quoted-printable inside a multipart', mail(spaced, { kind: 'rfc822', encoding: 'quoted-printable', form: spaced, inner: b64() })],
  ['a zip inside base64, tab before the colon', mail({ ...plain, beforeColon: '\t' }, { kind: 'zip', form: spaced })],
  ['single part, spaced Content-Type and Content-Transfer-Encoding', mail(plain, { kind: 'single', form: spaced })],
  ['a file uuencoded in a plain-text message', mail(plain, { kind: 'uuencode', form: plain })],
  ['a file uuencoded in a plain-text part of a multipart', mail(spaced, { kind: 'multipart', subtype: 'mixed', form: plain, quoteBoundary: true, inner: { kind: 'uuencode', form: plain } })],
  ['quoted-printable attachment, spaced', mail(spaced, { kind: 'attach', encoding: 'quoted-printable', form: spaced })],
  [
    'four forwarded messages deep',
    mail(spaced, { kind: 'rfc822', encoding: 'base64', form: plain, inner: { kind: 'rfc822', encoding: 'base64', form: plain, inner: { kind: 'rfc822', encoding: '7bit', form: plain, inner: { kind: 'rfc822', encoding: 'base64', form: plain, inner: b64() } } } }),
  ],
];

async function setup(host: string, scan: Record<string, unknown>) {
  const sinkPort = await freePort(SINK);
  const sink = await SmtpSink.start({ host: SINK, port: sinkPort, dumpDir: true });
  cleanups.push(() => sink.stop());
  const d = await TestDaemon.create({
    host,
    config: {
      relay: { allowIps: [], allowRecipientDomains: [], allowAuthenticated: true },
      routing: { mode: 'smarthost', sourceAddress: host, smarthost: { host: SINK, port: sinkPort, tls: 'none' } },
      scan,
    },
  });
  cleanups.push(() => d.cleanup());
  await d.start();
  await d.addUser('alice@example.test', 'alice-password-1');
  await d.addUser('carol@example.test', 'carol-password-1');
  return { d, sink };
}

/** One whole transaction; the message dot-stuffed as a client must. Returns the final reply. */
async function send(d: TestDaemon, opts: { submission: boolean; from: string; to: string; message: Buffer }): Promise<string> {
  const c = await RawSmtp.open(d.host, opts.submission ? d.ports.submission : d.ports.mx, opts.submission ? ALICE_PC : OUTSIDE);
  try {
    assert.match(await c.reply(), /^220 /);
    assert.match(await c.cmd('EHLO client.test'), /^250[ -]/);
    if (opts.submission) {
      await c.starttls();
      assert.match(await c.cmd('EHLO client.test'), /^250[ -]/);
      assert.match(await c.cmd(`AUTH PLAIN ${Buffer.from('\0alice@example.test\0alice-password-1').toString('base64')}`), /^235 /);
    }
    assert.match(await c.cmd(`MAIL FROM:<${opts.from}>`), /^250 /);
    assert.match(await c.cmd(`RCPT TO:<${opts.to}>`), /^250 /);
    assert.match(await c.cmd('DATA'), /^354 /);
    // SMTP carries CRLF lines: the LF-only forms are the property test's (test/unit/scan-builtin-fuzz).
    const stuffed = opts.message.toString('latin1').replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..').replace(/(\r\n)?$/, '\r\n');
    c.writeRaw(Buffer.from(`${stuffed}.\r\n`, 'latin1'));
    const r = await c.reply(60_000);
    await c.cmd('QUIT').catch(() => '');
    return r;
  } finally {
    c.close();
  }
}

const zipped = { eicar: await zipOf('notes.txt', EICAR), exe: await zipOf('report.dat', fakePe()) };
const cases = FORMS.flatMap(([name, m]) => (['eicar', 'exe'] as const).map((payload) => ({ name: `${name}, ${payload}`, m: { ...m, payload } })));
const carries = (raw: string) => raw.includes(EICAR.toString('latin1')) || raw.includes(EICAR.toString('base64').slice(0, 40)) || raw.includes(fakePe().toString('base64').slice(0, 40));

test('outbound from an authenticated local sender: every evasive form of EICAR or a program is refused (554 5.7.1) and never reaches the outside', async () => {
  const { d, sink } = await setup('127.0.103.1', {});
  const delivered: string[] = [];
  for (const c of cases) {
    const r = await send(d, { submission: true, from: 'alice@example.test', to: 'bob@remote.test', message: buildMail(c.m, zipped[c.m.payload]) });
    if (!/^554 5\.7\.1 /.test(r)) delivered.push(`${c.name}: ${r}`);
  }
  assert.deepEqual(delivered, [], 'these forms were not refused');
  // A clean message behind them proves the smarthost path works: it is the only one that leaves.
  const clean = await send(d, { submission: true, from: 'alice@example.test', to: 'bob@remote.test', message: Buffer.from('From: <alice@example.test>\r\nTo: <bob@remote.test>\r\nSubject: clean\r\n\r\nJust text.\r\n') });
  assert.match(clean, /^250 /);
  const dumps = await sink.waitForMessages(1);
  await eventually('the queue done', async () => d.logs.some((l) => l.evt === 'queue.done'));
  assert.equal((await sink.messages()).length, 1);
  assert.match(dumps[0]!.message, /Subject: clean/);
  assert.equal(d.logs.filter((l) => l.evt === 'scan.result' && l.class === 'virus').length, cases.length);
});

test('with scan.virusAction quarantine: every evasive form is accepted into the quarantine, none leaves', async () => {
  const { d, sink } = await setup('127.0.103.4', { virusAction: 'quarantine' });
  const ids: string[] = [];
  for (const c of cases) {
    const r = await send(d, { submission: true, from: 'alice@example.test', to: 'bob@remote.test', message: buildMail(c.m, zipped[c.m.payload]) });
    assert.match(r, /^250 /, c.name);
    ids.push(/queued as (\w+)/.exec(r)?.[1] ?? r);
  }
  const q = await eventually('every message quarantined', async () => {
    const r = await d.cli(['quarantine', 'list', '--json']);
    const list = JSON.parse(r.stdout) as QuarantineRecord[];
    return list.length >= cases.length && list;
  });
  assert.deepEqual(q.map((r) => r.id).sort(), [...ids].sort());
  assert.ok(q.every((r) => r.class === 'virus'), JSON.stringify(q.map((r) => r.summary)));
  assert.equal(d.logs.filter((l) => l.evt === 'queue.add').length, 0, 'nothing was queued for the outside');
  assert.equal((await sink.messages()).filter((m) => carries(m.toString('latin1'))).length, 0);
});

test('inbound on the MX port with scan.inbound.enabled: every evasive form is refused, no mailbox gets one; off (the default) inbound mail is not scanned at all', async () => {
  const { d } = await setup('127.0.103.5', { inbound: { enabled: true } });
  const delivered: string[] = [];
  for (const c of cases) {
    const r = await send(d, { submission: false, from: 'someone@remote.test', to: 'carol@example.test', message: buildMail(c.m, zipped[c.m.payload], 'someone@remote.test', 'carol@example.test') });
    if (!/^554 5\.7\.1 /.test(r)) delivered.push(`${c.name}: ${r}`);
  }
  assert.deepEqual(delivered, [], 'these forms were not refused');
  assert.deepEqual((await d.mailbox('carol')).filter(carries), []);

  // The default, as the README says: the built-in layer does not run on mail from outside.
  assert.equal((await d.cli(['config', 'set', 'scan.inbound.enabled', 'false'])).code, 0);
  const plainEicar = buildMail({ ...FORMS[0]![1], payload: 'eicar' }, zipped.eicar, 'someone@remote.test', 'carol@example.test');
  assert.match(await send(d, { submission: false, from: 'someone@remote.test', to: 'carol@example.test', message: plainEicar }), /^250 /);
  await eventually('the unscanned inbound mail in carol\'s mailbox', async () => (await d.mailbox('carol')).some(carries));
});
