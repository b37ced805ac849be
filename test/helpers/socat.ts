// A null-modem cable between two pseudo-terminals, made by socat, for tests of serial lines
// (heartbeat, LCD, console) and for the simulated board: each end is a device path that a
// SerialLine opens as it would a UART. The cable can be cut (socat ends: both devices vanish and
// every open end sees a hang-up), restored (same paths again), and paused (socat stopped, so it
// drains neither side and writes eventually block, like a peer holding flow control).
//
// What socat 1.7.4 does when an end goes away (found by experiment): nothing. It holds the slave
// side of both pseudo-terminals open itself, so an end that closes its device, or whose process
// is SIGKILLed, is no hang-up to socat; it stays up, and bytes sent toward a closed end wait in
// that pty's input queue (serialport's open flushes them, as a UART would never have had them).
// socat only ends when signalled, and then unlinks its links (after SIGTERM; after SIGKILL they
// stay, dangling, and the next socat replaces them). The helper still respawns socat whenever
// it exits without being asked to, so that the pair outlives either end whatever a socat version
// does about it.
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnDaemon, waitUntilReady, type DaemonProcess } from './daemon-process.js';

const SOCAT = '/usr/bin/socat';

export interface PtyPair {
  /** The device path of one end (a symlink to /dev/pts/N, renewed by each socat). */
  a: string;
  b: string;
  /** Ends socat and keeps it down: both devices vanish, open ends see a hang-up. */
  cut(): Promise<void>;
  /** Starts socat again after a cut, on the same paths; resolves once both exist. */
  restore(): Promise<void>;
  /** SIGSTOPs socat, so it drains neither side and writes eventually block. */
  pause(): void;
  resume(): void;
  /** Ends socat for good and removes the links. */
  stop(): Promise<void>;
}

/** Starts socat with the ends at `<dir>/<name>-a` and `<dir>/<name>-b`; resolves once both exist. */
export async function startPtyPair(dir: string, name = 'ha'): Promise<PtyPair> {
  const pair = new SocatPair(join(dir, `${name}-a`), join(dir, `${name}-b`));
  await pair.restore();
  return pair;
}

const exists = (p: string) => access(p).then(
  () => true,
  () => false,
);

class SocatPair implements PtyPair {
  private socat: DaemonProcess | null = null;
  /** False after cut() and stop(): an exit is then wanted, not a fault to repair. */
  private wanted = false;
  private paused = false;
  /** A respawn in flight, and the error of one that failed (thrown by the next restore/stop). */
  private respawning: Promise<void> | null = null;
  private respawnError: unknown = null;

  constructor(
    readonly a: string,
    readonly b: string,
  ) {}

  async restore(): Promise<void> {
    this.throwRespawnError();
    this.wanted = true;
    await this.respawning;
    if (!this.socat) await this.spawn();
  }

  async cut(): Promise<void> {
    this.wanted = false;
    await this.respawning;
    await this.end();
  }

  pause(): void {
    if (this.socat?.proc.kill('SIGSTOP')) this.paused = true;
  }

  resume(): void {
    this.socat?.proc.kill('SIGCONT');
    this.paused = false;
  }

  async stop(): Promise<void> {
    await this.cut();
    this.throwRespawnError();
  }

  private async spawn(): Promise<void> {
    // Links left by a socat that was SIGKILLed dangle; removed first, so that waiting for the
    // links to exist waits for this socat's.
    await Promise.all([rm(this.a, { force: true }), rm(this.b, { force: true })]);
    const end = (p: string) => `pty,raw,echo=0,link=${p}`;
    const d = spawnDaemon('socat', SOCAT, ['-d', '-d', end(this.a), end(this.b)]);
    this.socat = d;
    this.paused = false;
    let ready = false;
    d.proc.once('exit', () => {
      if (this.socat !== d) return;
      this.socat = null;
      // One that never got ready is waitUntilReady's failure to report, not one to retry.
      if (ready && this.wanted) this.respawning = this.respawn();
    });
    await waitUntilReady(d, {
      timeoutMs: 5000,
      intervalMs: 10,
      probe: async () => (await exists(this.a)) && (await exists(this.b)),
      timeoutMessage: `socat did not create ${this.a} and ${this.b} within 5000 ms`,
    });
    ready = true;
  }

  private async respawn(): Promise<void> {
    try {
      await this.spawn();
    } catch (err) {
      this.respawnError = err;
    } finally {
      this.respawning = null;
    }
  }

  /** SIGTERM (socat then unlinks its links), SIGCONT so that a paused socat can act on it, SIGKILL
   *  after a grace; the links are removed in any case, as the devices are gone. */
  private async end(): Promise<void> {
    const d = this.socat;
    this.socat = null;
    if (d) {
      await d.terminate(2000, () => {
        d.proc.kill('SIGTERM');
        if (this.paused) d.proc.kill('SIGCONT');
      });
    }
    this.paused = false;
    await Promise.all([rm(this.a, { force: true }), rm(this.b, { force: true })]);
  }

  private throwRespawnError(): void {
    const err = this.respawnError;
    this.respawnError = null;
    if (err) throw err;
  }
}
