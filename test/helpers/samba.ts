// A throw-away Samba server for tests, configured as a NAS ships it today: SMB 3 only, signing
// mandatory, NTLMv2 only (modelled on ../shared/bench/samba-reference.sh). It listens on one
// loopback address and port of the test's choosing and keeps all its state (passdb, locks,
// caches, pid, logs) in the test's own folder, so the machine's Samba is neither needed nor
// touched. Runs as root: smbd switches to the logged-in user, which must be a system account,
// so one is made if missing (no home, no shell). The share can be a small tmpfs, to make it full.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';

export interface SambaOptions {
  /** A loopback address (not configured on lo as such: Samba is given it with a /8 mask). */
  address: string;
  port: number;
  user: string;
  password: string;
  /** Where the share lives; default DIR/share. */
  sharePath?: string;
  /** Mount a tmpfs of this size (e.g. '2m') as the share, so that it fills up; unmounted at stop. */
  tmpfsSize?: string;
}

/** Servers of this process not yet stopped, cleaned up synchronously on exit (an assertion that
 *  skipped stop(), an uncaught exception), so no smbd or mount outlives the test run. */
const live = new Set<SambaServer>();
process.once('exit', () => {
  for (const s of live) s.stopSync();
});

export class SambaServer {
  private child: ChildProcess | null = null;
  private mounted = false;

  private constructor(
    readonly dir: string,
    readonly opts: SambaOptions,
    readonly sharePath: string,
    readonly conf: string,
  ) {}

  /** smb://address:port/nas — the share's URL for smbTarget. */
  get url(): string {
    return `smb://${this.opts.address}:${this.opts.port}/nas`;
  }

  static async start(dir: string, opts: SambaOptions): Promise<SambaServer> {
    const state = join(dir, 'state');
    const sharePath = opts.sharePath ?? join(dir, 'share');
    for (const d of ['priv', 'lock', 'cache', 'run', 'log']) await mkdir(join(state, d), { recursive: true });
    await mkdir(sharePath, { recursive: true });
    await chmod(dir, 0o755);
    const conf = join(state, 'smb.conf');
    const s = new SambaServer(dir, opts, sharePath, conf);
    live.add(s);
    try {
      if (opts.tmpfsSize) {
        run('mount', ['-t', 'tmpfs', '-o', `size=${opts.tmpfsSize}`, 'tmpfs', sharePath]);
        s.mounted = true;
      }
      await chmod(sharePath, 0o777);
      await writeFile(conf, smbConf(opts, state, sharePath));
      if (spawnSync('id', [opts.user], { stdio: 'ignore' }).status !== 0) run('useradd', ['-M', '-s', '/usr/sbin/nologin', opts.user]);
      await s.changePassword(opts.password);
      // smbd works as the logged-in user: a share it cannot reach fails every test with ACCESS_DENIED.
      if (spawnSync('runuser', ['-u', opts.user, '--', 'test', '-w', sharePath]).status !== 0) {
        throw new Error(`samba: user ${opts.user} cannot write ${sharePath} (is a folder above it 0700?)`);
      }
      await s.startDaemon();
    } catch (err) {
      await s.stop();
      throw err;
    }
    return s;
  }

  /** Starts smbd again after stopDaemon(), with the same state and share. */
  async startDaemon(): Promise<void> {
    // smbd runs in the foreground under a guard shell that holds a pipe from this process: if
    // the test run dies without stop() (SIGTERM from the runner, SIGKILL), the pipe closes, the
    // read returns, and the guard kills smbd and unmounts the tmpfs, so neither outlives it.
    // smbd keeps its own process group (no --no-process-group): at exit it signals its whole
    // group, which would otherwise take the guard with it before the unmount.
    const umount = this.mounted ? `umount -l '${this.sharePath}'` : ':';
    const guard = `smbd -s '${this.conf}' -F & p=$!; read _; kill $p 2>/dev/null; wait; ${umount}`;
    const child = spawn('sh', ['-c', guard], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    child.stdin!.on('error', () => undefined);
    this.child = child;
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`smbd exited (${code}); see ${this.dir}/state/log`))));
    exited.catch(() => undefined);
    await Promise.race([waitForPort(this.opts.address, this.opts.port), exited]);
  }

  /** The server goes away (as a NAS switched off); startDaemon brings it back. */
  async stopDaemon(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.killTree('SIGTERM');
    const timer = setTimeout(() => this.killTree('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
    this.killTree('SIGKILL'); // children that outlived their parent
    this.child = null;
  }

  /** The pids of the smbd processes serving client connections now (children of the main one). */
  connectionPids(): number[] {
    const main = this.child?.pid;
    if (!main) return [];
    // Under the guard shell: smbd's main process, its helper daemons (notifyd, cleanupd: their
    // own names) and one "smbd" child per client connection.
    const all = childrenOf(main);
    const smbdMain = all.find((pid) => parentOf(pid) === main);
    return all.filter((pid) => pid !== smbdMain && readText(`/proc/${pid}/comm`).trim() === 'smbd');
  }

  async changePassword(password: string): Promise<void> {
    run('smbpasswd', ['-c', this.conf, '-s', '-a', this.opts.user], `${password}\n${password}\n`);
  }

  /** Kills smbd and unmounts the tmpfs; safe to call twice and after a failed start. */
  async stop(): Promise<void> {
    try {
      await this.stopDaemon();
    } finally {
      this.stopSync();
    }
  }

  /** The synchronous part of stop, also run at process exit. */
  stopSync(): void {
    this.killTree('SIGKILL');
    this.child = null;
    if (this.mounted) {
      // Lazy: a process of a failed test may still hold a file open on it.
      spawnSync('umount', ['-l', this.sharePath], { stdio: 'ignore' });
      this.mounted = false;
    }
    live.delete(this);
  }

  private killTree(signal: NodeJS.Signals): void {
    const main = this.child?.pid;
    if (!main) return;
    for (const pid of [...childrenOf(main), main]) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  }
}

function smbConf(opts: SambaOptions, state: string, share: string): string {
  // "interfaces" must name an address of a local interface; 127.0.140.1 is not one of lo's
  // configured addresses, but with the /8 mask Samba matches lo and binds to just this address.
  return `[global]
  smb ports = ${opts.port}
  interfaces = ${opts.address}/8
  bind interfaces only = yes
  server role = standalone server
  passdb backend = tdbsam:${state}/priv/passdb.tdb
  private dir = ${state}/priv
  state directory = ${state}/lock
  cache directory = ${state}/cache
  lock directory = ${state}/lock
  pid directory = ${state}/run
  ncalrpc dir = ${state}/run/ncalrpc
  log file = ${state}/log/%m.log
  server min protocol = SMB3
  server signing = mandatory
  ntlm auth = ntlmv2-only
  disable netbios = yes
  load printers = no
  printcap name = /dev/null
  disable spoolss = yes
[nas]
  path = ${share}
  read only = no
`;
}

function run(cmd: string, args: string[], input?: string): void {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.error?.message ?? ''}${r.stderr}${r.stdout}`);
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function parentOf(pid: number): number {
  return Number(/\) \S (\d+)/.exec(readText(`/proc/${pid}/stat`))?.[1] ?? 0);
}

/** Every descendant of pid (by the parent pid in /proc/N/stat). */
function childrenOf(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readText(`/proc/${name}/stat`);
    const m = /\) \S (\d+)/.exec(stat);
    if (m) parent.set(Number(name), Number(m[1]));
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [pid, pp] of parent) {
      if (pp === p) {
        out.push(pid);
        walk(pid);
      }
    }
  };
  walk(root);
  return out;
}

async function waitForPort(host: string, port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`smbd did not listen on ${host}:${port}`);
}
