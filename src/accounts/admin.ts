import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import type { DataDecl } from '../store/data.js';
import { generatePassword, hashPassword, verifyPassword } from './password.js';

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

/** The administrator's login name (one administrator, the web admin's and the console's). */
export const ADMIN_USER = 'admin';

/** Whether user and password are the administrator's; false, never a throw, for anything else. */
export async function verifyAdmin(configDir: string, user: string, password: string): Promise<boolean> {
  let doc: { user?: unknown; hash?: unknown };
  try {
    doc = JSON.parse(await readFile(join(configDir, ADMIN_FILE), 'utf8'));
  } catch {
    return false;
  }
  // The hash is checked even for a wrong user name, so the answer takes as long either way.
  const ok = typeof doc.hash === 'string' && (await verifyPassword(password, doc.hash));
  return ok && user === (typeof doc.user === 'string' ? doc.user : ADMIN_USER);
}

/**
 * Sets the administrator password. The first-start password file is deleted: it would
 * otherwise hold a clear text that no longer opens anything and looks as if it did.
 * The console reads passwords one line at a time, so control characters cannot be typed there
 * and are refused here.
 */
export async function setAdminPassword(configDir: string, password: string): Promise<void> {
  if (password.length < 8) throw new Error('password: at least 8 characters');
  if (password.length > 256) throw new Error('password: at most 256 characters');
  if (/[\u0000-\u001f\u007f]/.test(password)) throw new Error('password: no control characters');
  await writeFileAtomic(join(configDir, ADMIN_FILE), JSON.stringify({ user: ADMIN_USER, hash: await hashPassword(password) }, null, 2) + '\n');
  await rm(join(configDir, INITIAL_PASSWORD_FILE), { force: true });
}
