import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, sublevel, GroupCommitter, type Db } from '../../src/store/db.js';
import { DataRegistry } from '../../src/store/data.js';
import { LocalDurability } from '../../src/store/durability.js';
import { DirSyncer } from '../../src/store/atomic.js';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '../../src/core/clock.js';
import { MailTraffic, TRAFFIC_DATA, TRAFFIC_SUBLEVEL, KEEP_DAYS } from '../../src/stats/traffic.js';
import { ManualClock } from '../helpers/clock.js';

/**
 * The traffic counts behind `mail stats`: real LevelDB written through the durability seam
 * (so the sublevel must be declared), time on a ManualClock.
 */

async function store(t: { after: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-stats-'));
  const db: Db = await openDb(join(dir, 'db'));
  const writer = new LocalDurability(new DataRegistry([TRAFFIC_DATA]), new GroupCommitter(db), new DirSyncer(), dir);
  t.after(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });
  const errors: Error[] = [];
  const open = async (clock: ManualClock, timezone = 'UTC') => {
    const m = new MailTraffic({ db, writer, clock, timezone: () => timezone, onError: (e) => errors.push(e) });
    await m.start();
    return m;
  };
  return { db, open, errors };
}

const keys = async (db: Db) => {
  const out: string[] = [];
  for await (const [k] of sublevel(db, TRAFFIC_SUBLEVEL).iterator()) out.push(k);
  return out;
};

/** Waits for the timer's unawaited write to reach LevelDB. */
async function written(db: Db, key: string): Promise<void> {
  for (let i = 0; i < 200 && !(await keys(db)).includes(key); i++) await new Promise((r) => setTimeout(r, 10));
}

test('counts go to the UTC hour they happen in; the window is 24 hours oldest first, the last the hour under way', async (t) => {
  const { open } = await store(t);
  const clock = new ManualClock(Date.parse('2026-01-05T10:59:59.999Z'));
  const m = await open(clock);
  m.accepted(3);
  m.delivered('outLocal', 2);
  m.delivered('outRemote', 1);
  await clock.advance(1); // 11:00:00.000: a new hour
  m.accepted(1);
  m.delivered('failed', 1);
  m.delivered('outLocal', 0);
  const { hours } = m.window();
  assert.equal(hours.length, 24);
  assert.equal(hours[0]!.start, '2026-01-04T12:00:00.000Z');
  assert.equal(hours[23]!.start, '2026-01-05T11:00:00.000Z');
  assert.deepEqual(hours[22], { start: '2026-01-05T10:00:00.000Z', in: 1, inRecipients: 3, outLocal: 2, outRemote: 1, failed: 0, out: 3 });
  assert.deepEqual(hours[23], { start: '2026-01-05T11:00:00.000Z', in: 1, inRecipients: 1, outLocal: 0, outRemote: 0, failed: 1, out: 0 });
  assert.equal(hours.slice(0, 22).reduce((n, h) => n + h.in + h.out + h.failed, 0), 0);
  // 24 hours later the 10:00 hour has left the hourly window, not the daily one.
  await clock.advance(23 * HOUR_MS);
  const later = m.window();
  assert.equal(later.hours[0]!.start, '2026-01-05T11:00:00.000Z');
  assert.equal(later.hours.reduce((n, h) => n + h.in, 0), 1);
  assert.deepEqual(later.days.slice(-2).map((d) => [d.date, d.in, d.out]), [['2026-01-05', 2, 3], ['2026-01-06', 0, 0]]);
  await m.stop();
});

test('days are the 30 calendar days of the configured timezone, oldest first, today last', async (t) => {
  const { open } = await store(t);
  // 2026-03-10 23:30 in Taipei (UTC+8).
  const clock = new ManualClock(Date.parse('2026-03-10T15:30:00Z'));
  const m = await open(clock, 'Asia/Taipei');
  m.accepted(1); // the 15:00Z hour: 23:00 on the 10th in Taipei
  await clock.advance(30 * MINUTE_MS); // 16:00Z: midnight, the 11th in Taipei
  m.accepted(1);
  m.accepted(1);
  const w = m.window();
  assert.equal(w.timezone, 'Asia/Taipei');
  assert.equal(w.days.length, 30);
  assert.equal(w.days[29]!.date, '2026-03-11');
  assert.equal(w.days[0]!.date, '2026-02-10', 'by the calendar: February has 28 days');
  assert.deepEqual(w.days.slice(-2).map((d) => [d.date, d.in]), [['2026-03-10', 1], ['2026-03-11', 2]]);
  // 29 days on, the 10th is the oldest day shown; a day later it is gone from the window.
  await clock.advance(29 * DAY_MS);
  assert.deepEqual([m.window().days[0]!.date, m.window().days[0]!.in], ['2026-03-11', 2]);
  await clock.advance(DAY_MS);
  assert.equal(m.window().days.reduce((n, d) => n + d.in, 0), 0);
  await m.stop();
});

test('a restart keeps what was flushed: once a minute and at stop; a crash forgets at most the last minute', async (t) => {
  const { db, open, errors } = await store(t);
  const at = Date.parse('2026-01-05T10:00:00Z');
  const clock = new ManualClock(at);
  const m = await open(clock);
  m.accepted(2);
  m.delivered('outLocal', 2);
  await clock.advance(MINUTE_MS); // the minute's flush (its write is LevelDB's real I/O)
  await written(db, '2026-01-05T10');
  m.accepted(1); // counted after the flush: a crash now loses it
  const afterCrash = await open(new ManualClock(clock.now()));
  assert.deepEqual(afterCrash.window().hours.at(-1), { start: '2026-01-05T10:00:00.000Z', in: 1, inRecipients: 2, outLocal: 2, outRemote: 0, failed: 0, out: 2 });
  await afterCrash.stop();
  // A clean stop writes everything counted.
  await m.stop();
  const restarted = await open(new ManualClock(clock.now()));
  assert.equal(restarted.window().hours.at(-1)!.in, 2);
  assert.deepEqual(await keys(db), ['2026-01-05T10']);
  assert.deepEqual(errors, []);
  await restarted.stop();
});

test('hours older than 32 days are pruned, in memory and on disk; malformed records are dropped at start', async (t) => {
  const { db, open } = await store(t);
  const clock = new ManualClock(Date.parse('2026-01-05T10:00:00Z'));
  const m = await open(clock);
  m.accepted(1);
  await clock.advance(DAY_MS);
  m.accepted(1);
  await m.flush();
  assert.deepEqual(await keys(db), ['2026-01-05T10', '2026-01-06T10']);
  await clock.advance(KEEP_DAYS * DAY_MS - HOUR_MS); // the first hour is now older than 32 days
  await m.flush();
  assert.deepEqual(await keys(db), ['2026-01-06T10']);
  await m.stop();
  // Records that cannot be counts (a stray key, negative or non-numeric values) are deleted.
  const raw = sublevel(db, TRAFFIC_SUBLEVEL);
  await raw.put('../../x', { in: 1 });
  await raw.put('2026-02-01T00', { in: -5, inRecipients: 0, outLocal: 0, outRemote: 0, failed: 0 });
  await raw.put('2026-02-01T01', 'lots');
  // (Read back at a time when the kept hour is still in the 30-day window.)
  const again = await open(new ManualClock(Date.parse('2026-01-07T00:00:00Z')));
  assert.deepEqual(await keys(db), ['2026-01-06T10']);
  assert.deepEqual(again.window().days.filter((d) => d.in > 0).map((d) => [d.date, d.in]), [['2026-01-06', 1]]);
  await again.stop();
});

test('nothing counted, nothing written: an idle box does not write once a minute', async (t) => {
  const { db, open } = await store(t);
  const clock = new ManualClock(Date.parse('2026-01-05T10:00:00Z'));
  const m = await open(clock);
  await clock.advance(10 * MINUTE_MS);
  await m.flush();
  assert.deepEqual(await keys(db), []);
  const w = m.window();
  assert.equal(w.hours.length, 24);
  assert.equal(w.days.length, 30);
  await m.stop();
});
