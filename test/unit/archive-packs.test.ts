import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sublevel } from '../../src/store/db.js';
import { filesToFollow } from '../../src/store/data.js';
import { contentAddress, open, seal } from '../../src/archive/seal.js';
import { archiveStoreRig, type ArchiveStoreRig } from '../helpers/archive-store.js';

const packFiles = async (rig: ArchiveStoreRig) => (await readdir(join(rig.dir, 'archive', 'packs')).catch(() => [] as string[])).sort();

async function blob(rig: ArchiveStoreRig, text: string | Buffer) {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const address = contentAddress(rig.keys, bytes);
  return { address, sealed: await seal(rig.keys, address, bytes, true), bytes };
}

test('identical blobs are stored once: in one call, across calls, and before the first call was committed', async () => {
  const rig = await archiveStoreRig();
  try {
    const a = await blob(rig, 'message A');
    const b = await blob(rig, 'message B');
    const ops = await rig.packs.put([a, b, a]);
    assert.equal(ops.filter((o) => o.sublevel === 'archive-blobs').length, 2, 'a repeated within the call');
    await rig.durability.write(ops);
    const before = await rig.packs.stats();
    assert.deepEqual(before, { blobs: 2, bytes: a.sealed.length + b.sealed.length, files: 1 });

    assert.deepEqual(await rig.packs.put([a, b]), [], 'both already present: nothing written');
    assert.deepEqual(await rig.packs.stats(), before);
    assert.equal((await packFiles(rig)).length, 1);

    // Two puts of one new blob before either batch is written: one file, the same location twice.
    const c = await blob(rig, 'message C');
    const first = await rig.packs.put([c]);
    const second = await rig.packs.put([c]);
    assert.equal((await packFiles(rig)).length, 2);
    assert.deepEqual(second, first.filter((o) => o.sublevel === 'archive-blobs'));
    await rig.durability.write([...first, ...second]);
    assert.deepEqual(await rig.packs.stats(), { blobs: 3, bytes: before.bytes + c.sealed.length, files: 2 });
  } finally {
    await rig.close();
  }
});

test('a blob reads back after a restart, in a pack of its own name; the counter goes on from the highest pack', async () => {
  const rig = await archiveStoreRig();
  try {
    const a = await blob(rig, 'first');
    const b = await blob(rig, randomBytes(1000));
    await rig.durability.write(await rig.packs.put([a]));
    await rig.durability.write(await rig.packs.put([b]));
    await rig.reopen();
    assert.deepEqual(await open(rig.keys, a.address, (await rig.packs.get(a.address))!), a.bytes);
    assert.deepEqual(await open(rig.keys, b.address, (await rig.packs.get(b.address))!), b.bytes);
    assert.equal(await rig.packs.has(a.address), true);
    const absent = contentAddress(rig.keys, Buffer.from('never stored'));
    assert.equal(await rig.packs.get(absent), null);
    assert.equal(await rig.packs.has(absent), false);
    const c = await blob(rig, 'after the restart');
    await rig.durability.write(await rig.packs.put([c]));
    assert.deepEqual(await packFiles(rig), ['pack-000000000001.pack', 'pack-000000000002.pack', 'pack-000000000003.pack']);
    await assert.rejects(rig.packs.get('../x'), /refusing blob address/);
  } finally {
    await rig.close();
  }
});

test('a put bigger than a pack is split into several packs', async () => {
  const rig = await archiveStoreRig();
  try {
    const big = await Promise.all([1, 2, 3, 4].map(() => blob(rig, randomBytes(3 * 1024 * 1024))));
    await rig.durability.write(await rig.packs.put(big));
    assert.equal((await rig.packs.stats()).files, 2);
    for (const b of big) assert.deepEqual(await rig.packs.get(b.address), b.sealed);
  } finally {
    await rig.close();
  }
});

test('drop lowers the live count, and a pack with nothing live goes (record, then file); the standby unlinks its copy', async () => {
  const rig = await archiveStoreRig();
  try {
    const a = await blob(rig, 'A');
    const b = await blob(rig, 'B');
    const keep = await blob(rig, 'kept');
    await rig.durability.write(await rig.packs.put([a, b]));
    await rig.durability.write(await rig.packs.put([keep]));
    assert.equal((await packFiles(rig)).length, 2);

    const d1 = await rig.packs.drop([a.address]);
    await rig.durability.write(d1.ops);
    await d1.after();
    assert.equal((await packFiles(rig)).length, 2, 'b still lives in the first pack');
    assert.equal(await rig.packs.get(a.address), null);
    assert.deepEqual(await rig.packs.stats(), { blobs: 2, bytes: a.sealed.length + b.sealed.length + keep.sealed.length, files: 2 });

    const d2 = await rig.packs.drop([b.address, b.address, a.address]);
    assert.deepEqual(filesToFollow(rig.durability.data, d2.ops as never).unlink, ['archive/packs/pack-000000000001.pack'], 'HA: the standby unlinks its copy');
    await rig.durability.write(d2.ops);
    await d2.after();
    assert.deepEqual(await packFiles(rig), ['pack-000000000002.pack']);
    assert.deepEqual(await rig.packs.stats(), { blobs: 1, bytes: keep.sealed.length, files: 1 });
    assert.deepEqual(await rig.packs.get(keep.address), keep.sealed);

    // Once dropped, the same bytes are stored again when they come back.
    const again = await rig.packs.put([a]);
    assert.equal(again.filter((o) => o.sublevel === 'archive-blobs').length, 1);
  } finally {
    await rig.close();
  }
});

test('sweep removes a pack no record names (a crash before the batch), and leaves the others', async () => {
  const rig = await archiveStoreRig();
  try {
    const a = await blob(rig, 'committed');
    await rig.durability.write(await rig.packs.put([a]));
    const lost = await blob(rig, 'written, never committed');
    await rig.packs.put([lost]); // the batch never happens
    const pending = await blob(rig, 'put by this process, batch on its way');
    assert.equal(await rig.packs.sweep(), 0, 'packs this process wrote are not orphans yet');
    await rig.reopen();
    await writeFile(join(rig.dir, 'archive', 'packs', '.pack-000000000009.pack.abcdef.tmp'), 'half');
    assert.equal(await rig.packs.sweep(), 2, 'the lost pack and the temp file');
    assert.deepEqual(await packFiles(rig), ['pack-000000000001.pack']);
    const pendingOps = await rig.packs.put([pending]);
    assert.equal(await rig.packs.sweep(), 0, 'a pack put but not yet committed is not an orphan');
    await rig.durability.write(pendingOps);
    assert.deepEqual(await packFiles(rig), ['pack-000000000001.pack', 'pack-000000000002.pack']);
    assert.deepEqual(await rig.packs.get(a.address), a.sealed);
    assert.deepEqual(await rig.packs.get(pending.address), pending.sealed);
    assert.equal(await rig.packs.get(lost.address), null);
    assert.equal(await rig.packs.sweep(), 0);
  } finally {
    await rig.close();
  }
});

test('a forged location record never reads outside the packs folder or outside its pack', async () => {
  const rig = await archiveStoreRig();
  try {
    const a = await blob(rig, 'A');
    await rig.durability.write(await rig.packs.put([a]));
    const forge = (value: unknown) => sublevel(rig.db, 'archive-blobs').put(a.address, value);
    for (const pack of ['../../../etc/passwd', 'pack-000000000001/../../x', 'pack-1', '/etc/passwd', 'pack-000000000001.pack']) {
      await forge({ pack, off: 0, len: 10 });
      await assert.rejects(rig.packs.get(a.address), /refusing the location record/, pack);
    }
    for (const [off, len] of [[-1, 4], [0, -4], [1.5, 4], [0, 2 ** 40], ['0', 4]]) {
      await forge({ pack: 'pack-000000000001', off, len });
      await assert.rejects(rig.packs.get(a.address), /refusing the location record/, `${off}+${len}`);
    }
    await forge({ pack: 'pack-000000000001', off: a.sealed.length - 2, len: 10 });
    await assert.rejects(rig.packs.get(a.address), /lies outside pack-000000000001/);
    await forge('x');
    await assert.rejects(rig.packs.get(a.address), /refusing the location record/);
    await forge({ pack: 'pack-000000000001', off: 0, len: a.sealed.length });
    assert.deepEqual(await rig.packs.get(a.address), a.sealed);
  } finally {
    await rig.close();
  }
});

test('a drop that leaves a pack mostly dead rewrites its live blobs into a new pack and frees the old one', async () => {
  const rig = await archiveStoreRig();
  try {
    const all = await Promise.all([...Array(10).keys()].map((i) => blob(rig, `message ${i} ` + 'x'.repeat(100 * i))));
    await rig.durability.write(await rig.packs.put(all));
    const gone = all.slice(0, 6);
    const kept = all.slice(6);

    // A crash before the drop's batch: the old pack still serves, the new one is an orphan.
    await rig.packs.drop(gone.map((b) => b.address));
    await rig.reopen();
    assert.equal(await rig.packs.sweep(), 1);
    for (const b of all) assert.deepEqual(await rig.packs.get(b.address), b.sealed);

    const d = await rig.packs.drop(gone.map((b) => b.address));
    assert.deepEqual(filesToFollow(rig.durability.data, d.ops as never).unlink, ['archive/packs/pack-000000000001.pack'], 'HA: the standby unlinks the old pack');
    await rig.durability.write(d.ops);
    await d.after();
    assert.deepEqual(await packFiles(rig), ['pack-000000000002.pack']);
    assert.deepEqual(await rig.packs.stats(), { blobs: 4, bytes: kept.reduce((n, b) => n + b.sealed.length, 0), files: 1 });
    for (const b of kept) assert.deepEqual(await rig.packs.get(b.address), b.sealed);
    for (const b of gone) assert.equal(await rig.packs.get(b.address), null);
    assert.equal(await rig.packs.sweep(), 0);
  } finally {
    await rig.close();
  }
});
