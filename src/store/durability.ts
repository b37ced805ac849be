import { join } from 'node:path';
import type { BatchOp, GroupCommitter, WriteOptions } from './db.js';
import { writeFileAtomic, type DirSyncer } from './atomic.js';
import type { DataRegistry } from './data.js';

/** What a commit hands the seam: the envelope record and the message data. */
export interface MessageCommit {
  id: string;
  /** The envelope (the record of the committed-message sublevel). */
  env: unknown;
  /** The data file, and its bytes when the message fitted in memory. */
  dataPath: string;
  body: Buffer[] | null;
  /** Settles when the local copy and its record are durable (or failed). */
  localDurable: Promise<void>;
  /**
   * Records of other stores written in the commit's own batch (a commit tap's: the archive
   * intake). They travel with the message, so the replica writes them in its batch too and
   * has them before the client gets its 250; a record that names a file of the same key
   * gets it as a hard link of the replica's copy of the message.
   */
  ops?: BatchOp[];
}

/**
 * The one way a capability makes its data durable: every store (spool, queue, quarantine,
 * mailboxes, counters, and every later one) writes through it. The local implementation
 * writes; the HA one (ha/durability.ts) also mirrors what the owners declared to the
 * standby. Writers name only their own declared sublevels and folders.
 */
export interface Durability {
  readonly data: DataRegistry;
  /** A synced batch (group commit: concurrent writers share one fsync). */
  write(ops: BatchOp[], o?: WriteOptions): Promise<void>;
  /** A batch durable with the next synced one: only where a loss redelivers, never loses. */
  writeLazy(ops: BatchOp[], o?: WriteOptions): Promise<void>;
  /**
   * A message is being committed: the replica's copy is made beside the local fsync. It
   * resolves when the replica holds it (at once with no replica), and rejects when the
   * commit must not be acknowledged.
   */
  commitMessage(c: MessageCommit): Promise<void>;
  /** Writes a file durably under a declared folder (temp, fsync, rename, fsync folder). */
  writeFile(rel: string, data: Buffer, mode?: number): Promise<void>;
  /**
   * A file its owner wrote durably itself under a declared folder (a mailbox copy); for a
   * copy of a committed message, which one and the header lines put in front of it.
   */
  fileWritten(rel: string, source?: { messageId: string; prefix: string }): void;
  /** Config-dir files changed; resolves once the replica has them. */
  configChanged(): Promise<void>;
}

/** What a store that only writes records needs of the seam. */
export type RecordWriter = Pick<Durability, 'write' | 'writeLazy'>;

/** One box on its own: writes, and nothing to mirror. */
export class LocalDurability implements Durability {
  constructor(
    readonly data: DataRegistry,
    private readonly group: GroupCommitter,
    private readonly dirs: DirSyncer,
    private readonly dataDir: string,
  ) {}

  private check(ops: BatchOp[]): void {
    for (const o of ops) this.data.sublevel(o.sublevel);
  }

  write(ops: BatchOp[], o?: WriteOptions): Promise<void> {
    this.check(ops);
    return this.group.write(ops, o);
  }

  writeLazy(ops: BatchOp[], o?: WriteOptions): Promise<void> {
    this.check(ops);
    return this.group.writeLazy(ops, o);
  }

  commitMessage(_c: MessageCommit): Promise<void> {
    return Promise.resolve();
  }

  writeFile(rel: string, data: Buffer, mode = 0o600): Promise<void> {
    return writeFileAtomic(join(this.dataDir, this.data.safeRel(rel, false)), data, mode, this.dirs);
  }

  fileWritten(): void {}

  configChanged(): Promise<void> {
    return Promise.resolve();
  }
}
