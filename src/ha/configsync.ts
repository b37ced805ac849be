import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import type { DataRegistry } from '../store/data.js';

/**
 * The config-dir files both boxes share: whatever the capabilities declared as replicated
 * config files (the config document, accounts, the admin login, DKIM keys, the TLS
 * certificate), so that after a takeover users log in, mail is signed with the published
 * key and clients see the same certificate. The control socket and per-box HA state stay.
 */
export async function configDirFiles(configDir: string, data: DataRegistry): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(configDir, rel), { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile() && data.configFile(r)?.replicate) out[r] = await readFile(join(configDir, r));
    }
  };
  await walk('');
  return out;
}

/** Writes what the active sent; a file whose owner applies it itself (the config document) goes to the owner. */
export async function applyConfigDirFiles(configDir: string, files: Record<string, Buffer>, data: DataRegistry): Promise<void> {
  for (const [rel, bytes] of Object.entries(files)) {
    const decl = data.configFile(rel);
    if (!decl?.replicate || rel.split('/').some((p) => p === '..' || p === '.' || p === '')) continue;
    const apply = data.configFileApplier(rel);
    if (apply) {
      await apply(bytes);
      continue;
    }
    const path = join(configDir, rel);
    const cur = await readFile(path).catch(() => null);
    if (cur && cur.equals(bytes)) continue;
    await writeFileAtomic(path, bytes, decl.mode ?? 0o600);
    for (const fn of data.configFileWatchers(rel)) fn();
  }
}
