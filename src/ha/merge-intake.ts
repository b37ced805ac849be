import type { Logger } from '../log/logger.js';
import type { DataRegistry } from '../store/data.js';
import type { Durability } from '../store/durability.js';
import type { FrameHeader } from './wire.js';

/** How long a merging standby may take to hand over what only it has. */
const MERGE_TIMEOUT_MS = 600_000;

/**
 * The active box's side of a merge: after both boxes served alone, the one stepping down
 * hands over the records and files only it has, and each goes to its declared owner (a
 * record) or to its folder unless this box has it already (a file). One merge at a time;
 * it ends with the other box's 'merge-done', a failure, or a timeout.
 */
export class MergeIntake {
  private done: ((ok: boolean) => void) | null = null;
  private chain: Promise<void> = Promise.resolve();
  private taken = 0;
  private failed = false;

  constructor(
    private readonly d: {
      dataDir: string;
      data: DataRegistry;
      local: Durability;
      onMerged: (counts: Record<string, number>) => void;
      log: Logger;
    },
  ) {}

  /** Starts a merge; resolves true once everything offered was taken in (or was here already). */
  begin(): Promise<{ ok: boolean; failed: boolean }> {
    this.taken = 0;
    this.failed = false;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.done?.(false), MERGE_TIMEOUT_MS);
      this.done = (ok) => {
        clearTimeout(timer);
        this.done = null;
        resolve({ ok, failed: this.failed });
      };
    });
  }

  /** The merge in progress is called off (the session ended). */
  cancel(): void {
    this.done?.(false);
  }

  /** A merge frame of the current join, taken in the order received. */
  frame(h: FrameHeader, body: Buffer | null, stillCurrent: () => boolean): void {
    this.chain = this.chain.then(() => (stillCurrent() ? this.take(h, body) : undefined));
  }

  private async take(h: FrameHeader, body: Buffer | null): Promise<void> {
    if (h.t === 'merge-done') {
      this.d.log.info({ evt: 'ha.merge.done', ...(h.counts as object), taken: this.taken, failed: this.failed }, 'the other box handed over what it accepted alone');
      if (!this.failed) this.d.onMerged({ ...(h.counts as Record<string, number>), taken: this.taken });
      this.done?.(!this.failed);
      return;
    }
    const data = this.d.data;
    try {
      if (!body) throw new Error('merge item without data');
      let took = false;
      if (h.t === 'merge-record') took = await data.mergeRecord(h.sublevel as string, h.key as string, h.value, body);
      else if (h.t === 'merge-file') {
        const rel = h.rel as string;
        data.safeRel(rel);
        if (!data.isMergeableFile(rel)) throw new Error(`${rel} is not in a folder that takes merged files`);
        // Taken in unless this box has it already (perhaps moved or renamed by a mail client).
        if (!(await data.locate(this.d.dataDir, rel))) {
          await this.d.local.writeFile(rel, body);
          took = true;
        }
      } else throw new Error(`unknown merge frame ${h.t}`);
      if (took) this.taken++;
    } catch (err) {
      this.failed = true;
      this.d.log.error({ evt: 'ha.merge.fail', t: h.t, err: (err as Error).message }, 'could not take in an item; the other box keeps it and the join starts over');
    }
  }
}
