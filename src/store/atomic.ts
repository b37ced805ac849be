import { open, rename, mkdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, basename, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

/** fsync a directory so that entries created or renamed in it survive a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * mkdir -p that survives a power cut: a new directory is only an entry in its parent until
 * the parent is fsynced, so the parent of every directory this call created is synced
 * (each once). Directories that already existed cost nothing. Several paths may share
 * ancestors (a Maildir's tmp, new and cur).
 */
export async function mkdirDurable(dirs: string | string[], mode: number | undefined, sync: (dir: string) => Promise<void> = fsyncDir): Promise<void> {
  const parents = new Set<string>();
  for (const dir of typeof dirs === 'string' ? [dirs] : dirs) {
    const first = await mkdir(dir, mode === undefined ? { recursive: true } : { recursive: true, mode });
    if (first === undefined) continue;
    // mkdir returns the topmost directory it made: it and everything below it down to `dir` are new.
    for (let d = resolve(dir); ; d = dirname(d)) {
      parents.add(dirname(d));
      if (d === resolve(first) || d === dirname(d)) break;
    }
  }
  await Promise.all([...parents].map((p) => sync(p)));
}

/**
 * Coalesces directory fsyncs: concurrent callers for one directory share a sync that
 * starts after their own entries were made (group commit for directory entries). The
 * directories synced most often (the spool, busy mailboxes) stay open, so a sync costs
 * no open/close.
 */
export class DirSyncer {
  private readonly state = new Map<string, { running: Promise<void> | null; next: Promise<void> | null }>();
  private readonly handles = new Map<string, Promise<FileHandle>>();

  constructor(private readonly maxOpen = 128) {}

  private handle(dir: string): Promise<FileHandle> {
    let h = this.handles.get(dir);
    if (h) {
      // Most recently used last, so the first entry is the one to close when full.
      this.handles.delete(dir);
      this.handles.set(dir, h);
      return h;
    }
    h = open(dir, 'r');
    h.catch(() => this.handles.delete(dir));
    this.handles.set(dir, h);
    if (this.handles.size > this.maxOpen) {
      const [oldest, fh] = this.handles.entries().next().value as [string, Promise<FileHandle>];
      this.handles.delete(oldest);
      // Closed only after any sync in flight on it is done.
      void (this.state.get(oldest)?.running ?? Promise.resolve()).then(() => fh.then((f) => f.close())).catch(() => undefined);
    }
    return h;
  }

  private async syncOnce(dir: string): Promise<void> {
    await (await this.handle(dir)).sync();
  }

  sync(dir: string): Promise<void> {
    let s = this.state.get(dir);
    if (!s) {
      s = { running: null, next: null };
      this.state.set(dir, s);
    }
    const st = s;
    if (!st.running) {
      st.running = this.syncOnce(dir).finally(() => {
        st.running = null;
        if (!st.next) this.state.delete(dir);
      });
      return st.running;
    }
    // A sync is in flight but may have started before our entry existed: join the next one.
    if (!st.next) {
      st.next = st.running.catch(() => undefined).then(() => {
        st.next = null;
        return this.sync(dir);
      });
    }
    return st.next;
  }

  async close(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(all.map((h) => h.then((f) => f.close()).catch(() => undefined)));
  }
}

/**
 * Durable write: temp file, fsync, rename, fsync the directory (through `dirs` when given,
 * so concurrent writers into one folder share the folder's fsync).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600, dirs?: DirSyncer): Promise<void> {
  const dir = dirname(path);
  await mkdirDurable(dir, 0o700, dirs ? (d) => dirs.sync(d) : fsyncDir);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
  await (dirs ? dirs.sync(dir) : fsyncDir(dir));
}

