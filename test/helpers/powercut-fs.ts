// The power-cut filesystem (test/powercut/powercut_fs.py, on Debian's python3-fusepy) from a
// test: mount a backing folder, run a daemon on the mount, then cut the power: every write that
// was not fsynced, and every directory entry whose directory was not fsynced, is gone.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

// Debian's python3, where python3-fusepy is installed (a pyenv python earlier on PATH lacks it).
const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../../../test/powercut/powercut_fs.py', import.meta.url));

/** What a cut threw away, and what the mount saw before it. */
export interface CutReport {
  /** Files whose content went back to what was last fsynced (or to empty). */
  filesRolledBack: number;
  /** Bytes written since the files' last fsync. */
  bytesLost: number;
  /** Names that existed but whose directory was not fsynced since they were made. */
  entriesLost: number;
  /** Names removed or renamed away whose directory was not fsynced since: back again. */
  entriesRevived: number;
  /** A folder durable under two names (a directory rename half synced): kept under one. */
  cycles: number;
  ops: number;
  writes: number;
  bytesWritten: number;
  fsyncs: number;
  fsyncdirs: number;
}

/** Every mount not yet gone, for destroyAllMounts(). */
const live = new Set<PowerCutFs>();

/**
 * For a test file's `after`, once its daemons are stopped: every mount it left (a test that
 * failed half-way) is taken down, so no later test meets a dead mount point.
 */
export async function destroyAllMounts(): Promise<void> {
  await Promise.all([...live].map((fs) => fs.destroy()));
}

export class PowerCutFs {
  private output = '';
  private readonly exited: Promise<number | null>;

  private constructor(
    readonly backing: string,
    readonly mountpoint: string,
    private readonly control: string,
    private readonly proc: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.stderr!.on('data', (c: Buffer) => (this.output += c.toString()));
    live.add(this);
    void this.exited.then(() => live.delete(this));

  }

  /** Mounts `backing` (whose present content counts as durable) on `mountpoint`. */
  static async mount(backing: string, mountpoint: string, control = `${mountpoint}.ctl`): Promise<PowerCutFs> {
    await mkdir(backing, { recursive: true });
    await mkdir(mountpoint, { recursive: true });
    // setpriv --pdeathsig: a test run that dies takes the filesystem process with it (the
    // mount then answers ENOTCONN until unmounted, and the next mount of the folder replaces it).
    const proc = spawn('/usr/bin/setpriv', ['--pdeathsig', 'SIGKILL', '--', PYTHON, '-W', 'ignore', SCRIPT, backing, mountpoint, control], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const fs = new PowerCutFs(backing, mountpoint, control, proc);
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: proc.stdout! }).on('line', (l) => {
        if (l === 'ready') resolve();
      });
      proc.once('exit', (code) => reject(new Error(`powercut-fs exited (${code}) before mounting: ${fs.output}`)));
    });
    const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    try {
      await ready;
    } finally {
      clearTimeout(t);
    }
    return fs;
  }

  private ask(cmd: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const s = connect(this.control);
      // A cut rewrites the whole backing folder; a minute is far more than it takes.
      s.setTimeout(60_000, () => s.destroy(new Error('no answer in 60 s')));
      let buf = '';
      s.on('data', (c) => {
        buf += c.toString();
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        s.end();
        const r = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
        if (r.ok !== true) reject(new Error(`powercut-fs ${cmd}: ${String(r.error)}`));
        else resolve(r);
      });
      s.on('error', (e) => reject(new Error(`powercut-fs ${cmd}: ${e.message} ${this.output}`)));
      s.write(`${cmd}\n`);
    });
  }

  /** The instant of the cut: from now on no operation on the mount completes. */
  async freeze(): Promise<void> {
    await this.ask('freeze');
  }

  /**
   * Throws away what was not durable, rewrites the backing folder to what a disk would hold,
   * unmounts and ends the helper. Call it after freeze() and after the processes using the
   * mount were SIGKILLed: their operations that were waiting fail then (unseen: they are dying).
   */
  async cut(): Promise<CutReport> {
    const r = (await this.ask('cut')) as unknown as CutReport;
    await this.exited;
    return r;
  }

  /**
   * A power cut under running processes: the mount freezes, the processes are SIGKILLed, what
   * was not durable is thrown away. Resolves when they and the helper are gone.
   */
  async powerCut(victims: ChildProcess[]): Promise<CutReport> {
    await this.freeze();
    const gone = victims.map((p) => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r()))));
    for (const p of victims) p.kill('SIGKILL');
    const report = await this.cut();
    await Promise.all(gone);
    return report;
  }

  /**
   * An orderly shutdown: everything on the mount is kept as it is now. The helper ends once no
   * process holds a file on the mount any more; one still holding them is its caller's
   * mistake, and after 10 s the helper is killed, which fails their operations.
   */
  async unmount(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    await this.ask('unmount');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(t);
  }

  async stats(): Promise<Record<string, unknown>> {
    return this.ask('stats');
  }

  /** For a test's cleanup: gone whatever state it was in (frozen operations fail at once). */
  async destroy(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      await this.unmount().catch(() => this.proc.kill('SIGKILL'));
      await this.exited;
    }
    await new Promise<void>((resolve) => execFile('umount', ['-l', this.mountpoint], () => resolve()));
  }
}
