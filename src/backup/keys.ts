import { createHmac, hkdfSync } from 'node:crypto';
import type { ConfigFileDecl } from '../store/data.js';
import { installKey, loadOrCreateKey } from '../store/key-file.js';

export const BACKUP_KEY_FILE = 'backup.key';

/**
 * The backup key lives on the system flash (config dir), never on the target: a NAS is
 * shared with the whole office, and what is on it must be unreadable and unforgeable
 * without the key. Both boxes of an HA pair write to one backup set, so it is replicated.
 */
export const BACKUP_KEY_CONFIG_FILE: ConfigFileDecl = {
  pattern: /^backup\.key$/,
  describe: 'the backup key (encrypts and authenticates everything on a backup target); its recovery key was shown once',
  replicate: true,
  mode: 0o600,
};

export interface BackupKeys {
  /** AES-256-GCM for objects and manifests. */
  seal: Buffer;
  /** HMAC-SHA256: an object's name from its content hash, so the name tells an outsider nothing. */
  name: Buffer;
  /** The backup set's folder on the target: the same for both boxes of a pair, another for another key. */
  setId: string;
}

export function deriveBackupKeys(master: Buffer): BackupKeys {
  const sub = (info: string) => Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `mlsd-backup-v1 ${info}`, 32));
  return { seal: sub('seal'), name: sub('name'), setId: createHmac('sha256', sub('set')).update('set').digest('hex').slice(0, 16) };
}

/** The key and whether it was made just now (its recovery key is then shown, once). */
export async function loadBackupKey(configDir: string): Promise<{ keys: BackupKeys; recoveryKey: string; created: boolean }> {
  const { key, created } = await loadOrCreateKey(configDir, BACKUP_KEY_FILE, 'backup');
  return { keys: deriveBackupKeys(key), recoveryKey: recoveryKeyText(key), created };
}

/** The master key as an administrator writes it on paper: 16 groups of 4 hex digits. */
export function recoveryKeyText(key: Buffer): string {
  return key.toString('hex').match(/.{4}/g)!.join('-');
}

/** Reads a recovery key as typed (groups, spaces, case); a clear error when it is not one. */
export function parseRecoveryKey(text: string): Buffer {
  const hex = text.replace(/[\s-]/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error('backup: a recovery key is 64 hex digits (16 groups of 4)');
  return Buffer.from(hex, 'hex');
}

/** A box whose flash died gets its backups back with the recovery key written down at setup. */
export async function installRecoveryKey(configDir: string, text: string): Promise<BackupKeys> {
  const key = parseRecoveryKey(text);
  await installKey(configDir, BACKUP_KEY_FILE, key, 'backup');
  return deriveBackupKeys(key);
}
