import { open, unlink, readdir, statfs, link, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { sublevel, type Db, type BatchOp } from '../store/db.js';
import { mkdirDurable, type DirSyncer } from '../store/atomic.js';
import type { DataDecl } from '../store/data.js';
import type { Durability } from '../store/durability.js';
import type { Logger } from '../log/logger.js';
import type { ScanVerdict } from '../policy/types.js';

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
  /** The Subject header as received (evidence in alerts; never used for routing). */
  subject?: string;
  /** The scanners' decision, when it is not plain delivery (kept so recovery honours it). */
  scan?: ScanVerdict;
  /** Header fields put in front of the message on delivery (X-Spam-* verdicts). */
  addHeaders?: string;
  /** Set on mail mlsd writes itself (bounces, alerts): it is signed like a login's mail. */
  origin?: 'mlsd';
}

/**
 * Told of each message as it is committed: a path under the data dir (a declared folder)
 * that is made a hard link of the message's file before the commit's batch, and records
 * written in that batch. Null: not this one.
 */
export type CommitTap = (env: Envelope) => { link: string; ops: BatchOp[] } | null;

export class SpoolError extends Error {
  constructor(readonly kind: 'full' | 'io', message: string) {
    super(message);
  }
}

export const SPOOL_SUBLEVEL = 'spool';
const SPOOL_FOLDER = 'spool';

/** The spool's data: committed messages not yet routed, one file and one envelope record each. */
export const SPOOL_DATA: DataDecl = {
  owner: 'spool',
  sublevels: [
    {
      name: SPOOL_SUBLEVEL,
      describe: 'envelopes of committed messages not yet routed',
      replicate: true,
      messages: true,
      file: (id) => `${SPOOL_FOLDER}/${id}.eml`,
      // Mail the stepping-down box accepted alone is routed by the active.
      merge: () => true,
    },
  ],
  folders: [{ path: SPOOL_FOLDER, describe: 'message files of the spool and the outbound queue', replicate: true }],
};

/**
 * Incoming data is copied into one buffer of this size and written when it is full: each
 * file write is a trip through libuv's thread pool, and holding the socket's chunks
 * instead would keep alive the 64 KiB read slabs they are slices of.
 */
const WRITE_BATCH_BYTES = 64 * 1024;

/** A message being received: data goes to its file as it arrives; `commit` makes it durable. */
export class Incoming {
  private bytes = 0;
  private acc: Buffer | null = null;
  private accLen = 0;
  private wroteEarly = false;
  private whole: Buffer[] | null = null;
  /** Set once the envelope record is durable: from then on the file belongs to the spool. */
  committed = false;
  private constructor(
    readonly id: string,
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly mapError: (err: unknown) => SpoolError,
  ) {}

  static async create(dir: string, mapError: (err: unknown) => SpoolError): Promise<Incoming> {
    const id = newMessageId();
    const path = join(dir, `${id}.eml`);
    // Read-write: the scanners read a large message back before it is committed.
    const fh = await open(path, 'wx+', 0o600);
    return new Incoming(id, path, fh, mapError);
  }

  get size(): number {
    return this.bytes;
  }

  /** The whole message, when it fitted in one write batch (null otherwise). */
  get body(): Buffer[] | null {
    return this.whole;
  }

  /** The whole message as received so far (for the scanners, before commit). */
  async contents(): Promise<Buffer> {
    if (!this.wroteEarly) return this.acc ? Buffer.from(this.acc.subarray(0, this.accLen)) : Buffer.alloc(0);
    await this.flush();
    const out = Buffer.allocUnsafe(this.bytes);
    let off = 0;
    while (off < this.bytes) {
      const { bytesRead } = await this.fh.read(out, off, this.bytes - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return out.subarray(0, off);
  }

  async write(chunk: Buffer | string): Promise<void> {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.bytes += buf.length;
    while (buf.length > 0) {
      this.acc ??= Buffer.allocUnsafeSlow(WRITE_BATCH_BYTES);
      const n = buf.copy(this.acc, this.accLen);
      this.accLen += n;
      buf = buf.subarray(n);
      if (this.accLen === WRITE_BATCH_BYTES) {
        this.wroteEarly = true;
        await this.flush();
      }
    }
  }

  private async flush(): Promise<void> {
    if (!this.acc || this.accLen === 0) return;
    const len = this.accLen;
    this.accLen = 0;
    // Awaited before the buffer is filled again, so reusing it is safe.
    await this.fh.write(this.acc, 0, len).catch((err) => {
      throw this.mapError(err);
    });
  }

  /**
   * Copies the DATA stream into the file. After a write error the stream is still read to
   * its end (and thrown away), so the SMTP session stays in step and can get its 4xx;
   * leaving the loop early would destroy the stream and hang the session.
   *
   * `admit` is asked before each chunk is stored; when it names a reason to stop (the size
   * limit, the in-flight budget), nothing more is stored, the partial file is removed at
   * once, the rest of the stream is read and dropped, and the reason is returned.
   */
  async writeStream<R extends string>(stream: Readable, onChunk?: (chunk: Buffer) => void, admit?: (chunk: Buffer) => R | null, onReceived?: () => void): Promise<R | null> {
    let failure: unknown = null;
    let stopped: R | null = null;
    for await (const chunk of stream) {
      // Every chunk received, kept or not (the client is still sending).
      onReceived?.();
      if (failure || stopped) continue;
      stopped = admit?.(chunk as Buffer) ?? null;
      if (stopped) {
        await this.abandon();
        continue;
      }
      onChunk?.(chunk as Buffer);
      try {
        await this.write(chunk as Buffer);
      } catch (err) {
        failure = err;
      }
    }
    if (failure) throw failure;
    return stopped;
  }

  /** Drops what was received: the buffer, and the partial file (closed and unlinked). */
  private async abandon(): Promise<void> {
    this.acc = null;
    this.accLen = 0;
    await this.discard();
  }

  private finished = false;

  /** Writes what is still buffered: the file then holds the whole message, not yet durably. */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    // A message that fits in one batch is kept (an exact-size copy) for the router's
    // mailbox copies, which then need not read the file back.
    if (!this.wroteEarly && this.acc) this.whole = [Buffer.from(this.acc.subarray(0, this.accLen))];
    await this.flush();
    this.acc = null;
  }

  async syncAndClose(): Promise<void> {
    await this.finish();
    await this.fh.sync().catch((err) => {
      throw this.mapError(err);
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
 * LevelDB batch (shared by concurrent commits), then the replica's copy (HA). Only after
 * that may the SMTP layer answer 250.
 */
export class Spool {
  readonly dir: string;

  constructor(
    private readonly dataDir: string,
    private readonly db: Db,
    private readonly durability: Durability,
    private readonly dirs: DirSyncer,
    private readonly log: Logger,
    private readonly minFreeBytes: () => number,
  ) {
    this.dir = join(dataDir, SPOOL_FOLDER);
  }

  async init(): Promise<void> {
    // A new spool folder (first start, a new data disk) is synced into its parent.
    await mkdirDurable(this.dir, undefined, (d) => this.dirs.sync(d));
  }

  /**
   * False when the data disk is below its reserve; new mail is then refused with 452.
   * The free space is read at most once a second (a statfs per MAIL costs a thread-pool
   * trip), and forgotten as soon as a write finds the disk full.
   */
  async hasRoom(): Promise<boolean> {
    const now = Date.now();
    if (!this.free || now - this.free.at > 1000) {
      const s = await statfs(this.dir);
      this.free = { at: now, bytes: s.bavail * s.bsize };
    }
    return this.free.bytes >= this.minFreeBytes() && this.free.bytes > 0;
  }

  private free: { at: number; bytes: number } | null = null;

  private noteError(err: unknown): SpoolError {
    const e = toSpoolError(err);
    if (e.kind === 'full') this.free = { at: Date.now(), bytes: 0 };
    return e;
  }

  begin(): Promise<Incoming> {
    return Incoming.create(this.dir, (err) => this.noteError(err)).catch((err) => {
      throw this.noteError(err);
    });
  }

  dataPath(id: string): string {
    return join(this.dir, `${id}.eml`);
  }

  private tap: CommitTap | null = null;

  /** Another store takes every committed message in the same batch as the commit (the archive's intake). */
  setCommitTap(tap: CommitTap | null): void {
    this.tap = tap;
  }

  async commit(msg: Incoming, env: Envelope, extraOps: BatchOp[] = []): Promise<void> {
    // The replica's copy (the HA standby's) is made while our own copy is made durable: the
    // client waits for the slower of the two, not for both in turn. Its outcome is judged after.
    let replica: Promise<unknown> | null = null;
    let durable!: () => void;
    let notDurable!: (err: unknown) => void;
    const localDurable = new Promise<void>((resolve, reject) => {
      durable = resolve;
      notDurable = reject;
    });
    localDurable.catch(() => undefined);
    let tapped: { path: string; ops: BatchOp[] } | null = null;
    try {
      await msg.finish();
      const tap = this.tap?.(env) ?? null;
      if (tap) tapped = { path: join(this.dataDir, this.durability.data.safeRel(tap.link, false)), ops: tap.ops };
      replica = this.durability.commitMessage({ id: env.id, env, dataPath: msg.path, body: msg.body, localDurable, ...(tapped ? { ops: tapped.ops } : {}) }).then(() => null, (err: unknown) => err ?? new Error('replica commit failed'));
      // A second name for the same file, so the tap's store keeps the bytes after routing lets go of them.
      if (tapped) await link(msg.path, tapped.path);
      // The file's entries were made before, so their directory syncs may run beside the
      // file's own fsync; the envelope record is written only after all are durable.
      await Promise.all([msg.syncAndClose(), this.dirs.sync(this.dir), tapped ? this.dirs.sync(dirname(tapped.path)) : null]);
      // Not mirrored as records: commitMessage sends the replica the envelope and the tap's
      // records with the data; the replica links the tap's file from its copy of the message.
      const ops: BatchOp[] = [{ type: 'put', sublevel: SPOOL_SUBLEVEL, key: env.id, value: env }, ...extraOps, ...(tapped?.ops ?? [])];
      await this.durability.write(ops, { replicate: false });
      msg.committed = true;
      durable();
    } catch (err) {
      notDurable(err);
      await replica;
      if (tapped) await unlink(tapped.path).catch(() => undefined);
      await msg.discard();
      throw this.noteError(err);
    }
    // A replica that fails makes the client retry (4xx); the local copy stays and is routed,
    // so the worst case is a duplicate, never a loss. The replica may instead ask for the
    // commit to be taken back (HA with onPeerLost tempfail: nothing on one disk only).
    const failed = await replica;
    if (failed) {
      if ((failed as { undoCommit?: boolean }).undoCommit) {
        const undoTap: BatchOp[] = (tapped?.ops ?? []).map((o) => ({ type: 'del', sublevel: o.sublevel, key: o.key }));
        await this.durability.write([{ type: 'del', sublevel: SPOOL_SUBLEVEL, key: env.id }, ...undoTap], { replicate: false, mirror: undoTap });
        await unlink(msg.path).catch(() => undefined);
        if (tapped) await unlink(tapped.path).catch(() => undefined);
        msg.committed = false;
      }
      throw failed;
    }
  }

  /**
   * Takes a message back into the spool from another store of ours (a quarantine release):
   * the file is hard-linked in, then the spool record and `extraOps` (the other store
   * letting go) are written in one synced batch. A crash before the batch leaves the
   * message where it was.
   */
  async adopt(env: Envelope, fromPath: string, extraOps: BatchOp[] = []): Promise<void> {
    try {
      await link(fromPath, this.dataPath(env.id)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
      await this.dirs.sync(this.dir);
      await this.durability.write([{ type: 'put', sublevel: SPOOL_SUBLEVEL, key: env.id, value: env }, ...extraOps]);
    } catch (err) {
      throw this.noteError(err);
    }
  }

  /** The envelope record of a message held in the spool. */
  recordOp(env: Envelope): BatchOp {
    return { type: 'put', sublevel: SPOOL_SUBLEVEL, key: env.id, value: env };
  }

  /**
   * Takes in a message whose bytes came from elsewhere (the other box of an HA pair): its
   * file durably into the spool folder, then `ops` (its record, or the queue's).
   */
  async takeIn(id: string, body: Buffer, ops: BatchOp[]): Promise<void> {
    await this.durability.writeFile(`${SPOOL_FOLDER}/${id}.eml`, body);
    await this.durability.write(ops);
  }

  /** The record change that lets go of a message (another store took it, or it was dropped). */
  removeOp(id: string): BatchOp {
    return { type: 'del', sublevel: SPOOL_SUBLEVEL, key: id };
  }

  async has(id: string): Promise<boolean> {
    return (await sublevel(this.db, SPOOL_SUBLEVEL).get(id)) != null;
  }

  /** Envelopes committed but not yet fully routed (for recovery at start). */
  async pending(): Promise<Envelope[]> {
    const out: Envelope[] = [];
    for await (const v of sublevel(this.db, SPOOL_SUBLEVEL).values()) out.push(v as Envelope);
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

function toSpoolError(err: unknown): SpoolError {
  if (err instanceof SpoolError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  // LevelDB reports a full disk only in its message text ("IO error: ... No space left on device").
  if (code === 'ENOSPC' || code === 'EDQUOT' || /No space left/i.test((err as Error).message ?? '')) {
    return new SpoolError('full', 'data disk full');
  }
  return new SpoolError('io', (err as Error).message);
}
