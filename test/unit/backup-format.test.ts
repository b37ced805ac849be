import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile, rm, readdir, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { deriveBackupKeys, parseRecoveryKey, recoveryKeyText, installRecoveryKey, loadBackupKey } from '../../src/backup/keys.js';
import { checkObject, openBytes, openFile, objectName, sealBytes, sealFile, sha256File, SealError } from '../../src/backup/seal.js';
import { generationName, openManifest, sealManifest, type Manifest } from '../../src/backup/manifest.js';
import { generationsToDrop } from '../../src/backup/generations.js';
import { nextDailyRun } from '../../src/backup/schedule.js';

const keys = deriveBackupKeys(randomBytes(32));

test('an object opens only with its key, under its own name, with the content the manifest names', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-bk-'));
  try {
    for (const size of [0, 1, 65536, (1 << 20) + 7]) {
      const src = join(dir, `src-${size}`);
      const data = randomBytes(size);
      await writeFile(src, data);
      const { sha256 } = await sha256File(src);
      const sealedObj = await sealFile(keys, src, dir);
      assert.equal(sealedObj.sha256, sha256, 'hashed as it is sealed');
      assert.equal(sealedObj.size, size);
      const name = objectName(keys, sha256);
      assert.equal(sealedObj.name, name);
      const sealed = sealedObj.path;
      const out = join(dir, `out-${size}`);
      await openFile(keys, name, sealed, out, sha256);
      assert.ok((await readFile(out)).equals(data), `round trip of ${size} bytes`);
      await checkObject(keys, name, sealed, sha256);
      if (size >= 16) assert.equal((await readFile(sealed)).includes(data.subarray(0, 16)), false, "the content is not readable in the object");
      // Another file's object in its place (swapped on the NAS), another key, one flipped byte: refused, nothing written.
      const other = join(dir, `other-${size}`);
      await writeFile(other, randomBytes(size + 1));
      const otherObj = await sealFile(keys, other, dir);
      await assert.rejects(openFile(keys, name, otherObj.path, join(dir, 'x1'), sha256), SealError);
      await assert.rejects(checkObject(keys, name, otherObj.path, sha256), SealError);
      await assert.rejects(openFile(deriveBackupKeys(randomBytes(32)), name, sealed, join(dir, 'x2'), sha256), SealError);
      const bytes = await readFile(sealed);
      bytes[Math.floor(bytes.length / 2)]! ^= 1;
      await writeFile(sealed, bytes);
      await assert.rejects(openFile(keys, name, sealed, join(dir, 'x3'), sha256), SealError);
      await assert.rejects(checkObject(keys, name, sealed, sha256), SealError);
      // A local failure (the folder to write into is gone) is not the object's fault.
      await assert.rejects(openFile(keys, name, otherObj.path, join(dir, 'no-such-folder', 'x4'), otherObj.sha256), (e: Error) => !(e instanceof SealError));
      assert.deepEqual((await readdir(dir)).filter((n) => /^x|\.part$/.test(n)), [], 'a refused object leaves no file');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('object names are keyed: equal content is one object, and the name says nothing without the key', () => {
  const h = 'a'.repeat(64);
  assert.equal(objectName(keys, h), objectName(keys, h));
  assert.notEqual(objectName(keys, h), objectName(deriveBackupKeys(randomBytes(32)), h));
  assert.notEqual(objectName(keys, h), h);
});

test('a manifest opens only as the generation it was sealed for', () => {
  const m: Manifest = { format: 1, set: keys.setId, box: { id: 'b', hostname: 'h' }, generation: '20261205T023000Z', startedAt: '', finishedAt: '', archiveHead: { seq: 3, mac: 'ab' }, files: [{ p: 'mail/a', s: 1, h: 'x', m: 0 }], records: [], config: [], bytes: 1, sentBytes: 1 };
  const sealed = sealManifest(keys, m);
  assert.deepEqual(openManifest(keys, keys.setId, m.generation, sealed), m);
  // An older manifest renamed to a newer name (a rollback by someone with write access to the NAS) is refused.
  assert.throws(() => openManifest(keys, keys.setId, '20261206T023000Z', sealed), SealError);
  assert.throws(() => openBytes(keys, 'x', sealBytes(keys, 'y', Buffer.from('z'))), SealError);
});

test('the recovery key is the backup key, as groups of hex, and a new flash takes it back', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-bk-'));
  try {
    const a = await loadBackupKey(join(dir, 'one'));
    assert.equal(a.created, true);
    assert.match(a.recoveryKey, /^([0-9a-f]{4}-){15}[0-9a-f]{4}$/);
    assert.equal((await loadBackupKey(join(dir, 'one'))).created, false);
    await mkdir(join(dir, 'two'));
    const b = await installRecoveryKey(join(dir, 'two'), ` ${a.recoveryKey.toUpperCase().replace(/-/g, ' ')}\n`);
    assert.equal(b.setId, a.keys.setId, 'the same backup set: the new box reads the old backups');
    await assert.rejects(installRecoveryKey(join(dir, 'two'), a.recoveryKey), /never replaced/);
    assert.throws(() => parseRecoveryKey('1234-5678'), /64 hex digits/);
    assert.equal(recoveryKeyText(Buffer.alloc(32, 0xab)).split('-').length, 16);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('generations: the newest of each of the last N days, weeks and months are kept', () => {
  const day = 86_400_000;
  const start = Date.UTC(2026, 0, 1, 2, 30);
  // Two runs a day for 400 days.
  const gens = Array.from({ length: 800 }, (_, i) => generationName(start + Math.floor(i / 2) * day + (i % 2) * 3_600_000));
  const dropped = new Set(generationsToDrop(gens, { daily: 7, weekly: 4, monthly: 12 }));
  const kept = gens.filter((g) => !dropped.has(g));
  assert.ok(kept.includes(gens[gens.length - 1]!), 'the newest is kept');
  assert.ok(!kept.includes(gens[gens.length - 2]!), 'an earlier run of the same day is not');
  // 7 days + up to 4 weeks + up to 12 months, overlapping: never more than 23, at least 12 distinct months back.
  assert.ok(kept.length <= 23 && kept.length >= 12, `kept ${kept.length}`);
  const months = new Set(kept.map((g) => g.slice(0, 6)));
  assert.equal(months.size, 12);
  assert.deepEqual(generationsToDrop(['20261205T023000Z'], { daily: 1, weekly: 0, monthly: 0 }), []);
  assert.deepEqual(generationsToDrop(['junk', '20261205T023000Z'], { daily: 1, weekly: 0, monthly: 0 }), [], 'names that are not generations are left alone');
});

test('the nightly run is the next HH:MM of local time', () => {
  const now = new Date(2026, 11, 5, 1, 0).getTime();
  assert.equal(nextDailyRun(now, '02:30'), new Date(2026, 11, 5, 2, 30).getTime());
  assert.equal(nextDailyRun(new Date(2026, 11, 5, 2, 30).getTime(), '02:30'), new Date(2026, 11, 6, 2, 30).getTime());
  assert.equal(nextDailyRun(new Date(2026, 11, 31, 23, 0).getTime(), '00:15'), new Date(2027, 0, 1, 0, 15).getTime());
});
