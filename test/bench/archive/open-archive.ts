/**
 * The Archiver as the archive capability builds it (src/archive/capability.ts startArchive:
 * keys from the config dir, pack store, chain, SQLite index, the prepare worker, encryption
 * on), on a data dir and config dir of the bench's own, without the daemon around it.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Archiver } from '../../../src/archive/archiver.js';
import { ARCHIVE_DATA, SEARCH_TOOLS } from '../../../src/archive/capability.js';
import { Chain } from '../../../src/archive/chain.js';
import { openSqliteIndex } from '../../../src/archive/index-sqlite.js';
import { loadArchiveKeys } from '../../../src/archive/keys.js';
import { LocalPackStore } from '../../../src/archive/packs.js';
import { workerPreparer } from '../../../src/archive/prepare.js';
import type { RuleSet } from '../../../src/archive/rules.js';
import { contentAddress, open } from '../../../src/archive/seal.js';
import { systemClock } from '../../../src/core/clock.js';
import { createLogger } from '../../../src/log/logger.js';
import { DirSyncer } from '../../../src/store/atomic.js';
import { DataRegistry } from '../../../src/store/data.js';
import { GroupCommitter, openDataDb } from '../../../src/store/db.js';
import { LocalDurability } from '../../../src/store/durability.js';

export interface BenchArchive {
  archiver: Archiver;
  /** The rule set hash intake records name (the default rules: spam and viruses skipped, 7 years). */
  ruleset: string;
  close(): Promise<void>;
}

export async function openArchive(dataDir: string, configDir: string): Promise<BenchArchive> {
  const log = createLogger({ level: 'warn' });
  const keys = await loadArchiveKeys(configDir);
  const db = await openDataDb(dataDir);
  const durability = new LocalDurability(new DataRegistry([ARCHIVE_DATA]), new GroupCommitter(db), new DirSyncer(), dataDir);
  const blobs = new LocalPackStore(dataDir, db, durability, log);
  await blobs.open();
  const chain = new Chain(db, keys, () => true);
  await chain.open();
  const index = await openSqliteIndex(join(dataDir, 'archive-index'), keys.term);
  const preparer = workerPreparer(keys);
  const archiver = new Archiver({
    db,
    durability,
    sealing: { address: (bytes) => contentAddress(keys, bytes), open: (address, sealed) => open(keys, address, sealed) },
    preparer,
    encrypt: () => true,
    blobs,
    chain,
    index,
    tools: SEARCH_TOOLS,
    clock: systemClock,
    log,
    emit: () => undefined,
  });
  const set: RuleSet = { rules: [], retentionYears: 7 };
  const ruleset = createHash('sha256').update(JSON.stringify(set)).digest('hex');
  await archiver.recordRuleset(ruleset, set);
  return {
    archiver,
    ruleset,
    close: async () => {
      await preparer.close();
      await index.close();
      await blobs.close();
      await db.close();
    },
  };
}
