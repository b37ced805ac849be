/** What the benchmarks share: running tools, mlsd as the box runs it, and its memory. */
import { spawn, execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, runCli } from '../helpers/daemon.js';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const PF_SCRIPT = resolve(ROOT, '../shared/bench/postfix-reference.sh');
export const SMTP_SOURCE = '/usr/sbin/smtp-source';

export function run(cmd: string, args: string[], timeoutMs = 600_000): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      res({ code: err ? Number((err as { code?: unknown }).code) || 1 : 0, out: stdout + stderr }),
    );
  });
}

export async function vmHwmKiB(pid: number): Promise<number> {
  const m = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/**
 * The node flags of the box's systemd unit (rootfs-overlay), so the benchmark runs mlsd
 * exactly as the appliance does: one source of truth for them.
 */
export async function unitNodeFlags(): Promise<string[]> {
  const unit = await readFile(resolve(ROOT, 'rootfs-overlay/etc/systemd/system/mlsd.service'), 'utf8');
  const exec = /^ExecStart=\S*node((?:\s+--\S+)*)\s/m.exec(unit);
  return exec?.[1]?.trim().split(/\s+/).filter(Boolean) ?? [];
}

export interface BenchMlsd {
  root: string;
  pid: number;
  configDir: string;
  dataDir: string;
  logPath: string;
  stop: () => Promise<void>;
}

/**
 * mlsd as operators run it, with the given config (the test helper's create() imposes the
 * test listeners). Logs go to a file, as to journald, so the bench process does not parse them.
 * `parentDir`: where its config and data go (a bench that writes gigabytes keeps them off /tmp).
 */
export async function startMlsd(config: object, users: string[] = [], parentDir = tmpdir()): Promise<BenchMlsd> {
  const root = await mkdtemp(join(parentDir, 'mlsd-bench-'));
  const configDir = join(root, 'config');
  const dataDir = join(root, 'data');
  await mkdir(configDir, { recursive: true });
  // The reference Postfix has no per-client connection limit for 127/8
  // (smtpd_client_connection_count_limit = 0, smtpd_client_event_limit_exceptions): the same
  // job for mlsd is both concurrency limits off, unless the bench sets its own.
  const cfg = config as { thresholds?: Record<string, unknown> };
  const withLimitsOff = { ...cfg, thresholds: { perIpConcurrentConnections: 0, perSubnetConcurrentConnections: 0, ...cfg.thresholds } };
  await writeFile(join(configDir, 'config.json'), JSON.stringify(withLimitsOff, null, 2));
  const logPath = join(root, 'mlsd.log');
  const launch = async () => {
    const log = await open(logPath, 'w');
    const proc = spawn(process.execPath, [...(await unitNodeFlags()), CLI, 'start', '--config-dir', configDir, '--data-dir', dataDir], {
      stdio: ['ignore', log.fd, 'inherit'],
    });
    await log.close();
    // SIGTERM for a clean shutdown; SIGKILL if it hangs, so the bench never leaves it behind.
    const stop = async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      if ((await Promise.race([exited, sleep(10_000, 'timeout')])) === 'timeout') proc.kill('SIGKILL');
    };
    for (let i = 0; ; i++) {
      if (proc.exitCode !== null) throw new Error(`mlsd exited (${proc.exitCode}); log: ${logPath}`);
      if (i > 300) {
        await stop();
        throw new Error(`mlsd not ready after 30 s; log: ${logPath}`);
      }
      if ((await readFile(logPath, 'utf8')).includes('"evt":"daemon.ready"')) break;
      await sleep(100);
    }
    return { proc, stop };
  };
  // The first start of a box makes its certificate, DKIM keys and admin password; the box
  // then runs for months on later starts. Measure such a later start.
  await (await launch()).stop();
  const { proc, stop } = await launch();
  for (const u of users) {
    const added = await runCli(['user', 'add', u, '--password-stdin', '--config-dir', configDir], 'bench-password\n');
    if (added.code !== 0) {
      await stop();
      throw new Error(`mlsd user add failed: ${added.stderr}`);
    }
  }
  return { root, pid: proc.pid!, configDir, dataDir, logPath, stop };
}
