import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeaderCollector } from '../../src/smtp/headers.js';
import { loopRefusal } from '../../src/smtp/loops.js';

const headers = (text: string) => {
  const h = new HeaderCollector();
  h.push(Buffer.from(text + '\r\n\r\nbody\r\n'));
  return h;
};
const received = (n: number) => 'Received: from x by y; Thu, 1 Jan 2026 00:00:00 +0000\r\n'.repeat(n);

// Golden table: header block, recipients, max hops, the reply (or null for none).
const table: [string, string, string[], number, string | null][] = [
  ['49 Received + ours = 50, at the limit', received(49) + 'Subject: x', ['bob@example.test'], 50, null],
  ['50 Received + ours = 51', received(50) + 'Subject: x', ['bob@example.test'], 50, '554 5.4.6 Error: too many hops, mail loop?'],
  ['Delivered-To is not a hop', 'Delivered-To: a@example.test\r\n'.repeat(60) + 'Subject: x', ['bob@example.test'], 50, null],
  ['a recipient named in Delivered-To', 'Delivered-To: <FWD@example.test>\r\nSubject: x', ['bob@example.test', 'fwd@example.test'], 50, '554 5.4.6 Error: mail forwarding loop for fwd@example.test'],
  ['Delivered-To in the body only', 'Subject: x\r\n\r\nDelivered-To: fwd@example.test', ['fwd@example.test'], 50, null],
  ['a UTF-8 alias named in Delivered-To (header bytes UTF-8, NFD spelling)', 'Delivered-To: Jo\u0308rg@example.test\r\nSubject: x', ['jörg@example.test'], 50, '554 5.4.6 Error: mail forwarding loop for jörg@example.test'],
  ['a Delivered-To with the domain in U-labels', 'Delivered-To: fwd@台灣.台灣\r\nSubject: x', ['fwd@xn--kpry57d.xn--kpry57d'], 50, '554 5.4.6 Error: mail forwarding loop for fwd@xn--kpry57d.xn--kpry57d'],
  ['maxHops 1: any Received at all is one too many', received(1) + 'Subject: x', ['bob@example.test'], 1, '554 5.4.6 Error: too many hops, mail loop?'],
];

for (const [name, block, rcpt, max, want] of table) {
  test(`loopRefusal: ${name}`, () => {
    const r = loopRefusal(headers(block), rcpt, max);
    assert.equal(r ? `${r.reply.code} ${r.reply.enhanced} ${r.reply.text}` : null, want);
  });
}
