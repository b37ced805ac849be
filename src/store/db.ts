import { join } from 'node:path';
import { Level } from 'level';

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

/** A LevelDB database; each owner takes its own sublevel. */
export async function openDb(path: string): Promise<Db> {
  const db = new Level<string, unknown>(path, { valueEncoding: 'json' });
  try {
    await db.open();
  } catch (err) {
    // level's own message ("Database failed to open") hides the reason in its cause.
    const cause = (err as { cause?: Error }).cause?.message;
    throw new Error(`database ${path}: cannot open${cause ? `: ${cause}` : ''}`);
  }
  return db;
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
  constructor(private readonly db: Db) {}

  private lazy: { ops: BatchOp[]; resolve: () => void; reject: (e: unknown) => void }[] = [];

  /**
   * A write without an fsync of its own; it becomes durable with the next synced batch.
   * Only for records whose loss in a crash causes a redelivery, never a loss. Lazy writes
   * made in the same turn of the event loop go to LevelDB as one batch.
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
        for (const g of group) g.resolve();
      } catch (err) {
        for (const g of group) g.reject(err);
      }
    }
    this.flushing = false;
  }
}
