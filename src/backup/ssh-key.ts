import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { ConfigFileDecl } from '../store/data.js';
import { writeFileAtomic } from '../store/atomic.js';

const KEY_FILE = 'backup-ssh.key';

/**
 * The box's own SSH key for SFTP targets: an administrator puts its public half in the
 * server's authorized_keys instead of handing the box a password. Both boxes of a pair log
 * in as one, so it is replicated.
 */
export const BACKUP_SSH_KEY_CONFIG_FILE: ConfigFileDecl = { pattern: /^backup-ssh\.key$/, describe: "the box's SSH key for SFTP backup targets", replicate: true, mode: 0o600 };

/** The private key, or null before an SFTP target was added. */
export async function readSshKey(configDir: string): Promise<Buffer | null> {
  return readFile(join(configDir, KEY_FILE)).catch(() => null);
}

/** The key's public half as authorized_keys takes it, making the key at first use. */
export async function sshPublicKey(configDir: string, comment: string): Promise<string> {
  let priv = await readSshKey(configDir);
  if (!priv) {
    const made = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    await writeFileAtomic(join(configDir, KEY_FILE), made.private, 0o600);
    priv = await readSshKey(configDir);
  }
  const key = ssh2.utils.parseKey(priv!);
  if (key instanceof Error) throw new Error(`backup: ${join(configDir, KEY_FILE)} is not an SSH key: ${key.message}`);
  const k = Array.isArray(key) ? key[0]! : key;
  return `${k.type} ${k.getPublicSSH().toString('base64')} ${comment}`;
}
