// What the helpers that run a real Debian daemon on loopback (clamd, spamd, rspamd, dnsmasq,
// smtp-sink) have in common: starting it so that it cannot outlive the test run, picking a port
// again when the one chosen was taken, waiting until it answers, stopping it, and waiting until
// its port can be bound again. Each helper keeps what is particular to its daemon.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './daemon.js';

// util-linux's setpriv (essential on Debian). With --pdeathsig the kernel SIGKILLs the daemon
// when this Node process dies, even by SIGKILL, so a crashed test run cannot leave a daemon
// holding a port the next run wants. Any change of credentials in the daemon clears that
// signal again, which is why the helpers keep their daemons from switching users.
const SETPRIV = '/usr/bin/setpriv';

export const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A spawned daemon with everything it printed and a promise of its exit (made at spawn, so an
 *  exit that happens before anyone asks is not missed). */
export class DaemonProcess {
  /** stdout and stderr as far as they are piped, interleaved as they arrived. */
  output = '';
  private readonly exited: Promise<void>;

  constructor(
    /** The name error messages use, e.g. "clamd". */
    readonly name: string,
    readonly proc: ChildProcess,
    /** Date.now() just before the spawn, for start-up times. */
    readonly spawnedAt: number,
  ) {
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    proc.stdout?.on('data', (c: Buffer) => (this.output += c.toString()));
    proc.stderr?.on('data', (c: Buffer) => (this.output += c.toString()));
  }

  running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The error for a daemon that died while we waited for it, with what it said about why. */
  exitedError(): Error {
    return new Error(`${this.name} exited (${this.proc.exitCode ?? this.proc.signalCode}): ${this.output}`);
  }

  /**
   * Asks the daemon to stop (SIGTERM, so it can stop its children and clean up), SIGKILLs it
   * if it has not exited after graceMs, and resolves when it has exited. A daemon whose main
   * process is not proc itself passes its own ways of signalling; `term` returning false means
   * nothing could be asked, so the kill follows at once.
   */
  async terminate(
    graceMs: number,
    term: () => boolean | void | Promise<boolean | void> = () => void this.proc.kill('SIGTERM'),
    kill: () => void = () => void this.proc.kill('SIGKILL'),
  ): Promise<void> {
    if (!this.running()) return;
    const asked = await term();
    const t = setTimeout(kill, asked === false ? 0 : graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

/** Spawns bin under `setpriv --pdeathsig SIGKILL` where setpriv exists (see SETPRIV), with
 *  stdout and stderr piped unless options say otherwise. */
export function spawnDaemon(name: string, bin: string, args: string[], options: SpawnOptions = {}): DaemonProcess {
  const [cmd, argv] = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', bin, ...args]] : [bin, args];
  const spawnedAt = Date.now();
  return new DaemonProcess(name, spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...options }), spawnedAt);
}

/** A temp dir for one daemon's config and state, removed again if setup throws (on success
 *  the daemon's stop() removes it). */
export async function withTempDir<T>(prefix: string, setup: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    return await setup(dir);
  } catch (err) {
    await removeDir(dir);
    throw err;
  }
}

export function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

export interface StartOnPortOptions<S> {
  host: string;
  /** A fixed port; without one each attempt gets a free port of its own. */
  port?: number;
  /** At most this many attempts. */
  attempts: number;
  /** Writes what the daemon needs for port and spawns it there. */
  launch(port: number): S | Promise<S>;
  /** Resolves once the daemon serves. */
  ready(s: S): Promise<unknown>;
  /** Ends a daemon that did not become ready. Resolving true says another attempt on the same
   *  (fixed) port could succeed, e.g. because the next one starts differently. */
  discard(s: S): Promise<boolean | void>;
}

/**
 * Starts a daemon, on a new free port after a failed attempt: a port freePort() picked may be
 * taken again (or, for UDP, be taken already) before the daemon binds it. With a fixed port
 * another attempt would only fail the same way, so there is none unless discard() says so.
 * Throws the last attempt's error.
 */
export async function startOnPort<S>(o: StartOnPortOptions<S>): Promise<S> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < o.attempts; attempt++) {
    const port = o.port ?? (await freePort(o.host));
    const s = await o.launch(port);
    try {
      await o.ready(s);
      return s;
    } catch (err) {
      lastErr = err;
      const sameAgain = await o.discard(s);
      if (o.port && !sameAgain) break;
    }
  }
  throw lastErr;
}

export interface WaitReadyOptions {
  timeoutMs: number;
  /** Pause between probes. */
  intervalMs: number;
  /** One look: true once the daemon serves. */
  probe(): Promise<boolean>;
  /** What did not happen in time, e.g. "clamd did not answer PING on h:p within 15000 ms". */
  timeoutMessage: string;
}

/** Probes until the daemon serves, failing at once (with its output) if it exits and after
 *  timeoutMs otherwise: a listening socket alone does not mean it is ready. Resolves with the
 *  ms from spawn to ready (start-up times are worth reporting: they dominate test time). */
export async function waitUntilReady(d: DaemonProcess, o: WaitReadyOptions): Promise<number> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    if (!d.running()) throw d.exitedError();
    if (await o.probe()) return Date.now() - d.spawnedAt;
    if (Date.now() > deadline) throw new Error(`${o.timeoutMessage}: ${d.output}`);
    await pause(o.intervalMs);
  }
}

export interface TalkOptions {
  /** Sent once connected; nothing is sent without it (a daemon that speaks first). */
  request?: string;
  /** Send request with end(), for daemons that read until the client's EOF. */
  halfClose?: boolean;
  /** The reply is complete: stop reading without waiting for the peer to close. */
  until?: (got: string) => boolean;
  /** Written when `until` is met, before disconnecting (e.g. QUIT). */
  farewell?: string;
  /** Gives up (returning what came so far) after this much idle time. */
  timeoutMs: number;
}

/** One short exchange with a daemon's TCP port: whatever came back before the reply was
 *  complete, the peer closed or timeoutMs passed. Never rejects: a refused connection is ''. */
export function talk(host: string, port: number, o: TalkOptions): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let got = '';
    const done = () => (s.destroy(), resolve(got));
    s.setTimeout(o.timeoutMs, done);
    const request = o.request;
    if (request !== undefined) s.once('connect', () => (o.halfClose ? s.end(request) : s.write(request)));
    s.on('data', (c: Buffer) => {
      got += c.toString();
      if (o.until?.(got)) {
        if (o.farewell) s.write(o.farewell);
        done();
      }
    });
    s.once('error', done);
    s.once('close', done);
  });
}

/** Ends a daemon for good: kill() it, wait until host:port can be bound again (see
 *  waitPortFree) and remove its temp dir (dir null: none). */
export async function shutDown(kill: () => Promise<void>, host: string, port: number, name: string, dir: string | null): Promise<void> {
  await kill();
  await waitPortFree(host, port, 5000, name);
  if (dir) await removeDir(dir);
}

/** Binds host:port the way the next server will: success proves the stopped daemon (and every
 *  child that shared its socket) let go, so a test can start the next one there at once. */
export async function waitPortFree(host: string, port: number, timeoutMs: number, name: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, host, () => s.close(() => resolve(true)));
    });
    if (free) return;
    if (Date.now() > deadline) throw new Error(`${host}:${port} still in use after stopping ${name}`);
    await pause(25);
  }
}
