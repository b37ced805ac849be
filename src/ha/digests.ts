import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * What a replicated file holds, so that a catch-up does not trust a file by its name: a
 * standby killed while writing keeps a file of the right name and the wrong length. On the
 * wire a digest is `<size>:<sha256 hex>`.
 */
export interface FileDigest {
  size: number;
  sha256: string;
}

export function formatDigest(d: FileDigest): string {
  return `${d.size}:${d.sha256}`;
}

/** A digest from the peer, or null for anything that is not one (an old peer, a hostile one). */
export function parseDigest(s: unknown): FileDigest | null {
  if (typeof s !== 'string') return null;
  const m = /^(\d{1,15}):([0-9a-f]{64})$/.exec(s);
  return m ? { size: Number(m[1]), sha256: m[2]! } : null;
}

interface Cached extends FileDigest {
  mtimeMs: number;
  ino: number;
}

/**
 * SHA-256 of files under the data dir, remembered while the file's size, mtime and inode
 * stay the same. Mail files are written once and never changed in place (a mail client
 * renames them), so a box that asks to join several times, or sends several snapshots,
 * reads each file once per run; a file rewritten or truncated since changes its stat and is
 * read again.
 */
export class FileDigests {
  private readonly cache = new Map<string, Cached>();

  constructor(private readonly dataDir: string) {}

  /** The file's size (a stat: cheap), or null when it is gone. */
  async size(rel: string): Promise<number | null> {
    return stat(join(this.dataDir, rel)).then(
      (s) => s.size,
      () => null,
    );
  }

  /** The file's size and hash, or null when it is gone. */
  async digest(rel: string): Promise<FileDigest | null> {
    const path = join(this.dataDir, rel);
    const st = await stat(path).catch(() => null);
    if (!st?.isFile()) return null;
    const hit = this.cache.get(rel);
    if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs && hit.ino === st.ino) return { size: hit.size, sha256: hit.sha256 };
    const sha256 = await hashFile(path).catch(() => null);
    if (sha256 === null) return null;
    this.cache.set(rel, { size: st.size, sha256, mtimeMs: st.mtimeMs, ino: st.ino });
    return { size: st.size, sha256 };
  }

  /** Forgets files no longer listed (the cache must not outgrow the data). */
  keepOnly(rels: Iterable<string>): void {
    const keep = new Set(rels);
    for (const rel of this.cache.keys()) if (!keep.has(rel)) this.cache.delete(rel);
  }
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/**
 * Whether the active must send its file although the standby has one by that name: the
 * sizes first (a stat on this side), the hash only when they agree. A standby of the
 * previous version sends no digest: its file is trusted by name, as that version did.
 */
export async function needsResend(digests: FileDigests, rel: string, theirs: FileDigest | null): Promise<'same' | 'size' | 'hash' | 'unknown'> {
  if (!theirs) return 'unknown';
  const size = await digests.size(rel);
  if (size === null) return 'same'; // gone here meanwhile: the prune list will not name it, nothing to send
  if (size !== theirs.size) return 'size';
  const mine = await digests.digest(rel);
  if (!mine) return 'same';
  return mine.size === theirs.size && mine.sha256 === theirs.sha256 ? 'same' : 'hash';
}
