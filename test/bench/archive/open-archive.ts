/**
 * The Archiver as the archive capability builds it (src/archive/capability.ts startArchive:
 * keys from the config dir, pack store, chain, SQLite index, the prepare worker, encryption
 * on), on a data dir and config dir of the bench's own, without the daemon around it.
 */
import { ARCHIVE_DATA, rulesetHash } from '../../../src/archive/capability.js';
import type { Archiver } from '../../../src/archive/archiver.js';
import { openArchive as openParts } from '../../../src/archive/open.js';
import type { RuleSet } from '../../../src/archive/rules.js';
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
  const db = await openDataDb(dataDir);
  const durability = new LocalDurability(new DataRegistry([ARCHIVE_DATA]), new GroupCommitter(db), new DirSyncer(), dataDir);
  const parts = await openParts({ configDir, dataDir, db, durability, encrypt: true, clock: systemClock, log, emit: () => undefined });
  const set: RuleSet = { rules: [], retentionYears: 7 };
  const ruleset = rulesetHash(set);
  await parts.archiver.recordRuleset(ruleset, set);
  return {
    archiver: parts.archiver,
    ruleset,
    close: async () => {
      await parts.close();
      await db.close();
    },
  };
}
