import type { BatchOp, WriteOptions } from '../store/db.js';
import type { Durability, LocalDurability, MessageCommit } from '../store/durability.js';
import type { Replicator } from './replicator.js';

/**
 * The durability seam of a box in an HA pair: every write is made locally, then mirrored
 * by the replicator to an in-sync standby when this box is active (it ignores them
 * otherwise). What is mirrored is what the owners declared; nothing here names a store.
 */
export class HaDurability implements Durability {
  constructor(
    private readonly local: LocalDurability,
    private readonly replicator: Replicator,
  ) {}

  get data() {
    return this.local.data;
  }

  async write(ops: BatchOp[], o?: WriteOptions): Promise<void> {
    await this.local.write(ops, o);
    if (o?.replicate !== false) this.replicator.ops(ops);
    else if (o.mirror?.length) this.replicator.ops(o.mirror);
  }

  async writeLazy(ops: BatchOp[], o?: WriteOptions): Promise<void> {
    await this.local.writeLazy(ops, o);
    if (o?.replicate !== false) this.replicator.ops(ops);
    else if (o.mirror?.length) this.replicator.ops(o.mirror);
  }

  commitMessage(c: MessageCommit): Promise<void> {
    return this.replicator.commit(c);
  }

  async writeFile(rel: string, data: Buffer, mode?: number): Promise<void> {
    await this.local.writeFile(rel, data, mode);
    if (this.local.data.folderOf(rel)?.replicate) this.replicator.file(rel);
  }

  fileWritten(rel: string, source?: { messageId: string; prefix: string }): void {
    if (this.local.data.folderOf(rel)?.replicate) this.replicator.delivered(rel, source);
  }

  configChanged(): Promise<void> {
    return this.replicator.configChanged();
  }
}
