import { link, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fsyncDir, mkdirDurable } from './atomic.js';

const KEY_BYTES = 32;
// Hex text, one line: an administrator can read it off a console and copy it to paper.
const KEY_TEXT = /^([0-9a-f]{64})\n?$/;

/**
 * A 32-byte master key kept as hex in a config-dir file, created with fresh randomness at
 * first use. A file that exists but is malformed is an error naming it: replacing it would
 * make everything sealed with it unreadable, so it is never silently replaced.
 * `created` says the key is new (a recovery key is then shown once).
 */
export async function loadOrCreateKey(configDir: string, file: string, label: string): Promise<{ key: Buffer; created: boolean }> {
  const path = join(configDir, file);
  const read = () =>
    readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw new Error(`${label}: cannot read the key file ${path}: ${err.message}`);
    });
  const text = await read();
  if (text !== null) return { key: parseKeyText(text, path, label), created: false };
  const created = await createKeyFile(configDir, file, randomBytes(KEY_BYTES));
  return { key: parseKeyText((await read()) ?? '', path, label), created };
}

/** Writes a given key (a recovery key typed in); refuses to replace one that is there. */
export async function installKey(configDir: string, file: string, key: Buffer, label: string): Promise<void> {
  if (key.length !== KEY_BYTES) throw new Error(`${label}: a key is ${KEY_BYTES} bytes`);
  if (!(await createKeyFile(configDir, file, key))) throw new Error(`${label}: ${join(configDir, file)} exists; it is never replaced (on a new box that has made no backups of its own, remove it, then import again)`);
}

function parseKeyText(text: string, path: string, label: string): Buffer {
  const m = KEY_TEXT.exec(text);
  if (!m) throw new Error(`${label}: the key file ${path} is malformed (expected 64 hex digits); restore it from a backup, never replace it`);
  return Buffer.from(m[1]!, 'hex');
}

/**
 * Writes a new key durably (temp, fsync, then a hard link to the final name, fsync the
 * folder). A link, unlike a rename, fails when the name exists: two starts racing, or a
 * key that appeared meanwhile, never lose the key already there. False: one was there.
 */
async function createKeyFile(configDir: string, file: string, key: Buffer): Promise<boolean> {
  await mkdirDurable(configDir, 0o700);
  const tmp = join(configDir, `.${file}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(key.toString('hex') + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  let made = true;
  try {
    await link(tmp, join(configDir, file)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
      made = false;
    });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await fsyncDir(configDir);
  return made;
}
