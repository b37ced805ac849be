import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deriveArchiveKeys, loadArchiveKeys, ARCHIVE_KEY_CONFIG_FILE } from '../../src/archive/keys.js';
import { contentAddress, open, openJson, seal, sealJson, SealError } from '../../src/archive/seal.js';

const keys = deriveArchiveKeys(Buffer.alloc(32, 1));
const otherKeys = deriveArchiveKeys(Buffer.alloc(32, 2));
const message = Buffer.from('From: a@example.test\r\nSubject: 報價 invoice\r\n\r\n' + 'body line\r\n'.repeat(200));

test('sealed blobs open to the same bytes, encrypted or compressed only, and are compressed', async () => {
  const address = contentAddress(keys, message);
  for (const encrypted of [true, false]) {
    const sealed = await seal(keys, address, message, encrypted);
    assert.ok(sealed.length < message.length / 4, 'gzip shrinks a repetitive message');
    assert.equal(sealed[0], encrypted ? 2 : 1, 'the format byte');
    // Compressed only: a plain gzip stream anyone can read; encrypted: nothing readable.
    if (encrypted) assert.throws(() => gunzipSync(sealed.subarray(1)));
    else assert.deepEqual(gunzipSync(sealed.subarray(1)), message);
    assert.deepEqual(await open(keys, address, sealed), message);
  }
  const a = await seal(keys, address, message, true);
  const b = await seal(keys, address, message, true);
  assert.notDeepEqual(a, b, 'a fresh nonce each time');
});

test('the content address is keyed: not the plain SHA-256, and another key gives another address', () => {
  const address = contentAddress(keys, message);
  assert.match(address, /^[0-9a-f]{64}$/);
  assert.notEqual(address, createHash('sha256').update(message).digest('hex'));
  assert.notEqual(address, contentAddress(otherKeys, message));
  assert.equal(address, contentAddress(keys, Buffer.from(message)));
});

test('a blob opened with the wrong key, a flipped byte, or under another address is refused', async () => {
  const address = contentAddress(keys, message);
  const other = contentAddress(keys, Buffer.from('another message'));
  const enc = await seal(keys, address, message, true);
  await assert.rejects(open(otherKeys, address, enc), (e: SealError) => e.kind === 'tampered' && /fails authentication/.test(e.message));
  for (const at of [1, 5, 20, enc.length - 1]) {
    const bad = Buffer.from(enc);
    bad[at]! ^= 0x01;
    await assert.rejects(open(keys, address, bad), (e: SealError) => e.kind === 'tampered', `flipped byte ${at}`);
  }
  await assert.rejects(open(keys, other, enc), (e: SealError) => e.kind === 'tampered', 'moved: the address is the AAD');

  // Compressed only: no authentication tag, so the address check is what catches changes.
  const plain = await seal(keys, address, message, false);
  await assert.rejects(open(keys, other, plain), (e: SealError) => e.kind === 'address');
  await assert.rejects(open(otherKeys, address, plain), (e: SealError) => e.kind === 'address', 'the address is keyed');
  const bad = Buffer.from(plain);
  bad[bad.length - 12]! ^= 0x01; // inside the deflate stream or its CRC
  await assert.rejects(open(keys, address, bad), SealError);

  await assert.rejects(open(keys, address, Buffer.from([9, 1, 2])), (e: SealError) => e.kind === 'format' && /unknown format byte 9/.test(e.message));
  await assert.rejects(open(keys, address, Buffer.from([2, 1, 2])), (e: SealError) => e.kind === 'format' && /truncated/.test(e.message));
  await assert.rejects(open(keys, address, Buffer.alloc(0)), (e: SealError) => e.kind === 'format');
});

test('a sealed chain body opens only at its own seq and with its own key', () => {
  const body = { id: 'ABC', subject: '報價單', n: 3 };
  const s = sealJson(keys, 42, body, true);
  assert.deepEqual(openJson(keys, 42, s), body);
  assert.throws(() => openJson(keys, 43, s), (e: SealError) => e.kind === 'tampered', 'moved to another seq');
  assert.throws(() => openJson(otherKeys, 42, s), (e: SealError) => e.kind === 'tampered');
  const bad = Buffer.from(s, 'base64');
  bad[bad.length - 3]! ^= 0x80;
  assert.throws(() => openJson(keys, 42, bad.toString('base64')), (e: SealError) => e.kind === 'tampered');
  const plain = sealJson(keys, 42, body, false);
  assert.deepEqual(openJson(keys, 42, plain), body, 'archive.encrypt: false is readable too');
});

test('the key file is made once (0600, 64 hex digits), read back the same, and a malformed one is refused, never replaced', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-archive-key-'));
  try {
    const k1 = await loadArchiveKeys(dir);
    const path = join(dir, 'archive.key');
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const text = await readFile(path, 'utf8');
    assert.match(text, /^[0-9a-f]{64}\n$/);
    const k2 = await loadArchiveKeys(dir);
    assert.deepEqual(k2, k1);
    assert.deepEqual(k1, deriveArchiveKeys(Buffer.from(text.trim(), 'hex')));
    const subs = [k1.seal, k1.address, k1.chain, k1.term].map((b) => b.toString('hex'));
    assert.equal(new Set(subs).size, 4, 'a distinct sub-key per use');
    assert.ok(!subs.includes(text.trim()), 'no sub-key is the master key');
    assert.ok(ARCHIVE_KEY_CONFIG_FILE.pattern.test('archive.key') && ARCHIVE_KEY_CONFIG_FILE.replicate && ARCHIVE_KEY_CONFIG_FILE.mode === 0o600);
    assert.ok(!ARCHIVE_KEY_CONFIG_FILE.pattern.test('x/archive.key'));

    for (const bad of ['', 'abc\n', text.slice(0, 40), text.toUpperCase(), text + 'x']) {
      await writeFile(path, bad);
      await assert.rejects(loadArchiveKeys(dir), (e: Error) => e.message.includes(path) && /malformed/.test(e.message), JSON.stringify(bad));
      assert.equal(await readFile(path, 'utf8'), bad, 'left as it was');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('two first uses at once end with one key', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-archive-key-'));
  try {
    const [a, b, c] = await Promise.all([loadArchiveKeys(dir), loadArchiveKeys(dir), loadArchiveKeys(dir)]);
    assert.deepEqual(a, b);
    assert.deepEqual(b, c);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
