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
  return { clock, get a() { return parts.archiver; }, get parts() { return parts; }, rules, reopen: async () => (await close(), open()) };
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
