/**
 * Drives Samba's own client, smbclient, as one process per batch of commands fed on stdin.
 *
 * Why smbclient: the npm SMB packages speak SMB 2.1 with NTLMv1 and no signing, which a default
 * Samba and Windows 11 24H2 refuse. smbclient speaks SMB 3 with signing and NTLMv2 (or Kerberos
 * where a ticket can be had), and it is Samba's own reference client.
 *
 * How one command's failure is told from another's: smbclient carries on after a failed
 * command and prints its error as a line (often "NT_STATUS_... <doing what>"); its exit code
 * only tells about the last command. So after each step the script runs `lcd` into a path that
 * can never be a folder (/dev/null/<nonce>-<n>); its refusal "chdir to ... failed" is printed in
 * order with everything else (-E puts every message on stderr), and marks where step n's output
 * ends. A step whose marker never came did not finish (the process died or was killed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../log/logger.js';
import { TargetError, type TargetErrorKind, type RemoteEntry } from '../target.js';
import type { SmbUrl } from './smb-url.js';

export interface SmbclientInvocation {
  command: string;
  args: string[];
  /** The password travels in PASSWD (see smbclientInvocation); nothing secret is in args. */
  env: NodeJS.ProcessEnv;
}

/**
 * The command line: SMB 3 only, signing required, NTLMv2 (Samba's client default; NTLMv1 and
 * LANMAN are off by default and never turned on here). -s /dev/null: no smb.conf of the box
 * can weaken these. The password goes in the PASSWD environment variable, never on the command
 * line (anyone can read argv in ps). Not an authentication file (-A): its parser trims spaces
 * around the value, so a password with a leading or trailing space fails to log in; PASSWD is
 * taken byte for byte, and /proc/PID/environ is readable only by the same user, as a 0600 file is.
 */
export function smbclientInvocation(url: SmbUrl, user: string, password: string, command = 'smbclient'): SmbclientInvocation {
  if (/[\0\r\n]/.test(password)) throw new TargetError('auth', 'smb: the password contains a line break or NUL, which smbclient cannot take');
  if (/[%\0\r\n]/.test(user)) throw new TargetError('auth', `smb: refusing user ${JSON.stringify(user)} (no %, line breaks or NUL)`);
  const ipLiteral = url.host.includes(':') || /^\d+\.\d+\.\d+\.\d+$/.test(url.host);
  const args = [
    `//${url.host.includes(':') ? 'ipv6-host' : url.host}/${url.share}`,
    ...(ipLiteral ? ['-I', url.host] : []),
    '-p', String(url.port),
    '-s', '/dev/null',
    '-m', 'SMB3',
    '--option=client min protocol=SMB3',
    '--option=client signing=required',
    '--option=client ipc signing=required',
    '-E',
    ...(user === '' ? ['-N'] : ['-U', user]),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' };
  delete env.PASSWD_FD;
  delete env.PASSWD_FILE;
  delete env.USER; // else smbclient may take a "user%password" from it
  if (user !== '') env.PASSWD = password;
  return { command, args, env };
}

/** One unit of work in a script: its commands, whose output is judged together. */
export interface Step {
  lines: string[];
}

export interface StepOutput {
  /** The step's marker was seen: all its commands ran (each may still have failed). */
  done: boolean;
  out: string[];
}

export interface RunResult {
  steps: StepOutput[];
  /** Lines printed after the last marker, or before the process died in the step that never finished. */
  tail: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Killed by the watchdog: no byte moved for timeoutMs. */
  timedOut: boolean;
}

export interface RunOptions {
  /** With no output and no I/O by the process for this long, it is taken as hung and killed. */
  timeoutMs: number;
  log: Logger;
  /** Processes running now, so close() can end them. */
  running: Set<ChildProcess>;
  /** Seen by tests: each smbclient started, with its argv. */
  onSpawn?: (pid: number, args: readonly string[]) => void;
}

/** A name for a local path inside a script line: quoted; refused if it could break the script. */
export function scriptLocal(path: string): string {
  if (!path.startsWith('/') || /["\0-\x1f\x7f;]/.test(path) || path.length > 4000) {
    throw new TargetError('io', `smb: refusing local path ${JSON.stringify(path)} (must be absolute, no quotes, ; or control characters)`);
  }
  return `"${path}"`;
}

export async function runSmbclient(inv: SmbclientInvocation, steps: readonly Step[], opts: RunOptions): Promise<RunResult> {
  const nonce = randomBytes(8).toString('hex');
  const markerPrefix = `/dev/null/mlsd-${nonce}-`;
  const child = spawn(inv.command, inv.args, { env: inv.env, stdio: ['pipe', 'pipe', 'pipe'] });
  opts.running.add(child);
  if (child.pid !== undefined) opts.onSpawn?.(child.pid, inv.args);
  opts.log.debug({ evt: 'backup.smb.spawn', pid: child.pid, steps: steps.length });

  const result: RunResult = { steps: steps.map(() => ({ done: false, out: [] })), tail: [], code: null, signal: null, timedOut: false };
  // -1 until the first marker: what smbclient prints before it reads any command (a login
  // failure, or a harmless warning about an option) is not any step's output.
  let current = -1;
  const preamble: string[] = [];
  let moved = 0;
  const onLine = (line: string): void => {
    if (line.startsWith(`chdir to ${markerPrefix}`)) {
      const n = Number(/-(\d+) failed/.exec(line)?.[1]) - 1;
      if (Number.isInteger(n) && n === current && n < steps.length) {
        if (n >= 0) result.steps[n]!.done = true;
        current = n + 1;
        return;
      }
    }
    if (line.trim() === '' || line.startsWith('Try "help"')) return;
    (current < 0 ? preamble : current < steps.length ? result.steps[current]!.out : result.tail).push(line);
  };
  // Line by line per stream (-E puts nearly everything on stderr; stdout has only a hint line).
  const partial = { stdout: '', stderr: '' };
  for (const name of ['stdout', 'stderr'] as const) {
    child[name].setEncoding('utf8');
    child[name].on('data', (d: string) => {
      moved += d.length;
      const lines = (partial[name] + d).split('\n');
      partial[name] = lines.pop() ?? '';
      for (const l of lines) onLine(l);
    });
  }
  child.stdin.on('error', () => undefined); // it may exit (login refused) before reading the script

  // Watchdog: progress is output or any byte the process reads or writes (file or socket, from
  // /proc/PID/io), so one large file that takes minutes is not mistaken for a hang.
  let lastMoved = -1;
  let lastChange = Date.now();
  const watchdog = setInterval(() => {
    void ioBytes(child.pid).then((io) => {
      const now = moved + io;
      if (now !== lastMoved) {
        lastMoved = now;
        lastChange = Date.now();
      } else if (Date.now() - lastChange >= opts.timeoutMs && child.exitCode === null) {
        result.timedOut = true;
        opts.log.warn({ evt: 'backup.smb.hung', pid: child.pid, timeoutMs: opts.timeoutMs });
        child.kill('SIGKILL');
      }
    });
  }, Math.min(1000, Math.max(50, opts.timeoutMs / 4)));

  const script = [`lcd ${markerPrefix}0`, ...steps.map((s, i) => [...s.lines, `lcd ${markerPrefix}${i + 1}`].join('\n'))].join('\n') + '\nexit\n';
  child.stdin.end(script);

  await new Promise<void>((resolve) => {
    child.once('close', (code, signal) => {
      result.code = code;
      result.signal = signal;
      resolve();
    });
    child.once('error', (err) => {
      result.tail.push(`cannot run ${inv.command}: ${err.message}`);
      resolve();
    });
  });
  clearInterval(watchdog);
  opts.running.delete(child);
  for (const rest of [partial.stdout, partial.stderr]) if (rest !== '') onLine(rest);
  if (current < 0) result.tail.unshift(...preamble);
  else if (preamble.length > 0) opts.log.debug({ evt: 'backup.smb.preamble', lines: preamble.slice(0, 5) });
  return result;
}

async function ioBytes(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  try {
    const io = await readFile(`/proc/${pid}/io`, 'utf8');
    let sum = 0;
    for (const m of io.matchAll(/^(?:rchar|wchar): (\d+)$/gm)) sum += Number(m[1]);
    return sum;
  } catch {
    return 0;
  }
}

const AUTH = /^NT_STATUS_(LOGON_FAILURE|WRONG_PASSWORD|NO_SUCH_USER|ACCOUNT_\w+|PASSWORD_\w+|INVALID_LOGON_HOURS|INVALID_WORKSTATION|LOGON_TYPE_NOT_GRANTED|TRUSTED_\w+|NO_LOGON_SERVERS)$/;
const UNREACHABLE = /^NT_STATUS_(CONNECTION_\w+|IO_TIMEOUT|HOST_UNREACHABLE|NETWORK_UNREACHABLE|PORT_UNREACHABLE|BAD_NETWORK_PATH|INVALID_NETWORK_RESPONSE|NETWORK_NAME_DELETED|UNEXPECTED_NETWORK_ERROR|LOCAL_DISCONNECT|REMOTE_DISCONNECT|REMOTE_NOT_LISTENING|PIPE_BROKEN|PIPE_DISCONNECTED|END_OF_FILE|NETWORK_BUSY|INVALID_CONNECTION)$/;
const FULL = /^NT_STATUS_(DISK_FULL|QUOTA_EXCEEDED|ALLOTTED_SPACE_EXCEEDED|NO_SPACE)$/;
export const NOT_FOUND = /^NT_STATUS_(OBJECT_NAME_NOT_FOUND|OBJECT_PATH_NOT_FOUND|NO_SUCH_FILE)$/;

/** The first NT_STATUS word in some output lines, or ''. */
export function statusWord(lines: readonly string[]): string {
  for (const l of lines) {
    const m = /\bNT_STATUS_[A-Z0-9_]+/.exec(l);
    if (m) return m[0];
  }
  return '';
}

/** Every NT_STATUS word in some output lines, in order. */
function statusWords(lines: readonly string[]): string[] {
  return lines.flatMap((l) => l.match(/\bNT_STATUS_[A-Z0-9_]+/g) ?? []);
}

/**
 * The TargetError for output that says a step failed. One cause often prints several statuses
 * (a write cut by a dropped connection: "cli_push returned NT_STATUS_INVALID_PARAMETER", then
 * "NT_STATUS_CONNECTION_DISCONNECTED closing remote file"), so the most telling one decides:
 * cannot connect, login refused, connection lost, disk full, not found, then anything else.
 * ACCESS_DENIED is a refused login only in the login phase ("session setup failed", "tree
 * connect failed"); on a file it is a permission problem ('io').
 */
export function errorFor(what: string, lines: readonly string[], notFoundIsKind: boolean): TargetError {
  const text = lines.filter((l) => l.trim() !== '').slice(0, 3).join(' | ').slice(0, 400) || 'no output';
  const statuses = statusWords(lines);
  const login = lines.some((l) => /session setup failed|tree connect failed/.test(l));
  const pick = (re: RegExp): string | undefined => statuses.find((s) => re.test(s));
  let kind: TargetErrorKind = 'io';
  let status = statuses[0] ?? 'failed';
  const found = (k: TargetErrorKind, s: string | undefined): boolean => {
    if (s === undefined) return false;
    kind = k;
    status = s;
    return true;
  };
  if (lines.some((l) => /^do_connect: /.test(l))) kind = 'unreachable';
  else
    found('auth', pick(AUTH) ?? (login ? pick(/^NT_STATUS_(ACCESS_DENIED|NETWORK_ACCESS_DENIED)$/) : undefined)) ||
      found('unreachable', pick(UNREACHABLE)) ||
      found('full', pick(FULL)) ||
      (notFoundIsKind && found('notFound', pick(NOT_FOUND)));
  return new TargetError(kind, `smb: ${what}: ${status} (${text})`);
}

/** Why a step that never finished did not: the watchdog, the process's last words, or its exit. */
export function unfinishedError(what: string, r: RunResult, stepOut: readonly string[], timeoutMs: number): TargetError {
  if (r.timedOut) return new TargetError('unreachable', `smb: ${what}: NT_STATUS_IO_TIMEOUT (smbclient made no progress for ${Math.round(timeoutMs / 1000)} s and was killed)`);
  const lines = [...stepOut, ...r.tail];
  if (statusWord(lines) !== '' || lines.some((l) => /^do_connect: /.test(l))) return errorFor(what, lines, false);
  const how = r.signal ? `killed by ${r.signal}` : `exited with ${r.code}`;
  return new TargetError('io', `smb: ${what}: smbclient ${how} before finishing (${lines.slice(0, 3).join(' | ') || 'no output'})`);
}

/**
 * Entries of a recursive `ls` (recurse ON): blocks of "  name  ATTR  size  date" lines, each
 * sub-folder's block headed by its full path from the share's root ("\a\b"); the first block
 * (the folder asked for) has no header. The date anchors the end of a line, so a name with
 * spaces is read whole. Folders, "." and ".." are left out.
 */
export function parseListing(lines: readonly string[], shareDir: string, rootFolder: string): RemoteEntry[] {
  const out: RemoteEntry[] = [];
  const rootPrefix = rootFolder === '' ? '' : `${rootFolder}/`;
  let dir = shareDir;
  for (const line of lines) {
    if (line.startsWith('\\')) {
      dir = line.trim().replace(/^\\+/, '').replace(/\\/g, '/');
      continue;
    }
    const m = /^ {2}(.+?) +([A-Z]{0,7}) +(\d+) {2}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/.exec(line);
    if (!m) continue;
    const [, name, attrs, size] = m;
    if (name === '.' || name === '..' || attrs!.includes('D')) continue;
    const full = dir === '' ? name! : `${dir}/${name}`;
    if (!full.startsWith(rootPrefix)) continue;
    out.push({ path: full.slice(rootPrefix.length), size: Number(size) });
  }
  return out;
}
