import { statSync } from 'node:fs';
import { lstat, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Level } from 'level';
import { fsyncDir, mkdirDurable, type DirSyncer } from './atomic.js';

export type Db = Level<string, unknown>;
const makeSublevel = (db: Db, name: string) => db.sublevel<string, unknown>(name, { valueEncoding: 'json' });
type Sublevel = ReturnType<typeof makeSublevel>;

const sublevels = new WeakMap<Db, Map<string, Sublevel>>();

/**
 * The sublevel of one owner, made once per database. abstract-level attaches every
 * sublevel object to its parent until the database closes, so making one per write
 * leaks memory (about 4 KB each).
 */
export function sublevel(db: Db, name: string): Sublevel {
  let byName = sublevels.get(db);
  if (!byName) sublevels.set(db, (byName = new Map()));
  let s = byName.get(name);
  if (!s) byName.set(name, (s = makeSublevel(db, name)));
  return s;
}

/** The LevelDB database of the data disk, in its own folder there. */
export function openDataDb(dataDir: string): Promise<Db> {
  return openDb(join(dataDir, 'db'));
}

/**
 * A LevelDB database; each owner takes its own sublevel. A new one is made durable before it
 * is used (see createDurably).
 */
export async function openDb(path: string): Promise<Db> {
  if (await needsCreating(path)) await createDurably(path);
  const db = new Level<string, unknown>(path, { valueEncoding: 'json' });
  try {
    await db.open();
  } catch (err) {
    throw levelError(path, 'cannot open', err);
  }
  return db;
}

/** A stat, or null when nothing is there (any other error is thrown: never taken for "absent"). */
const statOrNull = (stat_: Promise<Awaited<ReturnType<typeof stat>>>) =>
  stat_.catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : Promise.reject(err)));

/** level's own message ("Database failed to open") hides the reason in its cause. */
function levelError(path: string, what: string, err: unknown): Error {
  const cause = (err as { cause?: Error }).cause?.message;
  return new Error(`database ${path}: ${what}${cause ? `: ${cause}` : ''}`);
}

/**
 * True when there is no database at `path` yet: no folder, or one that never held a write
 * (no CURRENT, and none of LevelDB's data files with anything in them). A folder that lost its
 * CURRENT but has data, or anything that cannot be read, is refused rather than replaced.
 */
async function needsCreating(path: string): Promise<boolean> {
  const refuse = (why: string) => new Error(`database ${path}: ${why}; move it aside to start with an empty database`);
  const st = await statOrNull(lstat(path));
  if (!st) return true;
  if (!st.isDirectory()) throw refuse('not a folder');
  const current = await statOrNull(stat(join(path, 'CURRENT')));
  if (current) return false;
  for (const name of await readdir(path)) {
    if (!/^(MANIFEST-\d+|\d+\.(log|ldb|sst))$/.test(name)) continue;
    if ((await stat(join(path, name))).size > 0) throw refuse(`no CURRENT file, but ${name} holds data`);
  }
  return true;
}

/**
 * Makes a new, empty database whose first state survives a power cut. LevelDB 1.20 (what
 * classic-level builds) writes a new database's MANIFEST without an fsync, then a synced
 * CURRENT naming it, and syncs no folder: a power cut seconds after a blank data disk came
 * up left CURRENT naming an empty MANIFEST, and the database would not open again
 * ("Corruption: no meta-nextfile entry in descriptor"; seen on the power-cut filesystem).
 * So it is made beside its place, every file and the folder fsynced, then renamed in and
 * the parent synced. A cut before the rename leaves only the `.new` folder, made again next
 * time.
 */
async function createDurably(path: string): Promise<void> {
  const fresh = `${path}.new`;
  await rm(fresh, { recursive: true, force: true });
  await mkdirDurable(dirname(path), undefined);
  const db = new Level<string, unknown>(fresh, { valueEncoding: 'json' });
  try {
    await db.open();
    await db.close();
  } catch (err) {
    throw levelError(path, 'cannot create', err);
  }
  for (const name of await readdir(fresh)) {
    const fh = await open(join(fresh, name), 'r');
    await fh.sync().finally(() => fh.close());
  }
  await fsyncDir(fresh);
  await rm(path, { recursive: true, force: true });
  await rename(fresh, path);
  await fsyncDir(dirname(path));
}

/**
 * A synced write made outside GroupCommitter (a rare record that must not come back after a
 * power cut): it may be the first in a new log file, whose name only the folder's fsync makes
 * durable (see GroupCommitter).
 */
export async function syncedDbWrite(db: Db, write: () => Promise<void>): Promise<void> {
  await write();
  await fsyncDir(db.location);
}

export type BatchOp =
  | { type: 'put'; sublevel: string; key: string; value: unknown }
  | { type: 'del'; sublevel: string; key: string };

export interface WriteOptions {
  /** False for writes a replica already has: a commit's record (sent with its data), or one received from the peer. */
  replicate?: boolean;
  /** With replicate false: the ops of the batch that are mirrored all the same (a commit tap's records). */
  mirror?: BatchOp[];
}

/**
 * Group commit: writes that arrive while a synced batch is being written go together
 * into the next one, so N concurrent commits cost one fsync of the log, not N.
 */
export class GroupCommitter {
  private pending: { ops: BatchOp[]; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private flushing = false;
  /**
   * With `dirs`, a synced batch is followed by an fsync of the database's folder whenever an
   * entry in it may have changed. When LevelDB's memtable fills it starts a new log file and
   * fsyncs the writes that go there, but the new file's name is synced only with the next
   * MANIFEST write (a compaction, later): a power cut in between dropped the new log and every
   * acknowledged write in it (test/integration/powercut-leveldb.test.ts).
   */
  constructor(
    private readonly db: Db,
    private readonly dirs?: DirSyncer,
  ) {}

  /** The folder's change stamp (mtime/ctime) at its last sync, and when that sync started. */
  private folder = { stamp: '', syncStartedAt: 0 };

  /**
   * Syncs the database folder unless nothing in it changed since its last sync. A folder fsync
   * is not free even when nothing changed (on ext4 it still flushes the disk's cache), and
   * LevelDB makes a new file only every few MiB of writes. A folder's times are coarse (a
   * clock tick): a change in the same tick as the stamp read before the last sync would leave
   * the stamp as it was, so the stamp is trusted only once it is older than that sync's start
   * by more than a tick; any change after the sync started has a later time.
   */
  private async syncFolder(dirs: DirSyncer): Promise<void> {
    // On this thread: a folder's stat takes microseconds, and in the pool it would queue
    // behind the commits' fsyncs.
    const st = statSync(this.db.location, { bigint: true });
    const stamp = `${st.mtimeNs}/${st.ctimeNs}`;
    const changedAtMs = Number((st.ctimeNs > st.mtimeNs ? st.ctimeNs : st.mtimeNs) / 1_000_000n);
    if (stamp === this.folder.stamp && changedAtMs < this.folder.syncStartedAt - 50) return;
    const syncStartedAt = Date.now();
    await dirs.sync(this.db.location);
    this.folder = { stamp, syncStartedAt };
  }

  private lazy: { ops: BatchOp[]; resolve: () => void; reject: (e: unknown) => void }[] = [];

  /**
   * A write without an fsync of its own; it usually becomes durable with the next synced
   * batch, but not always: when LevelDB switches to a new log file it closes the old one
   * without an fsync, so a lazy write near its end can be lost while a later synced one in
   * the new file survives. Only for records whose loss in a crash causes a redelivery, never
   * a loss, and never for one a later synced record relies on. Lazy writes made in the same
   * turn of the event loop go to LevelDB as one batch.
   */
  writeLazy(ops: BatchOp[], _o?: WriteOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.lazy.push({ ops, resolve, reject }) === 1) setImmediate(() => void this.flushLazy());
    });
  }

  private async flushLazy(): Promise<void> {
    const group = this.lazy;
    this.lazy = [];
    try {
      await this.db.batch(this.toLevel(group.flatMap((g) => g.ops)), { sync: false });
      for (const g of group) g.resolve();
    } catch (err) {
      for (const g of group) g.reject(err);
    }
  }

  private toLevel(ops: BatchOp[]) {
    return ops.map((op) =>
      op.type === 'put'
        ? { type: 'put' as const, sublevel: sublevel(this.db, op.sublevel), key: op.key, value: op.value }
        : { type: 'del' as const, sublevel: sublevel(this.db, op.sublevel), key: op.key },
    );
  }

  write(ops: BatchOp[], _o?: WriteOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ ops, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.pending.length > 0) {
      const group = this.pending;
      this.pending = [];
      const ops = this.toLevel(group.flatMap((g) => g.ops));
      try {
        await this.db.batch(ops, { sync: true });
        if (this.dirs) await this.syncFolder(this.dirs);
        for (const g of group) g.resolve();
      } catch (err) {
        for (const g of group) g.reject(err);
      }
    }
    this.flushing = false;
  }
}
