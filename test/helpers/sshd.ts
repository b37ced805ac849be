// A throw-away OpenSSH sshd for tests, as the SFTP server of a NAS: Debian's /usr/sbin/sshd in
// the foreground (-D -e) on a loopback address and port, with a host key of the test's own
// (ssh-keygen into a temp folder), its own pid file and authorized_keys, internal-sftp, and one
// system test user who logs in by password (chpasswd) or by key. The system sshd (/etc/ssh) is
// neither read nor written. Tests run as root: creating the user, chpasswd and mounting the small
// tmpfs that makes the upload folder full all need it.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { removeDir, shutDown, spawnDaemon, startOnPort, talk, waitUntilReady, withTempDir, type DaemonProcess } from './daemon-process.js';

const run = promisify(execFile);
const SSHD = '/usr/sbin/sshd';
/** The login the tests use; a system account without a home (sessions start in /). */
export const SFTP_TEST_USER = 'mlsd-sftp-test';

export interface SshdOptions {
  host: string;
  /** The test user's password (set with chpasswd at start). */
  password: string;
  /** Public keys (OpenSSH one-line form) allowed to log in as the test user. */
  authorizedKeys?: string[];
  /** SFTP requests the server refuses (sftp-server -P, e.g. ['posix-rename']), as some NAS do. */
  deniedRequests?: string[];
}

export class Sshd {
  private constructor(
    private readonly daemon: DaemonProcess,
    readonly host: string,
    readonly port: number,
    /** The temp folder holding config, keys and the upload folder. */
    readonly dir: string,
    private readonly uid: number,
    private readonly gid: number,
  ) {}

  private readonly mounts: string[] = [];

  /** Where the test user may write: the root folder of the sftp:// URL (absolute on the server). */
  get uploadDir(): string {
    return join(this.dir, 'upload');
  }

  /** The host key's public half, for `ssh-keygen -lf`. */
  get hostKeyPub(): string {
    return join(this.dir, 'ssh_host_ed25519_key.pub');
  }

  /** What sshd logged (LogLevel VERBOSE: logins accepted and refused). */
  get output(): string {
    return this.daemon.output;
  }

  static async start(o: SshdOptions): Promise<Sshd> {
    const { uid, gid } = await ensureTestUser();
    await setPassword(o.password);
    // Privilege separation: sshd refuses to start without this (empty, root-owned) folder.
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    return withTempDir('mlsd-sshd-', async (dir) => {
      // The unprivileged session must reach the upload folder through the temp folder.
      await chmod(dir, 0o755);
      await run('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'mlsd-test-host', '-f', join(dir, 'ssh_host_ed25519_key')]);
      await writeFile(join(dir, 'authorized_keys'), (o.authorizedKeys ?? []).map((k) => k.trim() + '\n').join(''), { mode: 0o644 });
      await mkdir(join(dir, 'upload'), { mode: 0o755 });
      await chown(join(dir, 'upload'), uid, gid);
      return startOnPort({
        host: o.host,
        attempts: 5,
        launch: async (port) => {
          await writeFile(join(dir, 'sshd_config'), sshdConfig(dir, o.host, port, o.deniedRequests ?? []));
          return new Sshd(spawnDaemon('sshd', SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')]), o.host, port, dir, uid, gid);
        },
        ready: (s) =>
          waitUntilReady(s.daemon, {
            timeoutMs: 10_000,
            intervalMs: 50,
            // sshd speaks first: its version line means it listens and serves.
            probe: async () => (await talk(o.host, s.port, { until: (g) => g.includes('\n'), timeoutMs: 1000 })).startsWith('SSH-2.0-'),
            timeoutMessage: `sshd did not greet on ${o.host}:${s.port} within 10000 ms`,
          }),
        discard: (s) => s.kill(),
      });
    });
  }

  /** The test user's new password (logins from then on need it; open sessions stay). */
  setPassword(password: string): Promise<void> {
    return setPassword(password);
  }

  /** A new folder `name` in the upload folder, of only `bytes` (a tmpfs mounted there, owned by
   *  the test user), so writes beyond that fail with ENOSPC as on a full NAS. Returns its path. */
  async smallFolder(name: string, bytes: number): Promise<string> {
    const dir = join(this.uploadDir, name);
    await mkdir(dir);
    await run('/usr/bin/mount', ['-t', 'tmpfs', '-o', `size=${bytes},uid=${this.uid},gid=${this.gid},mode=0755`, 'mlsd-sshd-small', dir]);
    this.mounts.push(dir);
    return dir;
  }

  /** Kills the listener and every session it forked (by pid: the sessions outlive the listener). */
  async kill(): Promise<void> {
    // Found before the listener goes: then they are reparented and no longer known as its own.
    const sessions = descendants(this.daemon.proc.pid!);
    await this.daemon.terminate(2000);
    killAll(sessions);
  }

  /** Kills only the per-connection processes: every open SSH connection drops, the server stays. */
  killSessions(): void {
    killAll(descendants(this.daemon.proc.pid!));
  }

  /** Stops sshd and removes everything (the tmpfs too). Safe to call twice. */
  async stop(): Promise<void> {
    await shutDown(() => this.kill(), this.host, this.port, 'sshd', null);
    for (const m of this.mounts.splice(0)) await run('/usr/bin/umount', [m]).catch(() => undefined);
    await removeDir(this.dir);
  }
}

function sshdConfig(dir: string, host: string, port: number, denied: string[]): string {
  return [
    `ListenAddress ${host}:${port}`,
    `HostKey ${join(dir, 'ssh_host_ed25519_key')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    // The temp folder is root's, not the user's: StrictModes would refuse the keys file in it.
    'StrictModes no',
    'PubkeyAuthentication yes',
    'PasswordAuthentication yes',
    'KbdInteractiveAuthentication no',
    // Without PAM sshd checks the password against /etc/shadow itself; no PAM session noise.
    'UsePAM no',
    'PermitRootLogin no',
    `AllowUsers ${SFTP_TEST_USER}`,
    `Subsystem sftp internal-sftp${denied.length ? ` -P ${denied.join(',')}` : ''}`,
    'LogLevel VERBOSE',
    'MaxStartups 100',
    '',
  ].join('\n');
}

async function ensureTestUser(): Promise<{ uid: number; gid: number }> {
  const find = () => readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(SFTP_TEST_USER + ':'));
  if (!find()) {
    await run('/usr/sbin/useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/bin/sh', SFTP_TEST_USER]).catch((err: unknown) => {
      // Another test file may have created it meanwhile.
      if (!find()) throw err;
    });
  }
  const f = find()!.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

async function setPassword(password: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const p = execFile('/usr/sbin/chpasswd', (err) => (err ? reject(err) : resolve()));
    p.stdin!.end(`${SFTP_TEST_USER}:${password}\n`);
  });
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone with its connection.
    }
  }
}

/** Every process below pid, from /proc (sshd forks one or two per connection). */
function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // The name in parentheses may hold spaces: the ppid is the 2nd field after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(e), ppid);
    } catch {
      // Exited while we looked.
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of parentOf) {
      if (parent === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}
