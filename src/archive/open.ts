import { join } from 'node:path';
import type { Clock } from '../core/clock.js';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import type { Db } from '../store/db.js';
import type { Durability } from '../store/durability.js';
import { Archiver } from './archiver.js';
import { Chain } from './chain.js';
import { openSqliteIndex } from './index-sqlite.js';
import { loadArchiveKeys, type ArchiveKeys } from './keys.js';
import { LocalPackStore } from './packs.js';
import { workerPreparer } from './prepare.js';
import { docMatches, parseQuery } from './query.js';
import { contentAddress, open } from './seal.js';
import { snippetOf } from './snippet.js';
import type { SearchTools } from './archiver.js';

export const INDEX_FOLDER = 'archive-index';
export const SEARCH_TOOLS: SearchTools = { parseQuery, docMatches, snippetOf };

/** The archive's parts, built on one data dir: the one place that picks the store and index adapters. */
export interface ArchiveParts {
  keys: ArchiveKeys;
  archiver: Archiver;
  chain: Chain;
  blobs: LocalPackStore;
  /** Why the chain cannot be appended to (it does not end at its head), or null. */
  halted: string | null;
  close(): Promise<void>;
}

export interface ArchiveOpenOptions {
  configDir: string;
  dataDir: string;
  db: Db;
  durability: Durability;
  encrypt: boolean;
  clock: Clock;
  log: Logger;
  emit: (ev: EventInput) => void;
}

/**
 * Opens the archive: keys from the config dir, the pack store, the chain, the SQLite
 * index, the prepare worker. A chain that does not end at its head does not stop the
 * opening: `halted` says why (nothing must be appended over the evidence).
 */
export async function openArchive(o: ArchiveOpenOptions): Promise<ArchiveParts> {
  const keys = await loadArchiveKeys(o.configDir);
  const blobs = new LocalPackStore(o.dataDir, o.db, o.durability, o.log);
  await blobs.open();
  const chain = new Chain(o.db, keys, () => o.encrypt);
  let halted: string | null = null;
  await chain.open().catch((err: Error) => {
    halted = err.message;
  });
  const index = await openSqliteIndex(join(o.dataDir, INDEX_FOLDER), keys.term);
  const preparer = workerPreparer(keys);
  const archiver = new Archiver({
    db: o.db,
    durability: o.durability,
    sealing: { address: (bytes) => contentAddress(keys, bytes), open: (address, sealed) => open(keys, address, sealed) },
    preparer,
    encrypt: () => o.encrypt,
    blobs,
    chain,
    index,
    tools: SEARCH_TOOLS,
    clock: o.clock,
    log: o.log,
    emit: o.emit,
  });
  return {
    keys,
    archiver,
    chain,
    blobs,
    halted,
    async close() {
      archiver.stop();
      await archiver.serial(async () => undefined);
      await archiver.indexIdle();
      await index.close();
      await preparer.close();
      await blobs.close();
    },
  };
}
