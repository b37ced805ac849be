import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DataDecl } from '../store/data.js';
import { writeFileAtomic } from '../store/atomic.js';
import type { DiskIdentity } from '../hw/disks.js';

const FILE = 'data-disk.json';

/**
 * The last data disk this box saw lives on the system flash (the config dir): the data disk
 * is the thing that gets replaced, so what it was must survive it. It is this box's own: an
 * HA peer has its own disk, so the file is never sent to it.
 */
export const DISK_DATA: DataDecl = {
  owner: 'disk',
  configFiles: [{ pattern: /^data-disk\.json$/, describe: "the identity of this box's last data disk seen (model, serial, WWN)", replicate: false, mode: 0o600 }],
};

/** Where the monitor keeps the identity between runs (a disk swapped with the box off is then noticed). */
export interface KnownDiskStore {
  /** null: never recorded (the first start), or a file that cannot be read (said in the message). */
  load(): Promise<{ identity: DiskIdentity | null; problem?: string }>;
  save(identity: DiskIdentity): Promise<void>;
}

const text = (v: unknown): string | null => (typeof v === 'string' && v.length <= 256 ? v : null);

/** Reads what was written; anything else (a hand-edited or torn file) is no identity, with the reason. */
export function parseIdentity(raw: string): DiskIdentity | string {
  let j: unknown;
  try {
    j = JSON.parse(raw);
  } catch {
    return 'not JSON';
  }
  const o = (j && typeof j === 'object' ? j : {}) as Record<string, unknown>;
  const [model, serial, wwn] = [text(o.model), text(o.serial), text(o.wwn ?? '')];
  if (!model || serial === null || wwn === null) return 'no model/serial';
  return { model, serial, wwn };
}

export function configDirIdentityStore(configDir: string, now: () => number): KnownDiskStore {
  const path = join(configDir, FILE);
  return {
    async load() {
      let raw: string;
      try {
        raw = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { identity: null };
        return { identity: null, problem: `${path}: ${(err as Error).message}` };
      }
      const parsed = parseIdentity(raw);
      return typeof parsed === 'string' ? { identity: null, problem: `${path}: ${parsed}` } : { identity: parsed };
    },
    async save(identity) {
      const doc = { model: identity.model, serial: identity.serial, wwn: identity.wwn, seenAt: new Date(now()).toISOString() };
      await writeFileAtomic(path, JSON.stringify(doc, null, 2) + '\n', 0o600);
    },
  };
}
