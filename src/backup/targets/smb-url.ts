import { TargetError } from '../target.js';

/** Where an SMB target points: smb://host[:port]/share[/folder/...]. */
export interface SmbUrl {
  host: string;
  port: number;
  share: string;
  /** The folder inside the share the target's files live under, '/'-separated; '' for the share's root. */
  folder: string;
}

const URL_RE = /^smb:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))(?::(\d{1,5}))?\/([^/]+)((?:\/[^/]+)*)\/?$/i;
// Share names as Windows and Samba allow them in practice, minus anything smbclient's
// command line or the service string would read specially; "$" for hidden shares (backup$).
const SHARE_RE = /^[A-Za-z0-9._$-]{1,80}$/;
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;

/**
 * Parses and checks a target URL. Credentials never go in it (they are the target's user and
 * masked password), so "user@" is refused rather than silently put on a command line.
 */
export function parseSmbUrl(url: string): SmbUrl {
  const bad = (why: string): never => {
    throw new TargetError('io', `smb: bad URL ${JSON.stringify(url)}: ${why}`);
  };
  if (typeof url !== 'string' || url.length > 400) bad('not a string of at most 400 characters');
  if (!url.toLowerCase().startsWith('smb://')) bad('expected smb://host[:port]/share[/folder]');
  if (/^smb:\/\/[^/]*@/i.test(url)) bad('no user or password in the URL (give them as the target\'s user and password)');
  const m = URL_RE.exec(url);
  if (!m) bad('expected smb://host[:port]/share[/folder]');
  const [, rawHost, rawPort, share, rest] = m!;
  const port = rawPort === undefined ? 445 : Number(rawPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) bad(`port ${rawPort} out of range 1-65535`);
  if (!SHARE_RE.test(share!)) bad(`share name ${JSON.stringify(share)} (letters, digits, . _ - $)`);
  const segments = (rest ?? '').split('/').filter((s) => s !== '');
  for (const s of segments) {
    if (!SEGMENT_RE.test(s) || s === '.' || s === '..') bad(`folder part ${JSON.stringify(s)} (letters, digits, . _ -; no . or ..)`);
  }
  return { host: rawHost!.replace(/^\[|\]$/g, ''), port, share: share!, folder: segments.join('/') };
}
