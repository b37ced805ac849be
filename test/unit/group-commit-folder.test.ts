import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GroupCommitter, openDb } from '../../src/store/db.js';
import { DirSyncer } from '../../src/store/atomic.js';

/** A DirSyncer that counts the syncs of each folder. */
class CountingDirSyncer extends DirSyncer {
  readonly synced: string[] = [];
  override sync(dir: string): Promise<void> {
    this.synced.push(dir);
    return super.sync(dir);
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const put = (key: string) => [{ type: 'put' as const, sublevel: 't', key, value: key }];

test('a synced batch syncs the database folder when a name in it changed, and not otherwise', async () => {
  const root = await mkdtemp(join(tmpdir(), 'mlsd-group-'));
  const db = await openDb(join(root, 'db'));
  try {
    const dirs = new CountingDirSyncer();
    const group = new GroupCommitter(db, dirs);
    await group.write(put('a'));
    assert.equal(dirs.synced.length, 1, 'the first batch: the folder was never synced by this committer');
    // Nothing in the folder changes: once the stamp is older than the last sync, no more syncs.
    await pause(120);
    await group.write(put('b'));
    const settled = dirs.synced.length;
    await pause(120);
    for (let i = 0; i < 5; i++) await group.write(put(`c${i}`));
    assert.equal(dirs.synced.length, settled, 'no folder sync while nothing in it changed');
    // A new file in the folder (as LevelDB's next log file): the next batch syncs the folder.
    await writeFile(join(db.location, '000099.log'), '');
    await group.write(put('d'));
    assert.equal(dirs.synced.length, settled + 1, 'the new name is synced with the next batch');
    assert.ok(dirs.synced.every((d) => d === db.location));
    await dirs.close();
  } finally {
    await db.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('openDb makes a database only where none was: a file, or a folder with data but no CURRENT, is refused and kept', async () => {
  const root = await mkdtemp(join(tmpdir(), 'mlsd-opendb-'));
  try {
    await writeFile(join(root, 'file'), 'not a database');
    await assert.rejects(openDb(join(root, 'file')), /database .*file: not a folder; move it aside/);
    await mkdir(join(root, 'lost-current'));
    await writeFile(join(root, 'lost-current', '000005.log'), 'records');
    await assert.rejects(openDb(join(root, 'lost-current')), /no CURRENT file, but 000005\.log holds data/);
    assert.equal(await readFile(join(root, 'lost-current', '000005.log'), 'utf8'), 'records', 'nothing of it removed');
    // A folder that never held a write (a cut during the old creation: an empty MANIFEST) is made anew.
    await mkdir(join(root, 'never-written'));
    await writeFile(join(root, 'never-written', 'MANIFEST-000001'), '');
    const db = await openDb(join(root, 'never-written'));
    await db.put('k', 'v');
    assert.equal(await db.get('k'), 'v');
    await db.close();
    assert.deepEqual((await readdir(root)).sort(), ['file', 'lost-current', 'never-written'], 'no db.new left behind');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
