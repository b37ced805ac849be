import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sublevel } from '../../src/store/db.js';
import { contentAddress, seal } from '../../src/archive/seal.js';
import { Chain, seqKey, type VerifyReport } from '../../src/archive/chain.js';
import type { ChainRecord, PurgeBody } from '../../src/archive/types.js';
import type { BlobLocation } from '../../src/archive/packs.js';
import { archiveStoreRig, type ArchiveStoreRig } from '../helpers/archive-store.js';

const N = 1000;
let rig: ArchiveStoreRig;
let chain: Chain;

const records = () => sublevel(rig.db, 'archive');
const state = () => sublevel(rig.db, 'archive-state');
const getRec = async (seq: number) => (await records().get(seqKey(seq))) as ChainRecord;
const verify = (anchors?: { seq: number; mac: string }[]) => chain.verify({ blobs: rig.packs, keys: rig.keys, anchors });
/** The problems as [kind, seq] pairs, for exact comparison. */
const named = (r: VerifyReport) => r.problems.map((p) => [p.kind, p.seq ?? p.key]);

/** Archives `n` messages: blobs first (packs of 100 messages), then the chain records in the same batch as the locations. */
async function archiveMessages(n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i += 100) {
    const blobs: { address: string; sealed: Buffer }[] = [];
    const metas: object[] = [];
    for (let j = i; j < Math.min(n, i + 100); j++) {
      const raw = Buffer.from(`Subject: ${tag} ${j} 報價\r\n\r\nbody ${j}\r\n`);
      const text = Buffer.from(`${tag} ${j} 報價 body ${j}`);
      const content = contentAddress(rig.keys, raw);
      const textAddr = contentAddress(rig.keys, text);
      blobs.push({ address: content, sealed: await seal(rig.keys, content, raw, true) }, { address: textAddr, sealed: await seal(rig.keys, textAddr, text, true) });
      metas.push({ id: `${tag}${j}`, content, text: textAddr });
    }
    const ops = await rig.packs.put(blobs);
    for (const m of metas) ops.push(...chain.append('message', m).ops);
    await rig.durability.write(ops);
  }
}

before(async () => {
  rig = await archiveStoreRig();
  chain = new Chain(rig.db, rig.keys, () => true);
  await chain.open();
  await archiveMessages(N, 'm');
});

after(() => rig.close());

/** Applies a change, checks what verify names, undoes it and checks the chain is clean again. */
async function tampered(change: () => Promise<() => Promise<void>>, expected: (string | number)[][], anchors?: { seq: number; mac: string }[]): Promise<VerifyReport> {
  const undo = await change();
  const report = await verify(anchors);
  await undo();
  assert.deepEqual(named(await verify()), [], 'clean again once undone');
  assert.deepEqual(named(report), expected, JSON.stringify(report.problems));
  return report;
}

async function putRaw(key: string, value: unknown): Promise<() => Promise<void>> {
  const old = (await records().get(key)) as unknown;
  await records().put(key, value);
  return () => (old === undefined ? records().del(key) : records().put(key, old));
}

async function delRaw(key: string): Promise<() => Promise<void>> {
  const old = (await records().get(key)) as unknown;
  await records().del(key);
  return () => records().put(key, old);
}

function flipBase64(s: string, at: number): string {
  const b = Buffer.from(s, 'base64');
  b[at]! ^= 0x01;
  return b.toString('base64');
}

test('a clean chain of 1,000 messages verifies clean, and the head is kept across a reopen', async () => {
  const r = await verify();
  assert.deepEqual(r.problems, []);
  assert.equal(r.records, N);
  assert.equal(r.messages, N);
  const c2 = new Chain(rig.db, rig.keys, () => true);
  await c2.open();
  assert.deepEqual(c2.head(), chain.head());
  assert.equal(chain.head().seq, N);
  assert.equal((await getRec(N)).mac, chain.head().mac);
  const seqs: number[] = [];
  for await (const rec of chain.iterate(998, 2000)) seqs.push(rec.seq);
  assert.deepEqual(seqs, [998, 999, 1000]);
  assert.deepEqual((chain.body((await chain.get(5))!) as { id: string }).id, 'm4');
  assert.equal(await chain.get(N + 1), null);
});

test('a flipped byte in a record\'s sealed body is named as altered (middle and last)', async () => {
  for (const seq of [500, N]) {
    const rec = await getRec(seq);
    const r = await tampered(() => putRaw(seqKey(seq), { ...rec, sealed: flipBase64(rec.sealed!, 30) }), [['altered', seq]]);
    assert.match(r.problems[0]!.detail, /does not match its mac/);
  }
});

test('a flipped byte inside a pack is named as altered at the message whose blob it is', async () => {
  const meta = chain.body(await getRec(300)) as { content: string };
  const loc = (await sublevel(rig.db, 'archive-blobs').get(meta.content)) as BlobLocation;
  const path = join(rig.dir, 'archive', 'packs', `${loc.pack}.pack`);
  const flip = async () => {
    const fh = await openFile(path, 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, loc.off + 20);
    b[0]! ^= 0x40;
    await fh.write(b, 0, 1, loc.off + 20);
    await fh.close();
  };
  const r = await tampered(async () => (await flip(), flip), [['altered', 300]]);
  assert.match(r.problems[0]!.detail, /content blob.*fails authentication/);
});

test('a blob that is gone is named as missing at its message', async () => {
  const meta = chain.body(await getRec(200)) as { text: string };
  const blobs = sublevel(rig.db, 'archive-blobs');
  const loc = await blobs.get(meta.text);
  const r = await tampered(async () => (await blobs.del(meta.text), () => blobs.put(meta.text, loc)), [['missing', 200]]);
  assert.match(r.problems[0]!.detail, /text blob .* is missing/);
});

test('a deleted record is named as missing: in the middle, a run of them, and the last one', async () => {
  await tampered(() => delRaw(seqKey(500)), [['missing', 500]]);
  await tampered(async () => {
    const undo = await Promise.all([600, 601, 602].map((s) => delRaw(seqKey(s))));
    return async () => void (await Promise.all(undo.map((u) => u())));
  }, [['missing', 600]]);
  const r = await tampered(() => delRaw(seqKey(N)), [['missing', N]]);
  assert.match(r.problems[0]!.detail, /head is at seq 1000 but the chain ends at 999/);
});

test('a forged record is named as inserted: after the head, under a key that is no seq, in place of a record, and between two records', async () => {
  const last = await getRec(N);
  const forged = (seq: number, prev: string): ChainRecord => ({ seq, kind: 'message', prev, mac: 'ab'.repeat(32), sealed: (last.sealed as string) });
  // After the head, linked properly to it.
  const after = await tampered(() => putRaw(seqKey(N + 1), forged(N + 1, last.mac)), [['inserted', N + 1]]);
  assert.match(after.problems[0]!.detail, /after the chain head \(1000\)/);
  // A key that sorts between two seqs.
  await tampered(() => putRaw(`${seqKey(500)}x`, forged(500, (last.prev))), [['inserted', '000000000500x']]);
  // In place of record 700: the forged one is inserted, the genuine one missing.
  const r700 = await getRec(700);
  await tampered(() => putRaw(seqKey(700), forged(700, r700.prev)), [['inserted', 700], ['missing', 700]]);
  // Between 500 and 501: every later record moved up one key, as an attacker must to make room.
  const r500 = await getRec(500);
  await tampered(async () => {
    for (let s = N; s > 500; s--) await records().put(seqKey(s + 1), await getRec(s));
    await records().put(seqKey(501), forged(501, r500.mac));
    return async () => {
      for (let s = 501; s <= N; s++) await records().put(seqKey(s), (await records().get(seqKey(s + 1))) as ChainRecord);
      await records().del(seqKey(N + 1));
    };
  }, [['inserted', 501], ['altered', 501]]);
});

test('a stored head beyond the last record, or an altered head, is named', async () => {
  const head = chain.head();
  const restore = () => state().put('head', head);
  await tampered(async () => (await state().put('head', { seq: N + 5, mac: head.mac }), restore), [['missing', N + 1]]);
  await tampered(async () => (await state().put('head', { seq: N, mac: 'cd'.repeat(32) }), restore), [['altered', N]]);
});

test('anchors: a head logged earlier must still be in the chain as it was', async () => {
  const r600 = await getRec(600);
  assert.deepEqual(named(await verify([{ seq: 600, mac: r600.mac }])), []);
  await tampered(async () => async () => undefined, [['missing', 600]], [{ seq: 600, mac: 'ef'.repeat(32) }]);
  await tampered(async () => async () => undefined, [['missing', N + 50]], [{ seq: N + 50, mac: 'ef'.repeat(32) }]);
  // The record an anchor names was replaced.
  await tampered(() => putRaw(seqKey(600), { ...r600, mac: '12'.repeat(32) }), [['inserted', 600], ['missing', 600], ['missing', 600]], [{ seq: 600, mac: r600.mac }]);
});

test('a tombstone no purge lists is altered; a proper purge with its tombstones verifies clean', async () => {
  const r400 = await getRec(400);
  const fake = { seq: 400, kind: 'tombstone', prev: r400.prev, mac: r400.mac, purgedBy: N + 1 };
  const r = await tampered(() => putRaw(seqKey(400), fake), [['altered', 400]]);
  assert.match(r.problems[0]!.detail, /no purge record lists/);
  const victims = [await getRec(10), await getRec(11), await getRec(12)];
  const body: PurgeBody = { at: '2033-01-01T00:00:00.000Z', purged: victims.map((v) => ({ seq: v.seq, mac: v.mac, id: `m${v.seq - 1}` })) };
  const purge = chain.append('purge', body);
  await rig.durability.write([...purge.ops, ...chain.tombstoneOps(victims, purge.record.seq)]);
  const clean = await verify();
  assert.deepEqual(named(clean), []);
  assert.equal(clean.tombstones, 3);
  assert.equal(clean.purges, 1);
  assert.equal(clean.messages, N - 3);
  // A message deleted and dressed up as purged by that same purge: the purge does not list it.
  await tampered(() => putRaw(seqKey(400), { ...fake, purgedBy: purge.record.seq }), [['altered', 400]]);
  // A tombstone listed, but its mac changed (the chain link from 11 to 12 breaks as well).
  const t11 = await getRec(11);
  await tampered(() => putRaw(seqKey(11), { ...t11, mac: '34'.repeat(32) }), [['altered', 11], ['altered', 12]]);
  const t10 = await getRec(10);
  assert.throws(() => chain.tombstoneOps([t10], purge.record.seq), /is a tombstone, not a message/);
});

test('appends not written are undone by reset; a record beyond the head stops open', async () => {
  const head = chain.head();
  chain.append('message', { id: 'x' });
  chain.append('message', { id: 'y' });
  assert.equal(chain.head().seq, head.seq + 2);
  await chain.reset();
  assert.deepEqual(chain.head(), head);
  const undo = await putRaw(seqKey(head.seq + 1), { seq: head.seq + 1 });
  await assert.rejects(new Chain(rig.db, rig.keys, () => true).open(), /lies beyond the head/);
  await undo();
  assert.deepEqual(named(await verify()), []);
});
