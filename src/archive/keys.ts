import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { link, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, mkdirDurable } from '../store/atomic.js';
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
// Hex text, one line: an administrator can read it off a console and copy it to paper.
const KEY_TEXT = /^([0-9a-f]{64})\n?$/;

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
 * Reads `<configDir>/archive.key`, creating it with fresh randomness at first use. A file
 * that exists but is malformed is an error naming it: replacing it would make every sealed
 * blob and chain record unreadable, so it is never silently replaced.
 */
export async function loadArchiveKeys(configDir: string): Promise<ArchiveKeys> {
  const path = join(configDir, ARCHIVE_KEY_FILE);
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw new Error(`archive: cannot read the key file ${path}: ${err.message}`);
  });
  if (text !== null) return deriveArchiveKeys(parseKey(text, path));
  await createKeyFile(path, configDir);
  return deriveArchiveKeys(parseKey(await readFile(path, 'utf8'), path));
}

function parseKey(text: string, path: string): Buffer {
  const m = KEY_TEXT.exec(text);
  if (!m) throw new Error(`archive: the key file ${path} is malformed (expected 64 hex digits); restore it from a backup, never replace it`);
  return Buffer.from(m[1]!, 'hex');
}

/**
 * Writes a new key durably (temp, fsync, then a hard link to the final name, fsync the
 * folder). A link, unlike a rename, fails when the name exists: two starts racing, or a
 * key that appeared meanwhile, never lose the key already there.
 */
async function createKeyFile(path: string, configDir: string): Promise<void> {
  await mkdirDurable(configDir, 0o700);
  const tmp = join(configDir, `.${ARCHIVE_KEY_FILE}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(randomBytes(KEY_BYTES).toString('hex') + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await fsyncDir(configDir);
}
