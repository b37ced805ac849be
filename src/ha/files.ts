import { readdir, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { writeFileAtomic, type DirSyncer } from '../store/atomic.js';

/** The parts of the data disk that replication mirrors (the LevelDB goes as records). */
export const REPLICATED_DIRS = ['spool', 'quarantine', 'mail'] as const;

/** Every file under the replicated folders, as paths relative to the data dir (Maildir tmp/ skipped). */
export async function inventory(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(join(dataDir, rel), { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) {
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (e.name !== 'tmp') await walk(r);
      } else if (e.isFile() && !e.name.startsWith('.')) out.push(r);
    }
  };
  for (const d of REPLICATED_DIRS) await walk(d);
  return out;
}

/**
 * The identity of a stored message across both boxes: for a Maildir file, its folder and
 * unique name, whether it sits in new/ or cur/ and whatever flags a mail client gave it.
 */
export function identity(rel: string): string {
  const m = /^(mail\/.+)\/(?:new|cur)\/([^/:]+)(?::.*)?$/.exec(rel);
  return m ? `${m[1]}/*/${m[2]}` : rel;
}

/** Refuses paths that would leave the replicated folders ("..", absolute, odd names). */
export function safeRel(rel: unknown): string {
  if (typeof rel !== 'string' || rel.includes('\0') || rel.startsWith('/') || rel.split('/').some((p) => p === '..' || p === '.' || p === '')) {
    throw new Error(`HA: refusing path ${String(rel)}`);
  }
  if (!REPLICATED_DIRS.some((d) => rel.startsWith(d + '/'))) throw new Error(`HA: ${rel} is outside the replicated folders`);
  return rel.split('/').join(sep);
}

/** A replicated file, written durably at its place under the data dir. */
export function writeDurable(root: string, rel: string, data: Buffer, dirs: DirSyncer): Promise<void> {
  return writeFileAtomic(join(root, safeRel(rel)), data, 0o600, dirs);
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** True when the Maildir already holds this message (in new/ or cur/, with any flags). */
export async function hasIdentity(dataDir: string, rel: string): Promise<boolean> {
  const m = /^(mail\/.+)\/(?:new|cur)\/([^/:]+)(?::.*)?$/.exec(rel);
  if (!m) return exists(join(dataDir, safeRel(rel)));
  const [, box, base] = m;
  for (const sub of ['new', 'cur']) {
    const names = await readdir(join(dataDir, safeRel(`${box}/${sub}/x`), '..')).catch(() => [] as string[]);
    if (names.some((n) => n === base || n.startsWith(`${base}:`))) return true;
  }
  return false;
}
