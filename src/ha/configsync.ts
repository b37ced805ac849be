import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import type { ConfigStore } from '../config/config.js';

/**
 * The config-dir files both boxes share: the config document, accounts and password
 * hashes, the admin login, DKIM keys and the TLS certificate, so that after a takeover
 * users log in, mail is signed with the published key and clients see the same
 * certificate. The control socket and anything the HA layer keeps per box stay out.
 */
const SHARED = /^(config\.json|accounts\.json|admin\.json|dkim\/[^/]+\.key|tls\/(cert|key)\.pem)$/;

export async function configDirFiles(configDir: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(configDir, rel), { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile() && SHARED.test(r)) out[r] = await readFile(join(configDir, r));
    }
  };
  await walk('');
  return out;
}

/** Writes what the active sent; the config document goes through the store (own `ha` kept). */
export async function applyConfigDirFiles(configDir: string, files: Record<string, Buffer>, config: ConfigStore): Promise<void> {
  for (const [rel, data] of Object.entries(files)) {
    if (!SHARED.test(rel)) continue;
    if (rel === 'config.json') {
      await config.replaceFromPeer(JSON.parse(data.toString('utf8')));
      continue;
    }
    const path = join(configDir, rel);
    const cur = await readFile(path).catch(() => null);
    if (cur && cur.equals(data)) continue;
    await writeFileAtomic(path, data, rel.endsWith('cert.pem') ? 0o644 : 0o600);
  }
}
