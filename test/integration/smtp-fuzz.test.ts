import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import fc from 'fast-check';
import { TestDaemon, eventually } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

/**
 * Issue 12, "also required": the SMTP command line fuzzed against a real daemon. Each case is
 * one session of hostile lines (random bytes, overlong lines, NULs, bare CR and LF, 8-bit,
 * pipelined garbage, MAIL and RCPT with random addresses and parameters), written at once in
 * random slices. Every line the daemon answers must be an SMTP reply (RFC 5321 4.2: a code
 * 2xx-5xx, then space or hyphen; an enhanced status code, where one is given, of the same
 * class), and after all cases the daemon is still up, printed no unhandled rejection or
 * uncaught exception, and delivers a normal message. A fixed seed (printed on failure);
 * MLSD_FUZZ_SEED / MLSD_FUZZ_SESSIONS replay or widen it. Daemon 127.0.103.20, each session
 * from its own address in 127.0.96.0/24 (no per-client limit of one session decides the next).
 */
const SEED = Number(process.env.MLSD_FUZZ_SEED ?? 20261204);
const SESSIONS = Number(process.env.MLSD_FUZZ_SESSIONS ?? 60);
const HOST = '127.0.103.20';
const CLEAN_CLIENT = '127.0.103.21';

let d: TestDaemon;
after(async () => {
  await d?.cleanup();
});

const VERBS = ['EHLO', 'HELO', 'MAIL FROM:', 'RCPT TO:', 'DATA', 'RSET', 'NOOP', 'VRFY', 'EXPN', 'HELP', 'AUTH', 'AUTH PLAIN', 'AUTH LOGIN', 'AUTH CRAM-MD5', 'BDAT', 'ETRN', 'TURN', 'XCLIENT', 'XFORWARD', 'mail from:', 'Rcpt To:', 'MAIL FROM :', 'MAIL  FROM:', 'rcpt to:', '.', ''];
const PARAMS = ['SIZE=1000', 'SIZE=99999999999999999999', 'SIZE=-1', 'SIZE=', 'BODY=8BITMIME', 'BODY=BINARYMIME', 'BODY=junk', 'SMTPUTF8', 'AUTH=<>', 'AUTH=alice@example.test', 'RET=HDRS', 'ENVID=x+2By', 'NOTIFY=SUCCESS,FAILURE', 'NOTIFY=NEVER,SUCCESS', 'ORCPT=rfc822;a@b', 'X=Y', '=', 'A=B=C', '\0', 'é'];
const ADDRESSES = ['alice@example.test', 'postmaster', 'someone@remote.test', '', '"q@x"@example.test', 'a@[127.0.0.1]', '@r.test:a@example.test', 'a@b@c', 'someone@xn--kpry57d.xn--kpry57d', 'someone@台灣.台灣', 'ü@example.test', 'a'.repeat(300) + '@example.test', `x@${'d'.repeat(300)}.test`];

const addressArb = fc.oneof(fc.constantFrom(...ADDRESSES), fc.emailAddress(), fc.string({ unit: 'binary', maxLength: 30 }));
const envelopeLine = fc
  .tuple(fc.constantFrom('MAIL FROM:', 'RCPT TO:', 'mail from:', 'RCPT TO: '), fc.boolean(), addressArb, fc.array(fc.oneof(fc.constantFrom(...PARAMS), fc.string({ maxLength: 12 })), { maxLength: 4 }))
  .map(([verb, bracket, addr, ps]) => Buffer.from(`${verb}${bracket ? `<${addr}>` : addr}${ps.length ? ' ' + ps.join(' ') : ''}\r\n`, 'utf8'));
const garbageLine = fc.oneof(
  fc.tuple(fc.constantFrom(...VERBS), fc.constantFrom('', ' ', '\t', '  '), fc.string({ unit: 'binary', maxLength: 40 })).map(([v, sep, rest]) => Buffer.from(`${v}${sep}${rest}\r\n`, 'utf8')),
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc.constantFrom('\r', '\n', '\r\r\n', '\0\r\n', 'NOOP\rNOOP\r\n', 'NOOP\nNOOP\n', 'EHLO \xff\xfe\r\n', 'HELO\0x\r\n', '\r\n\r\n\r\n').map((s) => Buffer.from(s, 'latin1')),
  fc.integer({ min: 513, max: 70_000 }).map((n) => Buffer.from(`NOOP ${'x'.repeat(n)}\r\n`)),
  fc.integer({ min: 1000, max: 20_000 }).map((n) => Buffer.alloc(n, 'A')),
);
// STARTTLS is left out: after its 220 the daemon speaks TLS, whose bytes are no reply lines.
const sessionArb = fc.record({
  lines: fc.array(fc.oneof({ weight: 2, arbitrary: envelopeLine }, { weight: 3, arbitrary: garbageLine }), { minLength: 1, maxLength: 25 }).map((ls) => ls.filter((l) => !/starttls/i.test(l.toString('latin1')))),
  slices: fc.array(fc.integer({ min: 1, max: 4096 }), { minLength: 1, maxLength: 6 }),
});

const REPLY = /^([2-5])\d\d([ -])/;
/** An enhanced status code (RFC 3463) right after the separator: class must match the reply. */
const ENHANCED = /^\d\d\d[ -](\d+\.\d+\.\d+)(?:\s|$)/;

function badReplyLines(text: string): string[] {
  const bad: string[] = [];
  for (const line of text.split('\r\n').slice(0, -1)) {
    const m = REPLY.exec(line);
    if (!m) {
      bad.push(line);
      continue;
    }
    const e = ENHANCED.exec(line)?.[1];
    if (e && !(new RegExp(`^${m[1]}\\.\\d{1,3}\\.\\d{1,3}$`).test(e))) bad.push(line);
  }
  // A last line with no CRLF: the daemon cut its own reply short.
  if (!text.endsWith('\r\n') && text !== '') bad.push(`(unterminated) ${text.slice(text.lastIndexOf('\r\n') + 2)}`);
  return bad;
}

let sessionNo = 0;

/** Writes the session in slices, then an end of DATA and QUIT; returns all it read until close. */
function runSession(s: { lines: Buffer[]; slices: number[] }): Promise<string> {
  const client = `127.0.96.${10 + (sessionNo++ % 240)}`;
  return new Promise((resolve) => {
    const sock = connect({ host: HOST, port: d.ports.mx, localAddress: client });
    const got: Buffer[] = [];
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(Buffer.concat(got).toString('latin1'));
    };
    // A session the daemon keeps open (a BDAT or DATA that swallowed the QUIT) ends here: not an error.
    const timer = setTimeout(end, 4000);
    sock.on('data', (c: Buffer) => got.push(c));
    sock.on('close', end);
    sock.on('error', end);
    // The lines go after the greeting: a client talking before it is refused outright (as Postfix's pregreet test does), which would test nothing else.
    sock.once('data', () => {
      const all = Buffer.concat([...s.lines, Buffer.from('\r\n.\r\nQUIT\r\n')]);
      let off = 0;
      let i = 0;
      const writeNext = () => {
        if (off >= all.length || sock.destroyed) return;
        const n = s.slices[i++ % s.slices.length]!;
        sock.write(all.subarray(off, off + n), () => setImmediate(writeNext));
        off += n;
      };
      writeNext();
    });
  });
}

test('SMTP command line: hostile sessions get only valid replies; the daemon stays up, with no unhandled rejection, and still delivers', { timeout: 120_000 }, async () => {
  d = await TestDaemon.create({ host: HOST, config: { relay: { allowIps: [], allowRecipientDomains: [], allowAuthenticated: true } } });
  await d.start();
  await d.addUser('alice@example.test', 'alice-password-1');

  const stats = { sessions: 0, replyLines: 0, codes: new Set<string>() };
  await fc.assert(
    fc.asyncProperty(sessionArb, async (s) => {
      const replies = await runSession(s);
      stats.sessions++;
      stats.replyLines += replies.split('\r\n').length - 1;
      for (const code of replies.match(/^\d\d\d/gm) ?? []) stats.codes.add(code);
      const bad = badReplyLines(replies);
      assert.deepEqual(bad, [], `seed ${SEED}: invalid reply lines ${JSON.stringify(bad.map((b) => b.slice(0, 200)))} to ${JSON.stringify(Buffer.concat(s.lines).toString('latin1').slice(0, 500))}`);
      assert.equal(d.proc!.exitCode, null, `seed ${SEED}: the daemon exited: ${d.stderr}`);
    }),
    { seed: SEED, numRuns: SESSIONS, endOnFailure: true },
  );

  // The sessions were answered at all (a daemon that said nothing would pass the check above).
  assert.ok(stats.replyLines >= stats.sessions * 2, JSON.stringify({ ...stats, codes: [...stats.codes] }));
  assert.ok(stats.codes.has('500') || stats.codes.has('501') || stats.codes.has('502'), `no command was refused: ${[...stats.codes].join(' ')}`);
  assert.equal(d.proc!.exitCode, null, 'the daemon is still running');
  assert.equal(d.proc!.signalCode, null);
  assert.doesNotMatch(d.stderr, /unhandled|uncaught|internal error/i);
  assert.deepEqual(d.logs.filter((l) => /unhandled|uncaught/i.test(`${String(l.evt ?? '')} ${String(l.msg ?? '')}`)), []);

  // A normal message still gets through, from a client the fuzzing never used.
  const c = await RawSmtp.open(HOST, d.ports.mx, CLEAN_CLIENT);
  assert.match(await c.reply(), /^220 /);
  assert.match(await c.cmd('EHLO clean.test'), /^250[ -]/);
  assert.match(await c.cmd('MAIL FROM:<friend@remote.test>'), /^250 /);
  assert.match(await c.cmd('RCPT TO:<alice@example.test>'), /^250 /);
  assert.match(await c.data('From: <friend@remote.test>\r\nTo: <alice@example.test>\r\nSubject: after the fuzz\r\n\r\nstill here\r\n'), /^250 /);
  c.close();
  if (process.env.MLSD_FUZZ_STATS) console.log(JSON.stringify({ ...stats, codes: [...stats.codes].sort() }));
  await eventually("the message in alice's mailbox", async () => (await d.mailbox('alice')).some((m) => m.includes('Subject: after the fuzz')));
});
