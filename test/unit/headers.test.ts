import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeaderCollector, receivedHeader } from '../../src/smtp/headers.js';

const collect = (chunks: string[]) => {
  const h = new HeaderCollector();
  for (const c of chunks) h.push(Buffer.from(c));
  return h;
};

test('From addresses are read from the header block only, across chunk boundaries and folding', () => {
  const h = collect(['Subject: hi\r\nFr', 'om: "Bob B" <Bob@Example.TEST>,\r\n\tceo@example.test\r\n', '\r\nFrom: body@evil.test\r\n']);
  assert.deepEqual(h.fromAddresses(), ['bob@example.test', 'ceo@example.test']);
});

test('a message with no header From yields no addresses', () => {
  assert.deepEqual(collect(['Subject: x\r\n\r\nFrom: a@b.test\r\n']).fromAddresses(), []);
  assert.deepEqual(collect(['\r\nFrom: a@b.test\r\n']).fromAddresses(), []);
});

test('Received header names client, protocol and id, and cannot be split by a hostile HELO', () => {
  const r = receivedHeader({ helo: 'pc1\r\nX-Evil: 1', clientIp: '192.0.2.1', hostname: 'mail.example.test', id: 'ABC', tls: true, auth: true, rcpt: ['bob@example.test'], date: new Date(0) });
  assert.match(r, /^Received: from pc1\?\?X-Evil:\?1 \(\[192\.0\.2\.1\]\)\r\n\tby mail\.example\.test \(mlsd\) with ESMTPSA id ABC\r\n\tfor <bob@example\.test>;\r\n\tThu, 01 Jan 1970 00:00:00 \+0000\r\n$/);
});

test('countFields and deliveredTo read obsolete spellings (space before the colon, any case) and stop at the header end', () => {
  const h = collect(['Received: a\r\n\tfolded\r\nReceived : b\r\nrEcEiVeD:c\r\nX-Received: no\r\nDelivered-To: <Fwd@Example.test>\r\nDELIVERED-TO : bob@example.test\r\n', '\r\nReceived: in the body\r\n']);
  assert.equal(h.countFields('received'), 3);
  assert.deepEqual(h.deliveredTo(), ['fwd@example.test', 'bob@example.test']);
  assert.equal(collect(['Subject: x\r\n\r\n']).countFields('received'), 0);
});

test('fromAddresses reads every From spelling RFC 5322 4.5 allows: space or tab before the colon, any case, folded', () => {
  for (const block of ['From : CEO <ceo@example.test>', 'FROM\t: ceo@example.test', 'from:ceo@example.test', 'From\r\n : ceo@example.test', 'From: "The\r\n CEO"\r\n\t<ceo@example.test>']) {
    assert.deepEqual(collect([`Subject: x\r\n${block}\r\n\r\nbody`]).fromAddresses(), ['ceo@example.test'], JSON.stringify(block));
  }
  // Not From: other fields whose name starts with From, and a From in the body.
  assert.deepEqual(collect(['From-Ish: a@b.test\r\nX-From: c@d.test\r\nResent-From: e@f.test\r\n\r\nFrom: g@h.test\r\n']).fromAddresses(), []);
});

test('fromAddresses takes the address, never a display name or comment that looks like one; a mailbox list or group gives every address', () => {
  const from = (v: string) => collect([`From: ${v}\r\n\r\n`]).fromAddresses();
  assert.deepEqual(from('"ceo@example.test" <x@remote.test>'), ['x@remote.test']);
  assert.deepEqual(from('=?utf-8?q?ceo@example.test?= <x@remote.test>'), ['x@remote.test']);
  assert.deepEqual(from('ceo@example.test <x@remote.test>'), ['x@remote.test']);
  assert.deepEqual(from('x@remote.test (ceo@example.test)'), ['x@remote.test']);
  assert.deepEqual(from('ceo@example.test, x@remote.test'), ['ceo@example.test', 'x@remote.test']);
  assert.deepEqual(from('Team: ceo@example.test, x@remote.test;'), ['ceo@example.test', 'x@remote.test']);
});

test('countFields("from") counts a second From in any spelling', () => {
  assert.equal(collect(['From: a@b.test\r\nFROM\t: c@d.test\r\n\r\n']).countFields('from'), 2);
  assert.equal(collect(['From: a@b.test\r\nSubject: x\r\n\r\nFrom: c@d.test\r\n']).countFields('from'), 1);
});

test('headerTooLong: a header block that does not end within 256 KiB, however it arrives; one that ends in time is not', () => {
  const pad = (n: number) => `X-Pad: ${'p'.repeat(1000)}\r\n`.repeat(n);
  const long = `${pad(270)}From: late@example.test\r\n\r\nbody`;
  const short = `${pad(200)}From: a@example.test\r\n\r\nbody`;
  for (const [text, want] of [[long, true], [short, false], [`${pad(300)}`, true]] as const) {
    const b = Buffer.from(text);
    for (const at of [b.length, 1, 128 * 1024, 256 * 1024 - 2, 256 * 1024 + 2]) {
      const h = new HeaderCollector();
      h.push(b.subarray(0, at));
      h.push(b.subarray(at));
      assert.equal(h.headerTooLong, want, `cut at ${at}`);
    }
  }
  // The end of header block starting exactly at the cap is within it; one byte later is not.
  const exact = (extra: number) => {
    const head = 'X: ' + 'a'.repeat(256 * 1024 - 3 + extra);
    const h = new HeaderCollector();
    for (const c of [head.slice(0, 256 * 1024), head.slice(256 * 1024) + '\r\n\r\nbody']) h.push(Buffer.from(c));
    return h.headerTooLong;
  };
  assert.equal(exact(0), false);
  assert.equal(exact(1), true);
});

test('deliveredTo reads UTF-8 header bytes as UTF-8', () => {
  const h = new HeaderCollector();
  h.push(Buffer.from('Delivered-To: Jörg@example.test\r\n\r\n', 'utf8'));
  assert.deepEqual(h.deliveredTo(), ['jörg@example.test']);
});

test('a bare-LF header line followed by a CRLF empty line ends the header block: a From in the body is not a second From, a long body is not a long header', () => {
  const h = new HeaderCollector();
  h.push(Buffer.from('From: a@remote.test\nSubject: forwarded\n\r\n'));
  h.push(Buffer.from('---- Forwarded message ----\r\nFrom: b@remote.test\r\n' + 'x'.repeat(300 * 1024) + '\r\n'));
  assert.equal(h.countFields('from'), 1);
  assert.deepEqual(h.fromAddresses(), ['a@remote.test']);
  assert.equal(h.headerTooLong, false);
});
