import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, GroupCommitter, type Db } from '../../src/store/db.js';
import { DirSyncer } from '../../src/store/atomic.js';
import { DataRegistry } from '../../src/store/data.js';
import { LocalDurability } from '../../src/store/durability.js';
import { createLogger } from '../../src/log/logger.js';
import { deriveArchiveKeys, type ArchiveKeys } from '../../src/archive/keys.js';
import { LocalPackStore, PACK_DATA_SUBLEVELS } from '../../src/archive/packs.js';
import { CHAIN_DATA_SUBLEVELS } from '../../src/archive/chain.js';

/** The archive's store parts on a real LevelDB in a temp dir, writing through the real local seam. */
export interface ArchiveStoreRig {
  dir: string;
  db: Db;
  durability: LocalDurability;
  keys: ArchiveKeys;
  packs: LocalPackStore;
  /** Reopens the database and the pack store (as after a restart). */
  reopen(): Promise<void>;
  close(): Promise<void>;
}

export const silentLog = () => createLogger({ level: 'silent' });

export async function archiveStoreRig(master = Buffer.alloc(32, 7)): Promise<ArchiveStoreRig> {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-archive-'));
  const data = new DataRegistry([
    {
      owner: 'archive',
      sublevels: [...PACK_DATA_SUBLEVELS, ...CHAIN_DATA_SUBLEVELS],
      folders: [{ path: 'archive', describe: 'archive packs', replicate: true }],
    },
  ]);
  const dirs = new DirSyncer();
  const rig = { dir, keys: deriveArchiveKeys(master) } as ArchiveStoreRig;
  const start = async () => {
    rig.db = await openDb(join(dir, 'db'));
    rig.durability = new LocalDurability(data, new GroupCommitter(rig.db), dirs, dir);
    rig.packs = new LocalPackStore(dir, rig.db, rig.durability, silentLog());
    await rig.packs.open();
  };
  await start();
  rig.reopen = async () => {
    await rig.packs.close();
    await rig.db.close();
    await start();
  };
  rig.close = async () => {
    await rig.packs.close();
    await rig.db.close();
    await dirs.close();
    await rm(dir, { recursive: true, force: true });
  };
  return rig;
}
