import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntakeProcessor, INTAKE, INTAKE_FOLDER } from '../../src/archive/intake.js';
import type { Archiver } from '../../src/archive/archiver.js';
import type { IntakeRecord } from '../../src/archive/types.js';
import { openDb, sublevel, type BatchOp } from '../../src/store/db.js';
import { createLogger } from '../../src/log/logger.js';
import type { EventInput } from '../../src/events/events.js';
import { ManualClock, settle } from '../helpers/clock.js';

/**
 * The intake processor's handling of a message the archive cannot take: the batch it is in
 * is retried one message at a time, and the message alone, failing three times, is set
 * aside (left in the intake) while the rest is archived. The archive here is a recorder
 * that refuses one message, as a parser that cannot survive it would.
 */
test('one message the archive cannot take is set aside after three tries; everything else is archived', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-intake-'));
  const db = await openDb(join(dir, 'db'));
  t.after(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });
  await mkdir(join(dir, INTAKE_FOLDER));
  const ids = ['A1', 'A2', 'BAD', 'A4', 'A5'];
  for (const id of ids) {
    const rec: IntakeRecord = { id, from: 'a@b.test', rcpt: ['c@d.test'], clientIp: '127.0.0.2', login: null, listener: 'mx', received: '2026-01-01T00:00:00Z', size: 10, direction: 'in', verdict: 'clean', ruleset: 'x' };
    await sublevel(db, INTAKE).put(id, rec);
    await writeFile(join(dir, INTAKE_FOLDER, `${id}.eml`), `Subject: ${id}\r\n\r\nbody\r\n`);
  }
  const archived: string[] = [];
  const batches: number[] = [];
  const archiver = {
    async ingest(items: { rec: IntakeRecord }[], done: BatchOp[]) {
      batches.push(items.length);
      if (items.some((i) => i.rec.id === 'BAD')) throw new Error('cannot parse');
      archived.push(...items.map((i) => i.rec.id));
      await db.batch(done.map((o) => ({ type: 'del' as const, sublevel: sublevel(db, INTAKE), key: o.key })));
      return { archived: items.length, skipped: 0, duplicates: 0 };
    },
  } as unknown as Archiver;
  const events: EventInput[] = [];
  const clock = new ManualClock();
  const intake = new IntakeProcessor({ db, dataDir: dir, archiver, batchMax: () => 500, busyShare: () => 1, halted: () => null, clock, log: createLogger({ level: 'silent' }), emit: (e) => events.push(e) });
  await intake.run();
  assert.deepEqual(batches, [5], 'one batch of five, refused');
  assert.deepEqual(archived, []);
  // 30 s later: one message at a time; the two before the bad one go in, the bad one fails alone.
  for (let i = 0; i < 3; i++) {
    await clock.advance(30_000);
    await settle();
    await intake.run();
  }
  assert.deepEqual(archived, ['A1', 'A2', 'A4', 'A5'], 'all the others archived');
  assert.deepEqual([...intake.setAside], ['BAD']);
  assert.equal(events.filter((e) => e.kind === 'archive.intake.setAside').length, 1);
  assert.equal(events.find((e) => e.kind === 'archive.intake.setAside')!.severity, 'critical');
  // Nothing is lost: the bad one is still in the intake, with its file.
  assert.deepEqual(await sublevel(db, INTAKE).keys().all(), ['BAD']);
  assert.ok((await readdir(join(dir, INTAKE_FOLDER))).includes('BAD.eml'));
  await intake.stop();
});
