/**
 * The BackupTarget port: where backups are written and read back. Adapters: a local folder
 * (targets/dir.ts: tests, a USB disk), an SMB 3 share through Samba's own smbclient
 * (targets/smb.ts), an SFTP server through ssh2 (targets/sftp.ts). The backup engine only
 * ever names files by relative paths of the safe alphabet below, so no adapter has to quote
 * a hostile name; each adapter still refuses anything else.
 */

/** Why a target operation failed: each kind is its own alert (NAS unreachable, share full, login refused). */
export type TargetErrorKind = 'unreachable' | 'auth' | 'full' | 'notFound' | 'hostKey' | 'io';

export class TargetError extends Error {
  constructor(
    readonly kind: TargetErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** A file on the target, relative to the target's root folder. */
export interface RemoteEntry {
  path: string;
  size: number;
}

export interface BackupTarget {
  /** Connects, logs in, and writes, reads back and removes a probe file under the root. */
  test(): Promise<void>;
  /** Every file under `dir` (recursively), relative to the root; [] when `dir` does not exist. */
  list(dir: string): Promise<RemoteEntry[]>;
  /**
   * Uploads local files. Each lands under a temporary name and is renamed to its path once
   * complete, so a reader (or a later run) never sees part of one; parent folders are made.
   * A failure throws a TargetError; the items before it may be complete.
   */
  put(items: readonly { local: string; path: string }[]): Promise<void>;
  /** Downloads files to local paths (overwritten; the caller renames them into place). */
  get(items: readonly { path: string; local: string }[]): Promise<void>;
  /** Removes files; a file already gone is not an error. */
  remove(paths: readonly string[]): Promise<void>;
  /** Ends any connection or child process. */
  close(): Promise<void>;
}

/** What a target is set up with (config `backup.targets[]`; the password is a masked secret). */
export interface TargetSpec {
  name: string;
  type: 'smb' | 'sftp' | 'dir';
  /** smb://host[:port]/share[/folder], sftp://host[:port]/folder, or an absolute local folder for dir. */
  url: string;
  user: string;
  password: string;
  /** SFTP: the server's host key (SHA-256, base64) pinned at the first connection; '' until then. */
  hostKey: string;
}

/** Paths the engine uses: folders and names of letters, digits, '.', '_' and '-' only; no '..', no leading '/'. */
export function checkRemotePath(p: string): string {
  if (typeof p !== 'string' || p.length === 0 || p.length > 400 || !/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(p) || p.split('/').some((s) => s === '.' || s === '..')) {
    throw new TargetError('io', `backup: refusing remote path ${JSON.stringify(p)}`);
  }
  return p;
}
