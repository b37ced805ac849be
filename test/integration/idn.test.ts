import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon, freePort, eventually, swaks, type LogLine } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { PostfixPeer } from '../helpers/postfix.js';

/**
 * Internationalised mail (issue 12, finding 4): IDN domains in A-labels and U-labels are
 * one domain everywhere (senders, recipients, local and relay domains, aliases, accounts),
 * and SMTPUTF8 addresses (RFC 6531) are taken only when the client asks for them, kept,
 * delivered, and relayed only to a server that offers SMTPUTF8 (5.6.7 bounce otherwise).
 * Addresses: 127.0.102.x. .1 mlsd, .2 an outside client, .3 a PC in relay.allowIps,
 * .25 Postfix with smtputf8_enable = yes, .26 Postfix with smtputf8_enable = no.
 */
const HOST = '127.0.102.1';
const OUTSIDE = '127.0.102.2';
const PC = '127.0.102.3';
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

// 例子.測試 and 台灣.台灣 in A-labels.
const EXAMPLE_IDN = 'xn--fsqu00a.xn--g6w251d';
const TAIWAN = 'xn--kpry57d.xn--kpry57d';
// 夥伴.test, a partner domain anyone may relay to.
const PARTNER = 'xn--xpq25v.test';

async function daemon(config: Record<string, unknown>): Promise<TestDaemon> {
  const d = await TestDaemon.create({
    host: HOST,
    config: {
      relay: { allowIps: [PC], allowRecipientDomains: [], allowAuthenticated: true },
      delivery: { retryBaseSeconds: 1, retryMaxSeconds: 2 },
      smtp: { maxBadCommands: 100 },
      ...config,
    },
  });
  cleanups.push(() => d.cleanup());
  await d.start();
  return d;
}

async function session(d: TestDaemon, from: string): Promise<RawSmtp> {
  const c = await RawSmtp.open(d.host, d.ports.mx, from);
  assert.match(await c.reply(), /^220 /);
  const ehlo = await c.cmd('EHLO client.test');
  assert.match(ehlo, /^250/);
  return c;
}

async function cli(d: TestDaemon, args: string[], stdin?: string) {
  const r = await d.cli(args, stdin);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const delivered = (id: string) => (l: LogLine) => l.evt === 'delivery.attempt' && l.id === id && l.result === 'delivered';
const queuedId = (reply: string) => /queued as (\w+)/.exec(reply)?.[1] ?? assert.fail(`not queued: ${reply}`);

test('IDN: the reported case, MAIL FROM:<someone@xn--kpry57d.xn--kpry57d> (台灣.台灣), is accepted and kept in A-labels', async () => {
  const d = await daemon({});
  await cli(d, ['user', 'add', 'bob@example.test', '--password-stdin'], 'password-1\n');
  const c = await session(d, OUTSIDE);
  assert.match(await c.cmd(`MAIL FROM:<someone@${TAIWAN}>`), /^250 /);
  assert.match(await c.cmd('RCPT TO:<bob@example.test>'), /^250 /);
  const id = queuedId(await c.data('Subject: from taiwan\r\n\r\nhello\r\n'));
  c.close();
  assert.equal((await d.waitFor((l) => l.evt === 'smtp.accept' && l.id === id)).from, `someone@${TAIWAN}`);
});

test('IDN: an A-label sender is accepted; U-label and A-label recipients of a local domain configured in the other form reach one Maildir', async () => {
  // The local domain is configured in U-labels; the account is made in A-labels.
  const d = await daemon({ domains: ['example.test', '例子.測試'] });
  assert.deepEqual(JSON.parse(await cli(d, ['config', 'get', 'domains'])), ['example.test', EXAMPLE_IDN]);
  assert.match(await cli(d, ['user', 'add', `bob@${EXAMPLE_IDN.toUpperCase()}`, '--password-stdin'], 'password-1\n'), /added bob@xn--fsqu00a\.xn--g6w251d \(bob@例子\.測試\)/);

  const c = await session(d, OUTSIDE);
  // The reported problem: 台灣.台灣 in A-labels got 501 5.1.7.
  assert.match(await c.cmd(`MAIL FROM:<someone@${TAIWAN}>`), /^250 /);
  assert.match(await c.cmd('RCPT TO:<bob@例子.測試>'), /^250 /);
  assert.match(await c.cmd(`RCPT TO:<Bob@${EXAMPLE_IDN.toUpperCase()}>`), /^250 /);
  assert.match(await c.cmd(`RCPT TO:<nobody@${EXAMPLE_IDN}>`), /^550 5\.1\.1 /);
  const id = queuedId(await c.data('Subject: idn\r\n\r\nhello\r\n'));
  c.close();

  // Both spellings are one recipient: one copy, in the A-label Maildir.
  const accepted = await d.waitFor((l) => l.evt === 'smtp.accept' && l.id === id);
  assert.deepEqual(accepted.rcpt, [`bob@${EXAMPLE_IDN}`]);
  assert.equal(accepted.from, `someone@${TAIWAN}`);
  const box = await eventually('delivered to bob', async () => {
    const m = await d.mailbox('bob', EXAMPLE_IDN);
    return m.length ? m : undefined;
  });
  assert.equal(box.length, 1);
  assert.match(box[0]!, /Subject: idn/);

  // The DKIM record of the domain, asked for in U-labels, is the A-label name's.
  const rec = JSON.parse(await cli(d, ['dkim', 'show', '例子.測試', '--json'])) as { name: string };
  assert.equal(rec.name, `mlsd._domainkey.${EXAMPLE_IDN}`);
});

test('IDN: an alias and a relay domain given in U-labels, delivered to a real Postfix', async () => {
  const port = await freePort('127.0.102.25');
  const pf = await PostfixPeer.start({ host: '127.0.102.25', port, domains: [PARTNER] });
  cleanups.push(() => pf.stop());
  const d = await daemon({
    domains: ['example.test', EXAMPLE_IDN],
    relay: { allowIps: [PC], allowRecipientDomains: ['夥伴.test'], allowAuthenticated: true },
    // A per-domain route keyed in U-labels too.
    routing: { sourceAddress: HOST, domains: { '夥伴.TEST': { host: '127.0.102.25', port, tls: 'none' } } },
  });
  assert.deepEqual(JSON.parse(await cli(d, ['config', 'get', 'relay.allowRecipientDomains'])), [PARTNER]);
  await cli(d, ['user', 'add', 'bob@例子.測試', '--password-stdin'], 'password-1\n');
  assert.match(await cli(d, ['alias', 'add', 'info@例子.測試', '--to', `bob@${EXAMPLE_IDN},sales@夥伴.test`]), /alias info@xn--fsqu00a\.xn--g6w251d \(info@例子\.測試\) -> bob@xn--fsqu00a\.xn--g6w251d/);

  const c = await session(d, OUTSIDE);
  assert.match(await c.cmd('MAIL FROM:<someone@台灣.台灣>'), /^250 /);
  assert.match(await c.cmd(`RCPT TO:<info@${EXAMPLE_IDN}>`), /^250 /);
  // The relay domain, written in A-labels by this client: anyone may relay to it...
  assert.match(await c.cmd(`RCPT TO:<partner@${PARTNER}>`), /^250 /);
  // ...and to nothing else.
  assert.match(await c.cmd('RCPT TO:<x@other.test>'), /^554 5\.7\.1 /);
  const id = queuedId(await c.data('Subject: alias and relay\r\n\r\nhello\r\n'));
  c.close();

  await eventually('bob got the alias copy', async () => ((await d.mailbox('bob', EXAMPLE_IDN)).length === 1 ? true : undefined));
  await d.waitFor(delivered(id));
  const msgs = await pf.waitForMessages(2);
  assert.deepEqual(msgs.map((m) => m.rcpt).sort(), [`partner@${PARTNER}`, `sales@${PARTNER}`]);
});

test('IDN: a login and its header From in U-labels are the A-label account; another domain in the From is still refused', async () => {
  const d = await daemon({ domains: ['example.test', EXAMPLE_IDN] });
  await cli(d, ['user', 'add', `bob@${EXAMPLE_IDN}`, '--password-stdin'], 'password-1\n');
  await cli(d, ['user', 'add', 'alice@example.test', '--password-stdin'], 'password-1\n');
  const submit = (from: string) =>
    swaks([
      '--server', `${d.host}:${d.ports.submission}`, '--local-interface', PC, '--tls',
      '--auth', 'PLAIN', '--auth-user', 'bob@例子.測試', '--auth-password', 'password-1',
      '--from', `bob@${EXAMPLE_IDN}`, '--to', 'alice@example.test', '--header', `From: ${from}`, '--h-Subject', 'idn login',
    ]);
  const ok = await submit('Bob <bob@例子.測試>');
  assert.equal(ok.code, 0, ok.out);
  const refused = await submit('Bob <bob@台灣.台灣>');
  assert.notEqual(refused.code, 0);
  assert.match(refused.out, /550 5\.7\.1 From header address rejected/);
  await eventually('alice got it', async () => ((await d.mailbox('alice')).length === 1 ? true : undefined));
});

test('SMTPUTF8: a UTF-8 local part needs the parameter (553 5.6.7); with it, delivered locally, relayed to Postfix with SMTPUTF8, bounced 5.6.7 for Postfix without', async () => {
  const yesPort = await freePort('127.0.102.25');
  const noPort = await freePort('127.0.102.26');
  const yes = await PostfixPeer.start({ host: '127.0.102.25', port: yesPort, domains: ['utf8-yes.test'], smtputf8: true });
  cleanups.push(() => yes.stop());
  const no = await PostfixPeer.start({ host: '127.0.102.26', port: noPort, domains: ['utf8-no.test'], smtputf8: false });
  cleanups.push(() => no.stop());
  const d = await daemon({
    domains: ['example.test', '例子.測試'],
    routing: {
      sourceAddress: HOST,
      domains: {
        'utf8-yes.test': { host: '127.0.102.25', port: yesPort, tls: 'none' },
        'utf8-no.test': { host: '127.0.102.26', port: noPort, tls: 'none' },
      },
    },
  });
  await cli(d, ['user', 'add', 'alice@example.test', '--password-stdin'], 'password-1\n');
  // An account with a UTF-8 local part: its Maildir is mail/<A-label domain>/<UTF-8 name>.
  await cli(d, ['user', 'add', '用戶@例子.測試', '--password-stdin'], 'password-1\n');

  const c = await session(d, PC);
  // A refused MAIL that said SMTPUTF8 does not make the next one, which did not, SMTPUTF8.
  assert.match(await c.cmd('MAIL FROM:<x@ｅｘａｍｐｌｅ.test> SMTPUTF8'), /^501 /);
  assert.match(await c.cmd('MAIL FROM:<alice@example.test>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<用戶@例子.測試>'), /^553 5\.6\.7 /);
  assert.match(await c.cmd('RSET'), /^250 /);
  // Without SMTPUTF8 on MAIL FROM: a UTF-8 sender, or a UTF-8 recipient, is refused (RFC 6531 3.5).
  assert.match(await c.cmd('MAIL FROM:<寄件者@台灣.台灣>'), /^553 5\.6\.7 /);
  assert.match(await c.cmd('MAIL FROM:<alice@example.test>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<用戶@例子.測試>'), /^553 5\.6\.7 /);
  assert.match(await c.cmd('RCPT TO:<收件人@utf8-yes.test>'), /^553 5\.6\.7 /);
  assert.match(await c.cmd('RSET'), /^250 /);

  const ehlo = await c.cmd('EHLO client.test');
  assert.match(ehlo, /^250[ -]SMTPUTF8$/m);
  assert.match(await c.cmd('MAIL FROM:<alice@example.test> SMTPUTF8'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<用戶@例子.測試>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<收件人@utf8-yes.test>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<收件人@utf8-no.test>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<ascii@utf8-no.test>'), /^250 /);
  const id = queuedId(await c.data('Subject: utf8\r\n\r\nhello\r\n'));
  c.close();

  // Local: the UTF-8 account's Maildir.
  const box = await eventually('delivered to 用戶', async () => {
    const m = await d.mailbox('用戶', EXAMPLE_IDN);
    return m.length ? m : undefined;
  });
  assert.match(box[0]!, /Subject: utf8/);
  // RFC 6531 3.7.3: the trace header says the message came in with SMTPUTF8.
  assert.match(box[0]!, /by mail\.example\.test \(mlsd\) with UTF8SMTPS? id /);

  // The Postfix that offers SMTPUTF8 takes the UTF-8 recipient.
  const [got] = await yes.waitForMessages(1);
  assert.equal(got!.rcpt, '收件人@utf8-yes.test');

  // The one that does not: the ASCII recipient still goes, the UTF-8 one bounces with 5.6.7.
  const bounced = await d.waitFor((l) => l.evt === 'delivery.attempt' && l.id === id && l.rcpt === '收件人@utf8-no.test');
  assert.equal(bounced.result, 'bounced');
  assert.match(String(bounced.reply), /^550 5\.6\.7 .*does not support SMTPUTF8/);
  const [ascii] = await no.waitForMessages(1);
  assert.equal(ascii!.rcpt, 'ascii@utf8-no.test');
  assert.equal((await no.messages()).length, 1);

  // The DSN reaches the sender, with the status and the recipient in RFC 6533 form.
  const dsn = await eventually('a DSN for alice', async () => {
    const m = (await d.mailbox('alice')).find((t) => /Undelivered Mail Returned to Sender/.test(t));
    return m;
  });
  assert.match(dsn, /Status: 5\.6\.7/);
  assert.match(dsn, /Final-Recipient: utf-8; \\x\{6536\}\\x\{4EF6\}\\x\{4EBA\}@utf8-no\.test/);
});

test('IDN hostile forms: invalid punycode, mapped forms, mixed scripts, over-long labels, bidi and invalid UTF-8 are refused; config and CLI name the problem', async () => {
  const d = await daemon({ domains: ['example.test'] });
  await cli(d, ['user', 'add', 'bob@example.test', '--password-stdin'], 'password-1\n');
  const c = await session(d, PC);
  const badSenders = [
    'x@xn--zz.test', // not punycode at all
    'x@xn--a.test', // punycode that decodes to a disallowed code point
    'x@ｅｘａｍｐｌｅ.test', // full-width letters: a mapped form, not IDNA
    'x@\u05d0a.test', // a right-to-left label that ends left-to-right (bidi rule)
    'x@a\u200db.test', // a zero-width joiner between Latin letters
    `x@${'a'.repeat(64)}.test`, // a label over 63 octets
    `x@${'台'.repeat(60)}.test`, // a U-label whose A-label is over 63 octets
  ];
  for (const s of badSenders) assert.match(await c.cmd(`MAIL FROM:<${s}> SMTPUTF8`), /^501 /, s);
  assert.match(await c.cmd('MAIL FROM:<alice@example.test> SMTPUTF8'), /^250 /);
  const badRcpts = ['a\u202eb@example.test', 'a\u3000b@example.test', `${'用'.repeat(22)}@example.test`];
  for (const r of badRcpts) assert.match(await c.cmd(`RCPT TO:<${r}>`), /^501 /, r);
  // A byte that is not UTF-8 (0xFF) in a local part.
  c.writeRaw(Buffer.concat([Buffer.from('RCPT TO:<a'), Buffer.from([0xff]), Buffer.from('b@example.test>\r\n')]));
  assert.match(await c.reply(), /^501 /);
  // Nothing of that broke the session.
  assert.match(await c.cmd('RCPT TO:<bob@example.test>'), /^250 /);
  // In the envelope, the dot-like full stops (U+3002, U+FF0E) are label separators, as IDNA
  // maps them (smtp-server does so before mlsd sees the address); the address is kept with
  // ".", so no later hop can read other labels into it. Here: the same mailbox as above.
  assert.match(await c.cmd('RCPT TO:<bob@example。test>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<bob@example．test>'), /^250 /);
  const id = queuedId(await c.data('Subject: dots\r\n\r\nhello\r\n'));
  c.close();
  assert.deepEqual((await d.waitFor((l) => l.evt === 'smtp.accept' && l.id === id)).rcpt, ['bob@example.test']);

  // Config: a bad domain is refused naming the key and the reason; a good one is stored as A-labels.
  for (const [value, why] of [
    ['例子。測試', /domains\.1: 例子。測試: contains a full stop other than "\."/],
    ['xn--zz.test', /domains\.1: xn--zz\.test: not a valid domain name/],
    ['ｅｘａｍｐｌｅ.test', /domains\.1: .*did you mean example\.test/],
  ] as const) {
    const r = await d.cli(['config', 'set', 'domains', JSON.stringify(['example.test', value])]);
    assert.notEqual(r.code, 0, value);
    assert.match(r.stderr, why);
  }
  await cli(d, ['config', 'set', 'domains', JSON.stringify(['example.test', '台灣.台灣'])]);
  assert.deepEqual(JSON.parse(await cli(d, ['config', 'get', 'domains'])), ['example.test', TAIWAN]);
  // Accounts: the same judgement.
  const r = await d.cli(['user', 'add', 'x@例子。測試', '--password-stdin'], 'password-1\n');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /contains a full stop other than "\."/);
  const a = await d.cli(['alias', 'add', `info@${TAIWAN}`, '--to', 'x@xn--zz.test']);
  assert.notEqual(a.code, 0);
  assert.match(a.stderr, /xn--zz\.test: not a valid domain name/);
});
