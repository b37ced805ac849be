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
  const m = maildirName(rel);
  return m ? `${m.box}/*/${m.base}` : rel;
}

/** A Maildir file's folder and unique name (without the ":2,flags" a mail client adds). */
function maildirName(rel: string): { box: string; base: string } | null {
  const m = /^(mail\/.+)\/(?:new|cur)\/([^/:]+)(?::.*)?$/.exec(rel);
  return m ? { box: m[1]!, base: m[2]! } : null;
}

/** Where this Maildir message is now (new/ or cur/, any flags), relative to the data dir. */
export async function findInMaildir(dataDir: string, rel: string): Promise<string | null> {
  const m = maildirName(rel);
  if (!m) return (await exists(join(dataDir, safeRel(rel)))) ? rel : null;
  for (const sub of ['new', 'cur']) {
    const names = await readdir(join(dataDir, safeRel(`${m.box}/${sub}`))).catch(() => [] as string[]);
    const name = names.find((n) => n === m.base || n.startsWith(`${m.base}:`));
    if (name) return `${m.box}/${sub}/${name}`;
  }
  return null;
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
