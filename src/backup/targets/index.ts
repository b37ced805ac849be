import type { Logger } from '../../log/logger.js';
import type { BackupTarget, TargetSpec } from '../target.js';
import { dirTarget } from './dir.js';
import { parseSmbUrl, smbTarget } from './smb.js';
import { parseSftpUrl, sftpTarget } from './sftp.js';

export interface TargetDeps {
  log: Logger;
  /** SFTP: the host key seen at a first connection, to pin in the config. */
  pinHostKey: (name: string, fingerprint: string) => void;
  /** SFTP: the box's own key, when it has one. */
  sshKey?: Buffer | null;
  /** The local address connections come from ('' : the system's choice). */
  localAddress?: string;
}

/** The adapter for a target's type. */
export async function openTarget(spec: TargetSpec, deps: TargetDeps): Promise<BackupTarget> {
  switch (spec.type) {
    case 'dir':
      return dirTarget(spec.url);
    case 'smb':
      return smbTarget(spec, deps.log);
    case 'sftp':
      return sftpTarget(spec, {
        log: deps.log,
        pinHostKey: (fp) => deps.pinHostKey(spec.name, fp),
        ...(deps.sshKey ? { privateKey: deps.sshKey } : {}),
        ...(deps.localAddress ? { localAddress: deps.localAddress } : {}),
      });
  }
}

/** Checks a URL for its type before a target is added (a clear error naming it). */
export function checkTargetUrl(type: TargetSpec['type'], url: string): void {
  if (type === 'dir' && !url.startsWith('/')) throw new Error(`backup target: a dir target's --url is an absolute folder, not ${url}`);
  if (type === 'smb') parseSmbUrl(url);
  if (type === 'sftp') parseSftpUrl(url);
}
