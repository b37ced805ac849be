import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveKey, encodeFrame, FrameReader, signLine, verifyLine, type Frame, type FrameHeader } from '../../src/ha/wire.js';

/** A body whose every byte value occurs, and whose bytes differ from their neighbours. */
const bytes = (n: number) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + (i >> 8)) & 0xff;
  return b;
};

const wire = (header: FrameHeader, body?: Buffer | null) => Buffer.concat(encodeFrame(header, body));

function assertFrame(got: Frame | undefined, header: FrameHeader, body: Buffer | null, msg?: string) {
  assert.ok(got, msg);
  assert.deepEqual(got.header, header, msg);
  if (body === null) assert.equal(got.body, null, msg);
  else assert.ok(got.body !== null && got.body.equals(body), msg);
}

test('frames cut at every byte boundary reassemble exactly: header only, small binary body, empty body', () => {
  const cases: { header: FrameHeader; body: Buffer | null; want: Buffer | null }[] = [
    { header: { t: 'hb', node: 'mlsd-a', epoch: 4, note: 'Grüße, 你好' }, body: null, want: null },
    { header: { t: 'msg', id: 'Q1' }, body: bytes(300), want: bytes(300) },
    // An empty body is sent as no body at all, and read back as null.
    { header: { t: 'file', path: 'x' }, body: Buffer.alloc(0), want: null },
  ];
  for (const { header, body, want } of cases) {
    const all = wire(header, body);
    for (let cut = 0; cut <= all.length; cut++) {
      const r = new FrameReader();
      const first = r.push(all.subarray(0, cut));
      const second = r.push(all.subarray(cut));
      assert.equal(first.length + second.length, 1, `${header.t} cut at ${cut}`);
      assert.equal(first.length, cut === all.length ? 1 : 0, `${header.t} cut at ${cut}`);
      assertFrame([...first, ...second][0], header, want, `${header.t} cut at ${cut}`);
    }
    // And one byte at a time.
    const r = new FrameReader();
    const got: Frame[] = [];
    for (let i = 0; i < all.length; i++) got.push(...r.push(all.subarray(i, i + 1)));
    assert.equal(got.length, 1);
    assertFrame(got[0], header, want, `${header.t} byte by byte`);
  }
});

test('a 1 MiB body reassembles exactly, fed byte by byte and cut across prefix, header and body', () => {
  const header = { t: 'msg', id: 'big' };
  const body = bytes(1024 * 1024);
  const all = wire(header, body);
  const r = new FrameReader();
  let got: Frame[] = [];
  for (let i = 0; i < all.length; i++) {
    const out = r.push(all.subarray(i, i + 1));
    if (out.length) {
      assert.equal(i, all.length - 1, 'no frame before its last byte');
      got = got.concat(out);
    }
  }
  assert.equal(got.length, 1);
  assertFrame(got[0], header, body);

  const headerEnd = all.length - body.length;
  const cuts = new Set<number>();
  for (let c = 0; c <= headerEnd + 16; c++) cuts.add(c); // every cut through prefix and header
  for (let c = all.length - 16; c <= all.length; c++) cuts.add(c); // the last bytes
  for (let c = headerEnd; c < all.length; c += 65_537) cuts.add(c); // and through the body
  for (const cut of cuts) {
    const r2 = new FrameReader();
    const frames = [...r2.push(all.subarray(0, cut)), ...r2.push(all.subarray(cut))];
    assert.equal(frames.length, 1, `cut at ${cut}`);
    assertFrame(frames[0], header, body, `cut at ${cut}`);
  }
});

test('several frames in one chunk come out in order, and a trailing partial frame waits for its rest', () => {
  const frames: [FrameHeader, Buffer | null][] = [
    [{ t: 'hb', n: 1 }, null],
    [{ t: 'msg', n: 2 }, bytes(10)],
    [{ t: 'ack', n: 3 }, Buffer.alloc(0)],
    [{ t: 'msg', n: 4 }, bytes(1)],
  ];
  const next = wire({ t: 'msg', n: 5 }, bytes(50));
  const chunk = Buffer.concat([...frames.map(([h, b]) => wire(h, b)), next.subarray(0, 20)]);
  const r = new FrameReader();
  const got = r.push(chunk);
  assert.equal(got.length, 4);
  got.forEach((f, i) => assertFrame(f, frames[i]![0], frames[i]![1]?.length ? frames[i]![1] : null, `frame ${i}`));
  const rest = r.push(next.subarray(20));
  assert.equal(rest.length, 1);
  assertFrame(rest[0], { t: 'msg', n: 5 }, bytes(50));
  assert.deepEqual(r.push(Buffer.alloc(0)), []);
});

test('a length prefix over 256 MiB throws as soon as the prefix is in, before any body arrives', () => {
  const pre = (jsonLen: number, bodyLen: number) => {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(jsonLen, 0);
    b.writeUInt32BE(bodyLen, 4);
    return b;
  };
  assert.throws(() => new FrameReader().push(pre(10, 256 * 1024 * 1024 - 9)), /over the limit/);
  assert.throws(() => new FrameReader().push(pre(0xffffffff, 0xffffffff)), /over the limit/);
  // Split prefix: the check waits for all 8 bytes, then fires.
  const r = new FrameReader();
  assert.deepEqual(r.push(pre(0xffffffff, 0).subarray(0, 5)), []);
  assert.throws(() => r.push(pre(0xffffffff, 0).subarray(5)), /over the limit/);
  // Exactly at the limit is a frame still to come, not an error.
  assert.deepEqual(new FrameReader().push(pre(10, 256 * 1024 * 1024 - 10)), []);
});

test('a frame whose header is not an object with a string type throws', () => {
  const raw = (json: string) => {
    const j = Buffer.from(json);
    const pre = Buffer.alloc(8);
    pre.writeUInt32BE(j.length, 0);
    return Buffer.concat([pre, j]);
  };
  assert.throws(() => new FrameReader().push(raw('{"n":1}')), /without a type/);
  assert.throws(() => new FrameReader().push(raw('null')), /without a type/);
  assert.throws(() => new FrameReader().push(raw('{"t":1}')), /without a type/);
  assert.throws(() => new FrameReader().push(raw('{"t":')), SyntaxError);
});

const SECRET = 'correct horse battery staple';

test('deriveKey: one 32-byte key per purpose, stable, and different per secret', () => {
  const hb = deriveKey(SECRET, 'heartbeat');
  const psk = deriveKey(SECRET, 'psk');
  assert.equal(hb.length, 32);
  assert.equal(psk.length, 32);
  assert.ok(!hb.equals(psk));
  assert.ok(hb.equals(deriveKey(SECRET, 'heartbeat')));
  assert.ok(!hb.equals(deriveKey(SECRET + '!', 'heartbeat')));
  // A line signed with the PSK-purpose key is foreign to the heartbeat key.
  assert.equal(verifyLine(signLine({ t: 'hb' }, psk), hb), null);
});

test('signLine/verifyLine: a signed line verifies to the same object, with or without its newline or a CR', () => {
  const key = deriveKey(SECRET, 'heartbeat');
  const body = { t: 'hb', node: 'mlsd-a', role: 'active', epoch: 4, note: 'a b  c', u: 'Grüße' };
  const line = signLine(body, key);
  assert.match(line, /^\{.*\} [0-9a-f]{64}\n$/);
  assert.equal(line.indexOf('\n'), line.length - 1, 'one line');
  assert.deepEqual(verifyLine(line, key), body);
  assert.deepEqual(verifyLine(line.trimEnd(), key), body);
  assert.deepEqual(verifyLine(line.trimEnd() + '\r\n', key), body);
});

test('verifyLine rejects a changed byte anywhere, a wrong key, a truncated MAC, no MAC, or a signed non-frame', () => {
  const key = deriveKey(SECRET, 'heartbeat');
  const line = signLine({ t: 'hb', node: 'mlsd-a', epoch: 4, note: 'x y' }, key);
  const text = line.trimEnd();
  for (let i = 0; i < text.length; i++) {
    const changed = text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ 1) + text.slice(i + 1) + '\n';
    assert.equal(verifyLine(changed, key), null, `byte ${i} changed: ${JSON.stringify(changed)}`);
  }
  assert.equal(verifyLine(line, deriveKey('another secret', 'heartbeat')), null);
  assert.equal(verifyLine(line, Buffer.alloc(32)), null);
  const mac = text.slice(text.lastIndexOf(' ') + 1);
  const json = text.slice(0, text.lastIndexOf(' '));
  for (const n of [63, 62, 32, 1, 0]) assert.equal(verifyLine(`${json} ${mac.slice(0, n)}\n`, key), null, `MAC cut to ${n}`);
  assert.equal(verifyLine(`${json}\n`, key), null); // no MAC, a space inside the JSON
  assert.equal(verifyLine('{"t":"hb"}\n', key), null); // no MAC, no space
  assert.equal(verifyLine('', key), null);
  // Correctly signed, but not a frame: no string type.
  assert.equal(verifyLine(signLine({ n: 1 }, key), key), null);
  assert.equal(verifyLine(signLine([1, 2], key), key), null);
});

test('verifyLine rejects a MAC with anything after its 64 hex digits', () => {
  const key = deriveKey(SECRET, 'heartbeat');
  const text = signLine({ t: 'hb' }, key).trimEnd();
  assert.equal(verifyLine(`${text}0\n`, key), null);
  assert.equal(verifyLine(`${text}zz\n`, key), null);
});
