import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { normalizeAddress, splitAddress } from '../../src/policy/address.js';
import { parseRecipient } from '../../src/policy/recipient.js';
import { HeaderCollector } from '../../src/smtp/headers.js';

/**
 * Issue 12, "also required": property tests of the envelope address parser and the streaming
 * header collector, a bounded number of cases from a fixed seed (printed with fast-check's
 * report on failure; MLSD_FUZZ_SEED / MLSD_FUZZ_RUNS replay or widen a run). They assert what
 * must hold whatever the parsers learn later (IDN, SMTPUTF8): no throw, idempotence, and that
 * an accepted address can never carry something another MTA would route by.
 */
const SEED = Number(process.env.MLSD_FUZZ_SEED ?? 20261204);
const RUNS = Number(process.env.MLSD_FUZZ_RUNS ?? 2000);
const params = { seed: SEED, numRuns: RUNS } as const;

// --- addresses ------------------------------------------------------------------------

/** Characters an address parser must stay sane on: atext, the specials, controls, 8-bit, U-labels. */
const ADDRESS_CHARS = [...'abcXYZ019.-_+=!#$%&\'*/?^`{|}~', '@', '@', '.', '"', '\\', '[', ']', '(', ')', '<', '>', ',', ';', ':', ' ', '\t', '\r', '\n', '\0', '\x7f', 'é', 'ß', '台', '灣', '\u202e', '\uff0e', '\ud800'];
const addressLike = fc.oneof(
  fc.array(fc.constantFrom(...ADDRESS_CHARS), { maxLength: 40 }).map((a) => a.join('')),
  fc.emailAddress(),
  fc.tuple(fc.array(fc.constantFrom(...ADDRESS_CHARS), { maxLength: 10 }), fc.domain()).map(([l, d]) => `${l.join('')}@${d}`),
  fc.tuple(fc.emailAddress(), fc.constantFrom('.', '..', ' ', '\r\n', '@x', '>', '\0', '.xn--kpry57d', '@[127.0.0.1]')).map(([a, s]) => a + s),
  fc.string({ unit: 'binary', maxLength: 80 }),
);

/** What must never be inside an accepted envelope address: it would be read otherwise elsewhere. */
const NEVER_IN_ADDRESS = /[\s\x00-\x1f\x7f"\\()<>,;:[\]]/;

test('addresses: no parser throws, and an accepted address is one plain local@domain', () => {
  fc.assert(
    fc.property(addressLike, (raw) => {
      const n = normalizeAddress(raw);
      const r = parseRecipient(raw, 'example.test');
      if (n !== null) assert.equal(normalizeAddress(n), n, 'normalizing twice changes nothing');
      const parts = n === null ? null : splitAddress(n);
      for (const p of [parts, r === null ? null : splitAddress(r)]) {
        if (!p) continue;
        assert.ok(p.local.length > 0 && p.local.length <= 64, `local part ${JSON.stringify(p.local)}`);
        assert.ok(!p.local.includes('@') && !p.domain.includes('@'), JSON.stringify(p));
        assert.ok(!NEVER_IN_ADDRESS.test(p.local) && !NEVER_IN_ADDRESS.test(p.domain), `unsafe characters accepted: ${JSON.stringify(p)} (seed ${SEED})`);
        assert.ok(!p.domain.startsWith('.') && !p.domain.endsWith('.') && !p.domain.includes('..'), `domain ${JSON.stringify(p.domain)}`);
        // Parsing what it gave back gives the same: one normal form.
        assert.deepEqual(splitAddress(`${p.local}@${p.domain}`), p);
      }
      if (r !== null) assert.equal(parseRecipient(r, 'example.test'), r, 'a parsed recipient parses to itself');
    }),
    params,
  );
});

test('addresses: ASCII case does not change what is accepted, nor its normal form', () => {
  fc.assert(
    fc.property(fc.oneof(fc.emailAddress(), fc.string({ unit: fc.constantFrom(...'aBc.@-_+xN'), maxLength: 30 })), (raw) => {
      assert.equal(parseRecipient(raw.toUpperCase(), 'example.test'), parseRecipient(raw.toLowerCase(), 'example.test'));
    }),
    params,
  );
});

test('addresses: the hostile forms are refused', () => {
  for (const raw of [
    '"a@b"@example.test', // quoted local part with an @
    'alice@[127.0.0.1]', // address literal
    'alice@example.test.', // trailing dot
    'alice@@example.test',
    '@relay.test:alice@example.test', // source route
    'alice@example.test\r\nRCPT TO:<x@evil.test>',
    'alice\0@example.test',
    'al ice@example.test',
    'alice@exa mple.test',
    '.alice@example.test',
    'alice..b@example.test',
    '@example.test',
    'alice@',
    `${'a'.repeat(65)}@example.test`,
    'alice@example.test>',
    '<alice@example.test>',
  ]) {
    assert.equal(parseRecipient(raw, 'example.test'), null, JSON.stringify(raw));
    const n = normalizeAddress(raw);
    assert.equal(n === null ? null : splitAddress(n), null, JSON.stringify(raw));
  }
});

// --- the header collector --------------------------------------------------------------

const headerLine = fc.oneof(
  fc.constantFrom(
    'From: Alice <alice@example.test>',
    'from:bob@remote.test',
    'FROM : "Mallory, CEO" <ceo@example.test>, eve@evil.test',
    'From:\r\n\tfolded@example.test',
    'From:\n (comment) <lf@example.test>',
    'FROM\t: tab@example.test',
    'From\r\n : folded-before-colon@example.test',
    'Delivered-To: jörg@example.test',
    'Subject: =?utf-8?b?w6k=?=',
    'Subject: héllo 台灣',
    'Received: from a by b; Fri, 4 Dec 2026 10:00:00 +0000',
    'Received:\r\n\tfrom folded',
    'To: undisclosed-recipients:;',
    ' leading continuation',
    'no colon at all',
    'X-Bare-CR: a\rFrom: hidden@example.test',
  ),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: fc.constantFrom(...'From: <@>\r\n\t ,"x'), maxLength: 40 }),
);
const headerBlock = fc
  .tuple(fc.array(headerLine, { maxLength: 12 }), fc.constantFrom('\r\n', '\n'), fc.constantFrom('\r\n\r\n', '\n\n', '\r\n', ''), fc.string({ maxLength: 40 }))
  .map(([lines, eol, end, body]) => Buffer.from(lines.join(eol) + end + body, 'utf8'));

/** The same bytes cut at the given points (sorted, deduplicated, within the buffer). */
function cut(b: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (b.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...at, b.length]) {
    out.push(b.subarray(prev, p));
    prev = p;
  }
  return out;
}

function collect(chunks: Buffer[]) {
  const h = new HeaderCollector();
  for (const c of chunks) h.push(c);
  return {
    from: h.fields('from'),
    fromAddresses: h.fromAddresses(),
    fromFields: h.countFields('from'),
    subject: h.fields('subject'),
    received: h.fields('received'),
    deliveredTo: h.deliveredTo(),
    headerTooLong: h.headerTooLong,
  };
}

test('header collector: any split of any header bytes gives what the unsplit bytes give, and never throws', () => {
  fc.assert(
    fc.property(fc.oneof(headerBlock, fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a))), fc.array(fc.nat(), { maxLength: 8 }), (bytes, points) => {
      assert.deepEqual(collect(cut(bytes, points)), collect([bytes]), `seed ${SEED}: ${JSON.stringify(bytes.toString('latin1'))} cut at ${JSON.stringify(points)}`);
      // One byte at a time is the worst split there is.
      assert.deepEqual(collect([...bytes].map((b) => Buffer.from([b]))), collect([bytes]));
    }),
    params,
  );
});

test('header collector: a header block past its cap reads the same however it arrives', () => {
  // 300 KiB of header lines with a From at 270 KiB, then the end of the header block.
  const filler = Buffer.from(`X-Pad: ${'p'.repeat(1000)}\r\n`.repeat(270));
  const msg = Buffer.concat([filler, Buffer.from('From: late@example.test\r\n'), Buffer.from(`X-Pad: ${'q'.repeat(1000)}\r\n`.repeat(30)), Buffer.from('\r\nbody\r\n')]);
  const whole = collect([msg]);
  for (const at of [1, 64 * 1024, 200 * 1024, 260 * 1024, 290 * 1024]) assert.deepEqual(collect(cut(msg, [at])), whole, `cut at ${at}`);
  assert.equal(whole.headerTooLong, true);
});
