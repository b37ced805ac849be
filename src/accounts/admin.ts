import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import type { DataDecl } from '../store/data.js';
import { generatePassword, hashPassword } from './password.js';

const ADMIN_FILE = 'admin.json';
/** The first-start password in clear, for the administrator (and later the LCD/console) to read once. */
export const INITIAL_PASSWORD_FILE = 'initial-admin-password';

/** The web admin and serial console login: the same on both boxes, on the config flash. */
export const ADMIN_DATA: DataDecl = {
  owner: 'admin',
  configFiles: [
    { pattern: /^admin\.json$/, describe: 'the administrator login (password hash)', replicate: true, mode: 0o600 },
    // Per box: a standby's own first-start password is replaced by the active's admin.json,
    // so copying the clear text around would only spread a secret.
    { pattern: /^initial-admin-password$/, describe: 'the first-start administrator password, in clear (read it, then delete it)', replicate: false, mode: 0o600 },
  ],
};

/**
 * The web admin password: generated at first start and kept as a hash. The clear text
 * goes to a file only root and the daemon's user can read, never to stdout: under systemd
 * stdout is the journal, which every member of group adm reads and which is kept for
 * months. `print` gets only where the file is.
 */
export async function ensureAdminPassword(configDir: string, print: (line: string) => void): Promise<void> {
  const path = join(configDir, ADMIN_FILE);
  try {
    JSON.parse(await readFile(path, 'utf8'));
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const password = generatePassword();
  const passwordFile = join(configDir, INITIAL_PASSWORD_FILE);
  // The clear text first: a crash between the two writes leaves no hash whose password is lost.
  await writeFileAtomic(passwordFile, password + '\n', 0o600);
  await writeFileAtomic(path, JSON.stringify({ user: 'admin', hash: await hashPassword(password) }, null, 2) + '\n');
  print(`mlsd: web admin user "admin"; its first-start password is in ${passwordFile} (mode 0600)\n`);
}
