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
