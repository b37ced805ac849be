import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARCHIVE_DATA, rulesetHash } from '../../src/archive/capability.js';
import { openArchive, type ArchiveParts } from '../../src/archive/open.js';
import type { RuleSet } from '../../src/archive/rules.js';
import type { IntakeRecord } from '../../src/archive/types.js';
import { DirSyncer } from '../../src/store/atomic.js';
import { EXPIRY } from '../../src/archive/archiver.js';
import { sublevel } from '../../src/store/db.js';
import { archiveCommands } from '../../src/archive/commands.js';
import { CommandRegistry } from '../../src/commands/registry.js';
import { SEARCH_TOOLS, holdId, type ArchiveCapability } from '../../src/archive/capability.js';
import { DataRegistry } from '../../src/store/data.js';
import { GroupCommitter, openDb, type Db } from '../../src/store/db.js';
import { LocalDurability } from '../../src/store/durability.js';
import { createLogger } from '../../src/log/logger.js';
import { ManualClock } from '../helpers/clock.js';

/** The archiver on a real LevelDB, pack store and SQLite index in a temp dir, with a clock the test moves. */
async function rig(t: { after: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-archiver-'));
  const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
  let db: Db;
  let parts: ArchiveParts;
  const open = async () => {
    db = await openDb(join(dir, 'data', 'db'));
    const durability = new LocalDurability(new DataRegistry([ARCHIVE_DATA]), new GroupCommitter(db), new DirSyncer(), join(dir, 'data'));
    parts = await openArchive({ configDir: join(dir, 'config'), dataDir: join(dir, 'data'), db, durability, encrypt: true, clock, log: createLogger({ level: 'silent' }), emit: () => undefined });
    return parts;
  };
  const close = async () => {
    await parts.close();
    await db.close();
  };
  await open();
  t.after(async () => {
    await close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  const rules = async (set: RuleSet) => {
    const h = rulesetHash(set);
    await parts.archiver.recordRuleset(h, set);
    return h;
  };
  return { clock, get a() { return parts.archiver; }, get parts() { return parts; }, get db() { return db; }, rules, reopen: async () => (await close(), open()) };
}

let n = 0;
function item(ruleset: string, subject: string, body: string, o: Partial<IntakeRecord> = {}, received = '2026-01-01T00:00:00.000Z') {
  const id = `ID${String(++n).padStart(6, '0')}`;
  const bytes = Buffer.from(`Received: from pc ([127.0.0.2])\r\n\tby mail.example.test (mlsd) with ESMTP id ${id};\r\n\tThu, 01 Jan 2026 00:00:00 +0000\r\nFrom: a@outside.test\r\nTo: bob@example.test\r\nSubject: ${subject}\r\n\r\n${body}\r\n`);
  const rec: IntakeRecord = { id, from: 'a@outside.test', rcpt: ['bob@example.test'], clientIp: '127.0.0.2', login: null, listener: 'mx', received, size: bytes.length, direction: 'in', verdict: 'clean', ruleset, ...o };
  return { rec, bytes };
}

test('identical messages are stored once and counted; a replayed intake archives nothing twice; spam is skipped', async (t) => {
  const r = await rig(t);
  const rs = await r.rules({ rules: [], retentionYears: 7 });
  const first = await r.a.ingest([item(rs, 'Quote', 'the same words'), item(rs, 'Quote', 'the same words'), item(rs, 'Pills', 'buy', { verdict: 'spam' })]);
  assert.deepEqual(first, { archived: 2, skipped: 1, duplicates: 1 });
  const stats = await r.parts.blobs.stats();
  assert.equal(stats.blobs, 2, 'one content blob and one text blob for the two');
  const again = item(rs, 'Quote', 'the same words');
  await r.a.ingest([again]);
  assert.deepEqual(await r.a.ingest([again]), { archived: 0, skipped: 0, duplicates: 0 }, 'the same id again: nothing');
  assert.equal((await r.parts.blobs.stats()).blobs, 2);
  await r.a.indexIdle();
  assert.equal((await r.a.search({ text: 'same', limit: 20 })).hits.length, 3);
});

test('purge: only past retention and not held; tombstones; the index catches up after a restart even when the chain ends in a purge', async (t) => {
  const r = await rig(t);
  const short = await r.rules({ rules: [{ action: 'archive', subject: 'short', retentionYears: 1 }], retentionYears: 7 });
  await r.a.ingest([item(short, 'short one', 'alpha'), item(short, 'short two', '合約 beta'), item(short, 'long', 'gamma')]);
  await r.a.addHold('合約', 'hold-1');
  assert.equal((await r.a.purge(false)).purged, 0, 'nothing due yet');
  await r.clock.advance(366 * 86_400_000);
  const dry = await r.a.purge(true);
  assert.equal(dry.due, 2);
  assert.equal(dry.ids.length, 1);
  assert.equal(dry.heldIds.length, 1);
  const done = await r.a.purge(false);
  assert.equal(done.purged, 1);
  await assert.rejects(r.a.show(done.ids[0]!), /purged/);
  const report = await r.parts.chain.verify({ blobs: r.parts.blobs, keys: r.parts.keys });
  assert.deepEqual(report.problems, []);
  assert.equal(report.tombstones, 1);
  // The head is now a purge record, which the index never holds: the catch-up still ends.
  await r.reopen();
  assert.equal(await r.a.catchUp(), 0);
  assert.equal(await r.a.reindex(), 2);
  await r.a.indexIdle();
  assert.deepEqual((await r.a.search({ text: 'alpha', limit: 20 })).hits, []);
  assert.equal((await r.a.search({ text: 'gamma', limit: 20 })).hits.length, 1);
});

test('purge goes by the sealed retention, not by the schedule: a forged or doubled expiry key neither purges early nor drops a blob another record names', async (t) => {
  const r = await rig(t);
  const rs = await r.rules({ rules: [{ action: 'archive', subject: 'short', retentionYears: 1 }], retentionYears: 7 });
  // Two identical messages (one blob each for content and text, counted twice) and one kept long.
  const [a, b, keep] = [item(rs, 'short dup', 'delta words'), item(rs, 'short dup', 'delta words'), item(rs, 'long', 'epsilon')];
  await r.a.ingest([a, b, keep]);
  const ids = sublevel(r.db, 'archive-ids');
  const seqA = (await ids.get(a.rec.id)) as number;
  const seqKeep = (await ids.get(keep.rec.id)) as number;
  // An insider adds schedule entries: one naming the long-kept message as due long ago, one doubling a's.
  const exp = sublevel(r.db, EXPIRY);
  await exp.put(`2000-01-01T00:00:00.000Z!${String(seqKeep).padStart(12, '0')}`, seqKeep);
  await exp.put(`2000-01-01T00:00:00.000Z!${String(seqA).padStart(12, '0')}`, seqA);
  assert.equal((await r.a.purge(false)).purged, 0, 'nothing is past its sealed retention');
  await r.clock.advance(366 * 86_400_000);
  const done = await r.a.purge(false);
  assert.deepEqual(done.ids.sort(), [a.rec.id, b.rec.id].sort(), 'the two short ones, each once; never the long one');
  await r.a.show(keep.rec.id);
  const report = await r.parts.chain.verify({ blobs: r.parts.blobs, keys: r.parts.keys });
  assert.deepEqual(report.problems, []);
});

test('purge with one due duplicate: the blob the other record still names stays', async (t) => {
  const r = await rig(t);
  const rs = await r.rules({ rules: [{ action: 'archive', subject: 'short', retentionYears: 1 }], retentionYears: 1 });
  const a = item(rs, 'short dup', 'zeta words');
  await r.a.ingest([a]);
  await r.clock.advance(200 * 86_400_000);
  const b = item(rs, 'short dup', 'zeta words');
  await r.a.ingest([b]);
  const seqA = (await sublevel(r.db, 'archive-ids').get(a.rec.id)) as number;
  // The schedule names a twice (an insider, or a replayed write): it must count once.
  await sublevel(r.db, EXPIRY).put(`2000-01-01T00:00:00.000Z!${String(seqA).padStart(12, '0')}`, seqA);
  await r.clock.advance(200 * 86_400_000);
  assert.deepEqual((await r.a.purge(false)).ids, [a.rec.id]);
  assert.ok((await r.a.export(b.rec.id)).length > 0, 'b still exports');
  assert.deepEqual((await r.parts.chain.verify({ blobs: r.parts.blobs, keys: r.parts.keys })).problems, []);
});

test('a legal hold whose query has no searchable word is refused, not accepted to hold nothing', async (t) => {
  const r = await rig(t);
  for (const q of ['X', '!!', '"-"', '7']) await assert.rejects(r.a.addHold(q, holdId()), /hold/, q);
  assert.deepEqual(await r.a.holds(), []);
  // A hold by filters only is fine (it holds everything they match).
  await r.a.addHold('from:boss@example.test', holdId());
});

test('search and show print no control characters from the message: no terminal escapes, no forged lines', async (t) => {
  const r = await rig(t);
  const rs = await r.rules({ rules: [], retentionYears: 7 });
  // Encoded words decode to ESC sequences and CR LF: a spammer's way onto the admin's terminal.
  const it = item(rs, '=?utf-8?q?Invoice_=1B]0;owned=07=1B[2J=0D=0Ad00000  2026-01-01 00:00  in       <ceo@example.test> -> x  fake?=', 'omega \u001b[31mred\u001b[0m text');
  await r.a.ingest([it]);
  await r.a.indexIdle();
  const registry = new CommandRegistry({ serving: () => true, role: () => 'active' });
  registry.register('archive', archiveCommands(() => ({ archiver: r.a }) as unknown as ArchiveCapability, SEARCH_TOOLS, holdId));
  const run = async (argv: string[]) => {
    const res = await registry.run({ argv });
    assert.ok(res.ok, JSON.stringify(res));
    return res;
  };
  const found = await run(['archive', 'search', 'omega']);
  assert.match(found.text, /Invoice/);
  assert.doesNotMatch(found.text, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/, JSON.stringify(found.text));
  assert.equal(found.text.split('\n').length, 2, `one hit is two lines: ${JSON.stringify(found.text)}`);
  const shown = await run(['archive', 'show', it.rec.id]);
  assert.doesNotMatch(shown.text, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/, JSON.stringify(shown.text));
});

test('an index update that fails leaves no gap: later batches do not carry the index past it, and the catch-up indexes it', async (t) => {
  const r = await rig(t);
  const rs = await r.rules({ rules: [], retentionYears: 7 });
  // The real index, failing once (a full data disk, say).
  const index = (r.a as unknown as { d: { index: { add: (docs: unknown[]) => Promise<void> } } }).d.index;
  const add = index.add.bind(index);
  let fail = 1;
  index.add = async (docs) => {
    if (fail-- > 0) throw new Error('SQLITE_FULL: database or disk is full');
    return add(docs);
  };
  let behind = 0;
  r.a.whenIndexBehind(() => behind++);
  await r.a.ingest([item(rs, 'first', 'lambda')]);
  await r.a.ingest([item(rs, 'second', 'sigma')]);
  await r.a.indexIdle();
  assert.equal(behind, 1, 'the archive was told its index is behind');
  assert.ok((await r.a.indexedUpTo()) < 1, 'the index does not claim what it lacks');
  assert.equal(await r.a.catchUp(), 2);
  await r.a.indexIdle();
  assert.equal((await r.a.search({ text: 'lambda', limit: 20 })).hits.length, 1, 'the batch whose update failed is found');
  assert.equal((await r.a.search({ text: 'sigma', limit: 20 })).hits.length, 1);
  // After the catch-up, batches index themselves again.
  await r.a.ingest([item(rs, 'third', 'kappa')]);
  await r.a.indexIdle();
  assert.equal((await r.a.search({ text: 'kappa', limit: 20 })).hits.length, 1);
});
