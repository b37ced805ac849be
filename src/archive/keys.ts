import { createHmac, hkdfSync } from 'node:crypto';
import { loadOrCreateKey } from '../store/key-file.js';
import type { ConfigFileDecl } from '../store/data.js';

export const ARCHIVE_KEY_FILE = 'archive.key';

/**
 * The archive's master key lives in the config dir (system flash), not on the data disk: a
 * stolen data disk or a copied data backup reveals nothing. The HA standby needs the same
 * key to read the archive after a failover, so the file is replicated.
 */
export const ARCHIVE_KEY_CONFIG_FILE: ConfigFileDecl = {
  pattern: /^archive\.key$/,
  describe: "the archive's master key (encryption, content addresses, hash chain); losing it makes the archive unreadable",
  replicate: true,
  mode: 0o600,
};

/** Sub-keys of the master key, one per use, so that no two uses share a key. */
export interface ArchiveKeys {
  /** AES-256-GCM key for blobs and chain bodies. */
  seal: Buffer;
  /** HMAC-SHA256 key for content addresses. */
  address: Buffer;
  /** HMAC-SHA256 key for the hash chain's macs. */
  chain: Buffer;
  /** For the search index's term hashing (the index owns how it is used). */
  term: Buffer;
  /** A short, non-secret name of the master key (which key a box holds, in logs and checks). */
  fingerprint: string;
}

const KEY_BYTES = 32;

/** Derives the sub-keys (HKDF-SHA256, a distinct info string per use). */
export function deriveArchiveKeys(master: Buffer): ArchiveKeys {
  if (master.length !== KEY_BYTES) throw new Error(`archive: the master key must be ${KEY_BYTES} bytes, not ${master.length}`);
  const sub = (info: string) => Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `mlsd-archive-v1 ${info}`, KEY_BYTES));
  return {
    seal: sub('seal'),
    address: sub('address'),
    chain: sub('chain'),
    term: sub('term'),
    fingerprint: createHmac('sha256', sub('fingerprint')).update('fingerprint').digest('hex').slice(0, 16),
  };
}

/**
 * Reads `<configDir>/archive.key`, creating it with fresh randomness at first use (a
 * malformed one is an error naming it, never replaced).
 */
export async function loadArchiveKeys(configDir: string): Promise<ArchiveKeys> {
  return deriveArchiveKeys((await loadOrCreateKey(configDir, ARCHIVE_KEY_FILE, 'archive')).key);
}
