import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import type { DataDecl } from '../store/data.js';
import { generatePassword, hashPassword } from './password.js';

const ADMIN_FILE = 'admin.json';

/** The web admin and serial console login: the same on both boxes, on the config flash. */
export const ADMIN_DATA: DataDecl = {
  owner: 'admin',
  configFiles: [{ pattern: /^admin\.json$/, describe: 'the administrator login (password hash)', replicate: true, mode: 0o600 }],
};

/** The web admin password: generated at first start, printed once, kept only as a hash. */
export async function ensureAdminPassword(configDir: string, print: (line: string) => void): Promise<void> {
  const path = join(configDir, ADMIN_FILE);
  try {
    JSON.parse(await readFile(path, 'utf8'));
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const password = generatePassword();
  await writeFileAtomic(path, JSON.stringify({ user: 'admin', hash: await hashPassword(password) }, null, 2) + '\n');
  print(`\nmlsd: web admin user "admin", password (shown once): ${password}\n\n`);
}
