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

// --- Replay of signed serial lines (issue 12, finding 10) -----------------------------------

import { mkdtemp, rm, writeFile as writeFileFs, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDb, type Db } from '../../src/store/db.js';
import { SavedHaState } from '../../src/ha/state.js';
import { SerialReplayGuard } from '../../src/ha/serial-guard.js';
import { FileDigests, formatDigest, needsResend, parseDigest } from '../../src/ha/digests.js';
import { HA_WIRE_VERSION } from '../../src/ha/wire.js';
import { ManualClock } from '../helpers/clock.js';

const silent = pino({ level: 'silent' });

/** One box's guard over its own database, as the node builds it; `restart` loads it again from that database. */
async function box(db: Db, clock: ManualClock) {
  const state = new SavedHaState(db, silent);
  await state.load();
  const guard = new SerialReplayGuard(state, clock);
  await guard.begin();
  return { state, guard };
}

/** Sends `body` signed, stamped by `from`, to `to`'s guard, as the cable does: the HMAC first, then the guard. */
function deliver(key: Buffer, line: string, to: SerialReplayGuard) {
  const msg = verifyLine(line.trimEnd(), key);
  assert.ok(msg, 'the HMAC is right');
  return to.check(msg);
}

test('serial lines: each is taken once; a recorded heartbeat or takeover played back is refused, in the same boot and after either box restarts', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-hawire-'));
  try {
    const key = deriveKey('k', 'heartbeat');
    const clock = new ManualClock();
    const dbA = await openDb(join(dir, 'a'));
    const dbB = await openDb(join(dir, 'b'));
    let a = await box(dbA, clock);
    let b = await box(dbB, clock);
    const hbA = () => signLine({ t: 'hb', node: 'a', epoch: 3, ...a.guard.stamp() }, key);
    const hbB = () => signLine({ t: 'hb', node: 'b', epoch: 3, ...b.guard.stamp() }, key);
    // Each learns the other's boot from its lines (a takeover names the receiver's boot).
    assert.equal(deliver(key, hbB(), a.guard), 'ok');
    const first = hbA();
    assert.equal(deliver(key, first, b.guard), 'ok');
    assert.equal(deliver(key, first, b.guard), 'replay', 'the same line twice');
    const takeover = signLine({ t: 'takeover', node: 'a', epoch: 3, ...a.guard.takeoverStamp() }, key);
    const later = hbA();
    assert.equal(deliver(key, later, b.guard), 'ok');
    assert.equal(deliver(key, takeover, b.guard), 'replay', 'an older line after a newer one');

    // The epoch is inside the HMAC: a line with its epoch changed does not verify.
    const forged = takeover.replace('"epoch":3', '"epoch":9');
    assert.equal(verifyLine(forged.trimEnd(), key), null);
    // So are the counter and the boot.
    assert.equal(verifyLine(takeover.replace(/"n":\d+/, '"n":999').trimEnd(), key), null);

    // b restarts (it forgets the counter it had reached): the takeover recorded "yesterday" names
    // b's previous boot, and is refused; a's live lines are still taken.
    await clock.advance(86_400_000);
    await b.state.save({}); // the saves in flight land first (a restart, not a crash)
    b = await box(dbB, clock);
    assert.equal(deliver(key, takeover, b.guard), 'replay', 'a takeover of an earlier boot of the receiver');
    assert.equal(deliver(key, hbA(), b.guard), 'ok', 'the live peer is taken after the restart');

    // a restarts: its boot goes up, so its lines are taken from n = 1 again, and every line of its
    // earlier boot is refused, also by a b that restarts once more (the peer's boot is saved).
    const oldBootLine = hbA();
    a = await box(dbA, clock);
    assert.equal(deliver(key, hbA(), b.guard), 'ok', "the restarted peer's first line");
    assert.equal(deliver(key, oldBootLine, b.guard), 'replay');
    await b.state.save({});
    b = await box(dbB, clock);
    assert.equal(deliver(key, oldBootLine, b.guard), 'replay', 'refused after the receiver restarts too');
    assert.equal(deliver(key, hbA(), b.guard), 'ok');

    // A fresh takeover, naming b's current boot, is taken once.
    assert.equal(deliver(key, hbB(), a.guard), 'ok');
    const fresh = signLine({ t: 'takeover', node: 'a', epoch: 3, ...a.guard.takeoverStamp() }, key);
    assert.equal(deliver(key, fresh, b.guard), 'ok');
    assert.equal(deliver(key, fresh, b.guard), 'replay');
    await dbA.close();
    await dbB.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('serial lines: a box whose saved state is lost and whose clock is behind is not refused for ever; it starts above what the peer says over the network', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-hawire-'));
  try {
    const key = deriveKey('k', 'heartbeat');
    const dbB = await openDb(join(dir, 'b'));
    const b = await box(dbB, new ManualClock());
    const a1 = await box(await openDb(join(dir, 'a1')), new ManualClock());
    assert.equal(deliver(key, signLine({ t: 'hb', node: 'a', ...a1.guard.stamp() }, key), b.guard), 'ok');
    // a's data disk is swapped and it boots with its clock at 1970: its boot is far below.
    const a2 = await box(await openDb(join(dir, 'a2')), new ManualClock(1000));
    assert.equal(deliver(key, signLine({ t: 'hb', node: 'a', ...a2.guard.stamp() }, key), b.guard), 'replay');
    // b's heartbeat on the network link says which boot of a's it holds; a goes above it.
    a2.guard.heardOnNetwork({ t: 'hb', serialSeen: b.guard.seenBoot, serialBoot: b.guard.ownBoot });
    assert.ok(a2.guard.ownBoot > a1.guard.ownBoot);
    assert.equal(deliver(key, signLine({ t: 'hb', node: 'a', ...a2.guard.stamp() }, key), b.guard), 'ok');
    assert.equal(a2.state.current.serialBoot, a2.guard.ownBoot, 'the new boot is saved');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('serial lines: a line of the previous format (no version, no counter) or of a later version is refused, not acted on, and nothing throws', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-hawire-'));
  try {
    const key = deriveKey('k', 'heartbeat');
    const b = await box(await openDb(join(dir, 'b')), new ManualClock());
    const cases: [object, string][] = [
      [{ t: 'takeover', node: 'a', epoch: 3 }, 'oldFormat'],
      [{ t: 'hb', node: 'a', epoch: 3, role: 'active' }, 'oldFormat'],
      [{ t: 'hb', node: 'a', v: HA_WIRE_VERSION, boot: 'x', n: 1 }, 'oldFormat'],
      [{ t: 'hb', node: 'a', v: HA_WIRE_VERSION, boot: 5, n: 0 }, 'oldFormat'],
      [{ t: 'hb', node: 'a', v: HA_WIRE_VERSION, boot: 5, n: -1 }, 'oldFormat'],
      [{ t: 'hb', node: 'a', v: HA_WIRE_VERSION, boot: 1e300, n: 1 }, 'oldFormat'],
      [{ t: 'hb', node: 'a', v: HA_WIRE_VERSION + 1, boot: 5, n: 1 }, 'newFormat'],
    ];
    for (const [body, want] of cases) assert.equal(deliver(key, signLine(body, key), b.guard), want, JSON.stringify(body));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// --- Catch-up compares size and hash (issue 12, finding 10) ----------------------------------

test('digests: same name and content is skipped; a truncated copy differs by size, a same-size changed copy by hash; an old peer (no digest) is trusted by name', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-hawire-'));
  try {
    const body = Buffer.from('Subject: x\r\n\r\n' + 'line of mail\r\n'.repeat(500));
    await writeFileFs(join(dir, 'f'), body);
    const mine = new FileDigests(dir);
    const standbyDir = await mkdtemp(join(tmpdir(), 'mlsd-hawire-sb-'));
    const theirs = new FileDigests(standbyDir);
    const copy = async (b: Buffer) => {
      await writeFileFs(join(standbyDir, 'f'), b);
      const d = await theirs.digest('f');
      // It goes over the wire as text, and must come back the same.
      return parseDigest(formatDigest(d!));
    };
    assert.equal(await needsResend(mine, 'f', await copy(body)), 'same');
    await truncate(join(standbyDir, 'f'), 100);
    assert.equal(await needsResend(mine, 'f', parseDigest(formatDigest((await theirs.digest('f'))!))), 'size', 'the cache sees the truncation');
    const flipped = Buffer.from(body);
    flipped[body.length - 3] = flipped[body.length - 3]! ^ 1;
    assert.equal(await needsResend(mine, 'f', await copy(flipped)), 'hash');
    assert.equal(await needsResend(mine, 'f', null), 'unknown');
    // Hostile or foreign digests are no digest at all.
    for (const bad of [undefined, 5, '', '12', '12:abc', `-1:${'a'.repeat(64)}`, `1:${'A'.repeat(64)}`, `1:${'a'.repeat(65)}`]) assert.equal(parseDigest(bad), null, String(bad));
    await rm(standbyDir, { recursive: true, force: true });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
