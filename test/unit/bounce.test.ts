import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeDsn, mayBounce, readHeaderBlock, type DsnOptions, type FailedRecipient } from '../../src/delivery/bounce.js';

const ORIGINAL_HEADERS = Buffer.from(
  'Received: from client.example.test ([192.0.2.7])\r\n\tby mail.example.test (mlsd) with ESMTPSA id 0M7ABCDEF;\r\n\tSat, 01 Mar 2025 01:59:58 +0000\r\n' +
    'From: Alice <alice@example.test>\r\n' +
    'To: bob@remote.test, carol@remote.test\r\n' +
    'Subject: Quarterly report\r\n' +
    'Message-ID: <abc.123@example.test>\r\n' +
    'Date: Sat, 01 Mar 2025 01:59:57 +0000\r\n',
);

const LONG_REPLY =
  '550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient\'s email address for typos or unnecessary spaces. ' +
  'Learn more at https://support.example.invalid/mail/?p=NoSuchUser ' +
  'x'.repeat(1500) +
  ' 550 5.1.1 end of reply';

function opts(over: Partial<DsnOptions> = {}): DsnOptions {
  const recipients: FailedRecipient[] = [
    {
      recipient: 'bob@remote.test',
      status: '5.1.1',
      diagnostic: '550 5.1.1 <bob@remote.test>: Recipient address rejected: User unknown in virtual mailbox table',
      remoteMta: 'mx1.remote.test',
      action: 'failed',
      lastAttempt: new Date('2025-03-01T02:00:05Z'),
    },
    {
      recipient: 'carol@remote.test',
      status: '5.4.7',
      diagnostic: 'delivery time expired: connection to mx1.remote.test timed out for 5 days',
      action: 'failed',
    },
  ];
  return {
    reportingMta: 'mail.example.test',
    originalFrom: 'alice@example.test',
    originalId: '0M7ABCDEF12345',
    arrivalDate: new Date('2025-03-01T02:00:00Z'),
    originalHeaders: ORIGINAL_HEADERS,
    recipients,
    now: new Date('2025-03-06T02:00:00Z'),
    ...over,
  };
}

// --- a small MIME reader, strict about what it is given ---

interface Part {
  headers: Map<string, string>;
  rawHeaders: string;
  body: string;
}

function splitEntity(s: string): Part {
  const i = s.indexOf('\r\n\r\n');
  assert.ok(i >= 0, 'entity has a header/body separator');
  const rawHeaders = s.slice(0, i + 2);
  const headers = new Map<string, string>();
  for (const line of rawHeaders.replace(/\r\n[ \t]+/g, ' ').split('\r\n').filter(Boolean)) {
    const c = line.indexOf(':');
    assert.ok(c > 0, `header line: ${line}`);
    const k = line.slice(0, c).toLowerCase();
    assert.ok(!headers.has(k), `duplicate ${k}`);
    headers.set(k, line.slice(c + 1).trim());
  }
  return { headers, rawHeaders, body: s.slice(i + 4) };
}

function parseDsn(buf: Buffer) {
  const s = buf.toString('latin1');
  const top = splitEntity(s);
  const ct = top.headers.get('content-type')!;
  assert.match(ct, /^multipart\/report;/);
  assert.match(ct, /report-type=delivery-status/);
  const boundary = /boundary="([^"]+)"/.exec(ct)![1]!;
  const segments = top.body.split(`\r\n--${boundary}`);
  assert.equal(segments.at(-1), '--\r\n', 'closing delimiter ends the message');
  const parts = segments.slice(1, -1).map((seg) => {
    assert.ok(seg.startsWith('\r\n'), 'delimiter line ends in CRLF');
    return splitEntity(seg.slice(2));
  });
  return { top, boundary, parts };
}

/** Field blocks of a message/delivery-status body: per-message first, then per recipient. */
function statusBlocks(body: string): Map<string, string>[] {
  return body
    .replace(/\r\n[ \t]+/g, ' ')
    .split(/\r\n\r\n/)
    .map((b) => b.trim())
    .filter(Boolean)
    .map((b) => new Map(b.split('\r\n').map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()])));
}

function decodePart(p: Part): string {
  const cte = (p.headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  if (cte === 'base64') return Buffer.from(p.body.replace(/\r\n/g, ''), 'base64').toString('utf8');
  return p.body;
}

test('a DSN is a multipart/report with text, delivery-status and the original headers', () => {
  const dsn = composeDsn(opts());
  const { top, parts } = parseDsn(dsn);

  assert.equal(top.headers.get('from'), 'Mail Delivery System <MAILER-DAEMON@mail.example.test>');
  assert.equal(top.headers.get('to'), '<alice@example.test>');
  assert.equal(top.headers.get('subject'), 'Undelivered Mail Returned to Sender');
  assert.equal(top.headers.get('date'), 'Thu, 06 Mar 2025 02:00:00 +0000');
  assert.match(top.headers.get('message-id')!, /^<[^<>@\s]+@mail\.example\.test>$/);
  assert.equal(top.headers.get('auto-submitted'), 'auto-replied');
  assert.equal(top.headers.get('mime-version'), '1.0');

  assert.equal(parts.length, 3);
  assert.match(parts[0]!.headers.get('content-type')!, /^text\/plain; charset=utf-8$/i);
  assert.equal(parts[1]!.headers.get('content-type'), 'message/delivery-status');
  assert.equal(parts[2]!.headers.get('content-type'), 'text/rfc822-headers');

  const text = decodePart(parts[0]!);
  assert.match(text, /could not be delivered/);
  assert.match(text, /<bob@remote\.test>/);
  assert.match(text, /mx1\.remote\.test said: 550 5\.1\.1 <bob@remote\.test>: Recipient address rejected/);
  assert.match(text, /<carol@remote\.test>\r\n +delivery time expired/);
  assert.match(text, /無法送達/);
  assert.ok(text.indexOf('could not be delivered') < text.indexOf('無法送達'), 'English first');
  assert.match(text, /0M7ABCDEF12345/);

  const [msg, bob, carol, ...rest] = statusBlocks(parts[1]!.body);
  assert.equal(rest.length, 0);
  assert.equal(msg!.get('reporting-mta'), 'dns; mail.example.test');
  assert.equal(msg!.get('arrival-date'), 'Sat, 01 Mar 2025 02:00:00 +0000');

  assert.equal(bob!.get('final-recipient'), 'rfc822; bob@remote.test');
  assert.equal(bob!.get('action'), 'failed');
  assert.equal(bob!.get('status'), '5.1.1');
  assert.equal(bob!.get('remote-mta'), 'dns; mx1.remote.test');
  assert.equal(bob!.get('diagnostic-code'), 'smtp; 550 5.1.1 <bob@remote.test>: Recipient address rejected: User unknown in virtual mailbox table');
  assert.equal(bob!.get('last-attempt-date'), 'Sat, 01 Mar 2025 02:00:05 +0000');

  assert.equal(carol!.get('final-recipient'), 'rfc822; carol@remote.test');
  assert.equal(carol!.get('status'), '5.4.7');
  assert.equal(carol!.has('remote-mta'), false);
  assert.equal(carol!.get('diagnostic-code'), 'X-mlsd; delivery time expired: connection to mx1.remote.test timed out for 5 days');
  assert.equal(carol!.has('last-attempt-date'), false);

  // the original header block, byte for byte
  assert.equal(parts[2]!.body, ORIGINAL_HEADERS.toString('latin1'));
});

test('CRLF everywhere, no line over 998 octets, 7-bit, long replies folded', () => {
  const o = opts();
  o.recipients[0]!.diagnostic = LONG_REPLY;
  const dsn = composeDsn(o);
  const s = dsn.toString('latin1');
  assert.equal(s.replace(/\r\n/g, '').search(/[\r\n]/), -1, 'no bare CR or LF');
  assert.ok(s.endsWith('\r\n'));
  for (const line of s.split('\r\n')) assert.ok(Buffer.byteLength(line, 'latin1') <= 998, `line of ${line.length}`);
  for (const b of dsn) assert.ok(b > 0 && b < 0x80, '7-bit');

  const { parts } = parseDsn(dsn);
  const raw = parts[1]!.body.split('\r\n');
  const diagLines = raw.slice(raw.findIndex((l) => l.startsWith('Diagnostic-Code:')));
  assert.ok(diagLines.length > 3 && /^[ \t]/.test(diagLines[1]!), 'folded onto continuation lines');
  const unfolded = statusBlocks(parts[1]!.body)[1]!.get('diagnostic-code')!;
  // Every word comes through; only the 1500-character token gains a space where it was cut.
  assert.equal(unfolded.replace(/ /g, ''), `smtp;${LONG_REPLY}`.replace(/ /g, ''));
  assert.ok(unfolded.startsWith('smtp; 550-5.1.1 The email account that you tried to reach does not exist.'));
});

test('delayed subject and action; mixed failed and delayed counts as failed', () => {
  const delayed = opts({
    recipients: [{ recipient: 'bob@remote.test', status: '4.4.1', diagnostic: 'connect to mx1.remote.test: Connection timed out', action: 'delayed', remoteMta: 'mx1.remote.test' }],
  });
  const d = parseDsn(composeDsn(delayed));
  assert.equal(d.top.headers.get('subject'), 'Delayed Mail (still being retried)');
  const block = statusBlocks(d.parts[1]!.body)[1]!;
  assert.equal(block.get('action'), 'delayed');
  assert.equal(block.get('status'), '4.4.1');
  assert.equal(block.get('diagnostic-code'), 'X-mlsd; connect to mx1.remote.test: Connection timed out');
  const text = decodePart(d.parts[0]!);
  assert.match(text, /not been delivered yet/);
  assert.match(text, /do not need to send it again/);
  assert.match(text, /繼續重試/);
  assert.doesNotMatch(text, /could not be delivered/);

  const mixed = opts();
  mixed.recipients.push(delayed.recipients[0]!);
  const m = parseDsn(composeDsn(mixed));
  assert.equal(m.top.headers.get('subject'), 'Undelivered Mail Returned to Sender');
  assert.deepEqual(statusBlocks(m.parts[1]!.body).slice(1).map((b) => b.get('action')), ['failed', 'failed', 'delayed']);
});

test('same input, same DSN; Message-ID and boundary differ between DSNs', () => {
  assert.deepEqual(composeDsn(opts()), composeDsn(opts()));
  const a = parseDsn(composeDsn(opts()));
  const b = parseDsn(composeDsn(opts({ now: new Date('2025-03-06T02:00:01Z') })));
  const c = parseDsn(composeDsn(opts({ recipients: opts().recipients.slice(1) })));
  assert.notEqual(a.top.headers.get('message-id'), b.top.headers.get('message-id'));
  assert.notEqual(a.top.headers.get('message-id'), c.top.headers.get('message-id'));
  assert.notEqual(a.boundary, c.boundary);
});

test('empty, 8-bit and odd original headers; odd recipients and statuses', () => {
  // no original headers: the optional third part is left out
  const none = parseDsn(composeDsn(opts({ originalHeaders: Buffer.alloc(0) })));
  assert.equal(none.parts.length, 2);

  // UTF-8 headers (RFC 6532) and a 2000-character line travel base64, unchanged
  const utf8 = Buffer.concat([ORIGINAL_HEADERS, Buffer.from(`Subject: 季報 ${'長'.repeat(10)}\r\nX-Long: ${'y'.repeat(2000)}\r\n`)]);
  const eight = composeDsn(opts({ originalHeaders: utf8 }));
  for (const b of eight) assert.ok(b < 0x80);
  const p = parseDsn(eight).parts[2]!;
  assert.equal(p.headers.get('content-transfer-encoding'), 'base64');
  assert.deepEqual(Buffer.from(p.body.replace(/\r\n/g, ''), 'base64'), utf8);

  // bare-LF headers come out CRLF; a trailing empty line is not part of the block
  const lf = parseDsn(composeDsn(opts({ originalHeaders: Buffer.from('From: a@b.test\nSubject: x\n\n') }))).parts[2]!;
  assert.equal(lf.body, 'From: a@b.test\r\nSubject: x\r\n');

  // header injection through the envelope, a bad status, a non-ASCII recipient, a multi-line reply
  const odd = composeDsn(
    opts({
      originalFrom: 'alice@example.test\r\nBcc: victim@else.test',
      recipients: [
        { recipient: 'josé@remote.test', status: 'bogus', diagnostic: '550-5.1.1 first line\r\n550 5.1.1 second line', action: 'failed' },
        { recipient: 'dan@remote.test', status: '', diagnostic: '', action: 'delayed' },
      ],
    }),
  );
  const o = parseDsn(odd);
  assert.equal(o.top.headers.has('bcc'), false);
  const [, jose, dan] = statusBlocks(o.parts[1]!.body);
  assert.equal(jose!.get('final-recipient'), 'utf-8; jos\\x{E9}@remote.test');
  assert.equal(jose!.get('status'), '5.0.0');
  assert.equal(jose!.get('diagnostic-code'), 'smtp; 550-5.1.1 first line 550 5.1.1 second line');
  assert.equal(dan!.get('status'), '4.0.0');
  assert.equal(dan!.has('diagnostic-code'), false);
  assert.match(decodePart(o.parts[0]!), /<josé@remote\.test>/);
});

test('mayBounce: never for a bounce, yes for ordinary and auto-generated mail', () => {
  const plain = Buffer.from('From: a@example.test\r\nSubject: hi\r\nContent-Type: text/plain\r\n');
  assert.equal(mayBounce('alice@example.test', plain), true);
  assert.equal(mayBounce('alice@example.test', Buffer.alloc(0)), true);
  assert.equal(mayBounce('', plain), false);
  assert.equal(mayBounce('<>', plain), false);
  assert.equal(mayBounce('  ', plain), false);
  assert.equal(mayBounce('MAILER-DAEMON@remote.test', plain), false);
  assert.equal(mayBounce('<mailer-daemon@remote.test>', plain), false);
  assert.equal(mayBounce('Mailer-Daemon', plain), false);
  assert.equal(mayBounce('mailer-daemon-fan@remote.test', plain), true);

  const report = (ct: string) => Buffer.from(`From: MAILER-DAEMON@x.test\r\nSubject: Undelivered\r\n${ct}\r\n`);
  assert.equal(mayBounce('bounces@x.test', report('Content-Type: multipart/report; report-type=delivery-status; boundary="b"')), false);
  assert.equal(mayBounce('bounces@x.test', report('content-type: Multipart/Report;\r\n\tboundary="b";\r\n\treport-type="Delivery-Status"')), false);
  assert.equal(mayBounce('bounces@x.test', report('Content-Type: multipart/report; report-type=global-delivery-status; boundary=b')), false);
  // our own DSN, should it ever come back with a sender
  assert.equal(mayBounce('x@y.test', readTop(composeDsn(opts()))), false);
  // other reports and auto-generated mail with a real sender are bounced to that sender
  assert.equal(mayBounce('mdn@x.test', report('Content-Type: multipart/report; report-type=disposition-notification; boundary=b')), true);
  assert.equal(mayBounce('mlsd@mail.example.test', Buffer.from('From: mlsd@mail.example.test\r\nAuto-Submitted: auto-generated\r\n')), true);
  assert.equal(mayBounce('list-bounces@lists.test', Buffer.from('Precedence: list\r\nAuto-Submitted: auto-generated\r\n')), true);
});

function readTop(buf: Buffer): Buffer {
  const s = buf.toString('latin1');
  return Buffer.from(s.slice(0, s.indexOf('\r\n\r\n') + 2), 'latin1');
}

test('readHeaderBlock: header only, from a large file, LF files, no body, cap', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-bounce-'));
  try {
    // a 200 MiB file (sparse: the body is never written, and must never be read)
    const big = join(dir, 'big.eml');
    await writeFile(big, Buffer.concat([ORIGINAL_HEADERS, Buffer.from('\r\nbody starts here\r\n')]));
    const fh = await open(big, 'r+');
    await fh.truncate(200 * 1024 * 1024);
    await fh.close();
    const before = process.memoryUsage().arrayBuffers;
    assert.deepEqual(await readHeaderBlock(big), ORIGINAL_HEADERS);
    assert.ok(process.memoryUsage().arrayBuffers - before < 16 * 1024 * 1024);

    const lf = join(dir, 'lf.eml');
    await writeFile(lf, 'From: a@b.test\nSubject: x\n\nbody\n\nmore\n');
    assert.equal((await readHeaderBlock(lf)).toString(), 'From: a@b.test\nSubject: x\n');

    const noBody = join(dir, 'nobody.eml');
    await writeFile(noBody, 'From: a@b.test\r\nSubject: x\r\n');
    assert.equal((await readHeaderBlock(noBody)).toString(), 'From: a@b.test\r\nSubject: x\r\n');

    const empty = join(dir, 'empty.eml');
    await writeFile(empty, '');
    assert.equal((await readHeaderBlock(empty)).length, 0);
    const noHeaders = join(dir, 'noheaders.eml');
    await writeFile(noHeaders, '\r\nbody only\r\n');
    assert.equal((await readHeaderBlock(noHeaders)).length, 0);

    // the empty line split across read pieces (16 KiB) is still found
    const split = join(dir, 'split.eml');
    const head = `X-A: 1\r\nX-Filler: ${'f'.repeat(16 * 1024 - 1 - 8 - 12)}\r\n`; // 16 KiB - 1: the empty line straddles the pieces
    assert.equal(head.length, 16 * 1024 - 1);
    await writeFile(split, `${head}\r\n${'b'.repeat(100000)}`);
    assert.equal((await readHeaderBlock(split)).toString(), head);

    // over the cap: cut after the last whole line within it
    const huge = join(dir, 'huge.eml');
    const lines = Array.from({ length: 3000 }, (_, i) => `X-Line-${i}: ${'v'.repeat(40)}\r\n`).join('');
    await writeFile(huge, `${lines}\r\nbody`);
    const capped = await readHeaderBlock(huge, 10000);
    assert.ok(capped.length <= 10000 && capped.length > 9900);
    assert.ok(capped.toString().endsWith('\r\n'));
    assert.ok(lines.startsWith(capped.toString()));
    // a block ending exactly at the cap is whole
    const exact = join(dir, 'exact.eml');
    await writeFile(exact, `${'X: y\r\n'.repeat(10)}\r\nbody`);
    assert.equal((await readHeaderBlock(exact, 60)).toString(), 'X: y\r\n'.repeat(10));

    await assert.rejects(readHeaderBlock(join(dir, 'missing.eml')), { code: 'ENOENT' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
