import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

/** A free TCP port on a loopback address (the OS picks it, we release it at once). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** host:port, an IPv6 host in brackets. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export interface DaemonOptions {
  /** Address the daemon's listeners bind (each test file uses its own 127.x address). */
  host: string;
  config?: Record<string, unknown>;
  dataDir?: string;
  configDir?: string;
  /** The script run as `<entry> start ...` instead of the mlsd CLI (a daemon with a test's own capability). */
  entry?: string;
}

export interface LogLine {
  evt?: string;
  msg?: string;
  [k: string]: unknown;
}

/** mlsd started as operators start it: `node <bin> start`, in its own temp dirs. */
export class TestDaemon {
  proc: ChildProcess | null = null;
  entry = CLI;
  logs: LogLine[] = [];
  stderr = '';
  /** Non-log lines the daemon printed (the first-start notice naming the admin password file). */
  notices: string[] = [];
  ports: { mx: number; submission: number; smtps: number; admin: number } = { mx: 0, submission: 0, smtps: 0, admin: 0 };
  private waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  constructor(
    readonly host: string,
    readonly root: string,
    readonly configDir: string,
    readonly dataDir: string,
  ) {}

  /** The web admin's address: https://host:port */
  get adminUrl(): string {
    return `https://${hostPort(this.host, this.ports.admin)}`;
  }

  static async create(opts: DaemonOptions): Promise<TestDaemon> {
    const root = await mkdtemp(join(tmpdir(), 'mlsd-test-'));
    const configDir = opts.configDir ?? join(root, 'config');
    const dataDir = opts.dataDir ?? join(root, 'data');
    await mkdir(configDir, { recursive: true });
    const d = new TestDaemon(opts.host, root, configDir, dataDir);
    d.entry = opts.entry ?? CLI;
    d.ports = { mx: await freePort(opts.host), submission: await freePort(opts.host), smtps: await freePort(opts.host), admin: await freePort(opts.host) };
    const { smtp: smtpOverrides, admin: adminOverrides, ...rest } = (opts.config ?? {}) as { smtp?: Record<string, unknown>; admin?: Record<string, unknown> };
    const config = {
      hostname: 'mail.example.test',
      domains: ['example.test', 'example2.test'],
      spool: { minFreeBytes: 0 },
      // Tests never ask a real DNS server: by default look-ups go to a closed loopback port
      // (remote mail is then deferred and stays queued); delivery tests pass their own server.
      dns: { servers: ['127.0.0.1:9'], timeoutSeconds: 1 },
      // Outbound connections come from the daemon's own test address.
      routing: { sourceAddress: opts.host },
      ...rest,
      // The web admin on the test's own address (the sim board's 127.0.0.1:8443 would clash between daemons).
      admin: { listen: hostPort(opts.host, d.ports.admin), ...adminOverrides },
      smtp: {
        ...smtpOverrides,
        listeners: [
          { name: 'mx', host: opts.host, port: d.ports.mx, starttls: true },
          { name: 'submission', host: opts.host, port: d.ports.submission, starttls: true, authRequired: true },
          { name: 'smtps', host: opts.host, port: d.ports.smtps, implicitTls: true },
        ],
      },
    };
    await writeFile(join(configDir, 'config.json'), JSON.stringify(config, null, 2));
    return d;
  }

  /**
   * Starts the daemon. A port freePort found free may be taken by another process before the
   * daemon binds it (the OS hands out the same range for outgoing connections): on
   * EADDRINUSE the test's own listener ports are picked again and the start retried.
   */
  async start(extraArgs: string[] = []): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startOnce(extraArgs);
      } catch (err) {
        if (attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err;
        await this.repickPorts();
      }
    }
  }

  private async repickPorts(): Promise<void> {
    const path = join(this.configDir, 'config.json');
    const doc = JSON.parse(await readFile(path, 'utf8')) as { smtp?: { listeners?: { name: string; port: number }[] }; admin?: { listen?: string } };
    const ours = this.ports as Record<string, number>;
    if (doc.admin?.listen === hostPort(this.host, this.ports.admin)) {
      this.ports.admin = await freePort(this.host);
      doc.admin.listen = hostPort(this.host, this.ports.admin);
    }
    for (const l of doc.smtp?.listeners ?? []) {
      if (ours[l.name] !== l.port) continue; // a port the test chose itself stays
      l.port = await freePort(this.host);
      ours[l.name] = l.port;
    }
    await writeFile(path, JSON.stringify(doc, null, 2));
  }

  private async startOnce(extraArgs: string[]): Promise<void> {
    this.logs = [];
    const proc = spawn(process.execPath, [this.entry, 'start', '--config-dir', this.configDir, '--data-dir', this.dataDir, ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MLSD_LOG_LEVEL: 'info' },
    });
    this.proc = proc;
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) {
        if (line.trim()) this.notices.push(line);
        return;
      }
      let l: LogLine;
      try {
        l = JSON.parse(line) as LogLine;
      } catch {
        return;
      }
      this.logs.push(l);
      this.waiters = this.waiters.filter((w) => (w.pred(l) ? (w.resolve(l), false) : true));
    });
    proc.stderr!.on('data', (c) => (this.stderr += c.toString()));
    const exited = new Promise<never>((_, reject) =>
      proc.once('exit', (code) => reject(new Error(`mlsd exited (${code}) before ready: ${this.stderr}`))),
    );
    await Promise.race([this.waitFor((l) => l.evt === 'daemon.ready'), exited]);
  }

  /** Resolves with the first log line (past or future) matching pred. */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs = 20000): Promise<LogLine> {
    const seen = this.logs.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timed out waiting for a log line')), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(t);
          resolve(l);
        },
      });
    });
  }

  /** Runs `mlsd <args>` against this daemon's control socket. */
  cli(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return runCli([...args, '--config-dir', this.configDir], stdin);
  }

  /** Every message in a local user's Maildir new/, as text. */
  async mailbox(user: string, domain = 'example.test'): Promise<string[]> {
    const dir = join(this.dataDir, 'mail', domain, user, 'Maildir', 'new');
    const names = await readdir(dir).catch(() => [] as string[]);
    return Promise.all(names.map((n) => readFile(join(dir, n), 'utf8')));
  }

  async addUser(address: string, password: string): Promise<void> {
    const r = await this.cli(['user', 'add', address, '--password-stdin'], password + '\n');
    if (r.code !== 0) throw new Error(`user add failed: ${r.stderr}`);
  }

  /** Stops the daemon the way systemd does (SIGTERM) or the way a crash does (SIGKILL). */
  private async signal(sig: NodeJS.Signals): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill(sig);
    await done;
  }

  stop(): Promise<void> {
    return this.signal('SIGTERM');
  }

  kill9(): Promise<void> {
    return this.signal('SIGKILL');
  }

  async cleanup(): Promise<void> {
    await this.stop();
    await rm(this.root, { recursive: true, force: true });
  }
}

export function runCli(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // execFile's default 1 MiB of output kills the CLI mid-answer (a quarantine list of a
    // thousand messages is more): a test then reads a failure that is only the test's own.
    const child = execFile(process.execPath, [CLI, ...args], { maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin!.end(stdin);
    else child.stdin!.end();
  });
}

/** Polls `f` until it returns something truthy (its value), or fails naming `what`. */
export async function eventually<T>(what: string, f: () => Promise<T | undefined | false>, timeoutMs = 15000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs swaks (the real client) and returns its transcript. */
export function swaks(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('swaks', ['--timeout', '20', ...args], { timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

/** The server reply lines of a swaks transcript ("<-", "<~", "<**", "<~*"). */
export function serverLines(out: string): string[] {
  return out
    .split('\n')
    .filter((l) => /^<[~*-]/.test(l))
    .map((l) => l.replace(/^<[~*-]*\s*/, '').trim());
}
