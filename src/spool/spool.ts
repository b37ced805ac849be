import { open, mkdir, unlink, readdir, statfs, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Db, GroupCommitter, BatchOp } from '../store/db.js';
import type { DirSyncer } from '../store/atomic.js';
import type { Logger } from '../log/logger.js';

/** The envelope of record, stored beside the data file. */
export interface Envelope {
  id: string;
  from: string;
  rcpt: string[];
  clientIp: string;
  login: string | null;
  listener: string;
  received: string;
  size: number;
}

/**
 * Something that must also hold the message before the client hears 250 (the HA peer,
 * in a later issue). It runs after the local write is durable; if it throws, the
 * commit fails and the client gets a 4xx.
 */
export type CommitHook = (env: Envelope, dataPath: string) => Promise<void>;

export class SpoolError extends Error {
  constructor(readonly kind: 'full' | 'io', message: string) {
    super(message);
  }
}

export const SPOOL_SUBLEVEL = 'spool';

/** A message being received: data goes to its file as it arrives; `commit` makes it durable. */
export class Incoming {
  private bytes = 0;
  /** Set once the envelope record is durable: from then on the file belongs to the spool. */
  committed = false;
  private constructor(
    readonly id: string,
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  static async create(dir: string): Promise<Incoming> {
    const id = newMessageId();
    const path = join(dir, `${id}.eml`);
    const fh = await open(path, 'wx', 0o600);
    return new Incoming(id, path, fh);
  }

  get size(): number {
    return this.bytes;
  }

  async write(chunk: Buffer | string): Promise<void> {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    await this.fh.write(buf).catch((err) => {
      throw toSpoolError(err);
    });
    this.bytes += buf.length;
  }

  async writeStream(stream: Readable, onChunk?: (chunk: Buffer) => void): Promise<void> {
    for await (const chunk of stream) {
      onChunk?.(chunk as Buffer);
      await this.write(chunk as Buffer);
    }
  }

  async syncAndClose(): Promise<void> {
    await this.fh.sync().catch((err) => {
      throw toSpoolError(err);
    });
    await this.fh.close();
  }

  async discard(): Promise<void> {
    if (this.committed) return;
    await this.fh.close().catch(() => undefined);
    await unlink(this.path).catch(() => undefined);
  }
}

/** Sortable, unique, filesystem-safe: time in base36 then random bits. */
export function newMessageId(): string {
  return Date.now().toString(36).toUpperCase().padStart(9, '0') + randomBytes(5).toString('hex').toUpperCase();
}

/**
 * The durable message store. `commit()` is the single place a message becomes ours:
 * data file fsynced, directory entry fsynced, envelope record written with a synced
 * LevelDB batch (shared by concurrent commits), then every commit hook. Only after
 * that may the SMTP layer answer 250.
 */
export class Spool {
  readonly dir: string;
  private readonly hooks: CommitHook[] = [];

  constructor(
    dataDir: string,
    private readonly db: Db,
    private readonly group: GroupCommitter,
    private readonly dirs: DirSyncer,
    private readonly log: Logger,
    private readonly minFreeBytes: () => number,
  ) {
    this.dir = join(dataDir, 'spool');
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  addCommitHook(hook: CommitHook): void {
    this.hooks.push(hook);
  }

  /** False when the data disk is below its reserve; new mail is then refused with 452. */
  async hasRoom(): Promise<boolean> {
    const s = await statfs(this.dir);
    return s.bavail * s.bsize >= this.minFreeBytes();
  }

  begin(): Promise<Incoming> {
    return Incoming.create(this.dir).catch((err) => {
      throw toSpoolError(err);
    });
  }

  dataPath(id: string): string {
    return join(this.dir, `${id}.eml`);
  }

  async commit(msg: Incoming, env: Envelope, extraOps: BatchOp[] = []): Promise<void> {
    try {
      await msg.syncAndClose();
      await this.dirs.sync(this.dir);
      await this.group.write([{ type: 'put', sublevel: SPOOL_SUBLEVEL, key: env.id, value: env }, ...extraOps]);
      msg.committed = true;
    } catch (err) {
      await msg.discard();
      throw toSpoolError(err);
    }
    // A hook that fails makes the client retry (4xx); the local copy stays and is routed,
    // so the worst case is a duplicate, never a loss.
    for (const hook of this.hooks) await hook(env, msg.path);
  }

  /** Envelopes committed but not yet fully routed (for recovery at start). */
  async pending(): Promise<Envelope[]> {
    const out: Envelope[] = [];
    for await (const v of this.db.sublevel<string, Envelope>(SPOOL_SUBLEVEL, { valueEncoding: 'json' }).values()) out.push(v);
    return out;
  }

  /**
   * Removes data files that no record refers to: messages whose commit never completed
   * (never acknowledged) or whose routing finished before the file was unlinked.
   */
  async sweepOrphans(isReferenced: (id: string) => Promise<boolean>): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith('.eml')) continue;
      const id = name.slice(0, -4);
      if (await isReferenced(id)) continue;
      await unlink(join(this.dir, name)).catch(() => undefined);
      removed++;
    }
    if (removed) this.log.info({ evt: 'spool.sweep', removed }, 'removed unreferenced spool files');
    return removed;
  }
}

export function toSpoolError(err: unknown): SpoolError {
  if (err instanceof SpoolError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  // LevelDB reports a full disk only in its message text ("IO error: ... No space left on device").
  if (code === 'ENOSPC' || code === 'EDQUOT' || /No space left/i.test((err as Error).message ?? '')) {
    return new SpoolError('full', 'data disk full');
  }
  return new SpoolError('io', (err as Error).message);
}
