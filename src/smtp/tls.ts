import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import type { Logger } from '../log/logger.js';
import type { DataDecl } from '../store/data.js';

/** The certificate clients see: the same on both boxes of a pair, kept on the config flash. */
export const TLS_DATA: DataDecl = {
  owner: 'tls',
  configFiles: [
    { pattern: /^tls\/cert\.pem$/, describe: 'TLS certificate (self-signed until one is installed)', replicate: true, mode: 0o644 },
    { pattern: /^tls\/key\.pem$/, describe: 'TLS private key', replicate: true, mode: 0o600 },
  ],
};

export interface TlsMaterial {
  key: string;
  cert: string;
  generated: boolean;
}

/**
 * The certificate in `<config-dir>/tls/{cert,key}.pem`: an installed one is used as is;
 * if there is none, a self-signed one for the hostname is generated once and kept.
 */
export async function loadOrCreateTls(configDir: string, hostname: string, log: Logger): Promise<TlsMaterial> {
  const dir = join(configDir, 'tls');
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  try {
    const [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    return { cert, key, generated: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const notAfter = new Date();
  notAfter.setFullYear(notAfter.getFullYear() + 10);
  // Loaded only here: the certificate library costs ~15 MB of memory and is needed once.
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: hostname }], {
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate: notAfter,
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: hostname }] }],
  });
  await writeFileAtomic(keyPath, pems.private, 0o600);
  await writeFileAtomic(certPath, pems.cert, 0o644);
  log.info({ evt: 'tls.generated', hostname, certPath }, 'generated a self-signed certificate');
  return { cert: pems.cert, key: pems.private, generated: true };
}
