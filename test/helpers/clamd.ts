// ClamAV's clamd on one loopback address with the test signature database of
// test/fixtures/clamav (no official databases are installed, and none may be downloaded: the
// one EICAR signature there is what makes clamd start and what the tests detect).
import { existsSync } from 'node:fs';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { shutDown, spawnDaemon, startOnPort, talk, waitUntilReady, withTempDir, type DaemonProcess } from './daemon-process.js';

const CLAMD = '/usr/sbin/clamd';

/** The fixture database: beside this file when run from source, three levels up from dist/. */
function fixtureDir(): string {
  for (const rel of ['../fixtures/clamav/', '../../../test/fixtures/clamav/']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(p, 'mlsd-test.ndb'))) return p;
  }
  throw new Error('test/fixtures/clamav not found');
}

/** The name clamd reports for EICAR with the fixture database (unsigned databases get the
 *  ".UNOFFICIAL" suffix). */
export const EICAR_SIGNATURE = 'Mlsd.Test.Eicar.UNOFFICIAL';

export interface ClamdServerOptions {
  host: string;
  /** Default: a free port on host. */
  port?: number;
  /** clamd's StreamMaxLength (e.g. '1M'): INSTREAM beyond it is answered
   *  "INSTREAM size limit exceeded. ERROR". Default '25M' (clamd's own default). */
  streamMaxLength?: string;
  /** Extra clamd.conf lines, e.g. ['ScanMail no']. */
  config?: string[];
}

export class ClamdServer {
  /** How long clamd took from spawn to answering PING, in ms. */
  startMs = 0;

  private constructor(
    private readonly daemon: DaemonProcess,
    readonly host: string,
    readonly port: number,
    private readonly dir: string,
  ) {}

  static start(opts: ClamdServerOptions): Promise<ClamdServer> {
    return withTempDir('mlsd-clamd-', async (dir) => {
      // A copy, so nothing clamd might write next to its databases lands in the source tree.
      await cp(fixtureDir(), join(dir, 'db'), { recursive: true });
      await mkdir(join(dir, 'tmp'));
      // A port picked by freePort() may be taken again before clamd binds it.
      return startOnPort({
        host: opts.host,
        port: opts.port,
        attempts: 3,
        launch: async (port) => {
          const conf = join(dir, 'clamd.conf');
          await writeFile(conf, clamdConf(opts, port, dir));
          return new ClamdServer(spawnClamd(conf), opts.host, port, dir);
        },
        ready: async (s) => void (s.startMs = await s.waitReady(15000)),
        discard: (s) => s.kill(),
      });
    });
  }

  /** clamd's log (with Foreground and no LogFile it logs to stdout): one line per detection. */
  log(): string {
    return this.daemon.output;
  }

  /** Stops clamd and resolves once host:port can be bound again. Removes the temp dir. */
  stop(): Promise<void> {
    return shutDown(() => this.kill(), this.host, this.port, 'clamd', this.dir);
  }

  private kill(): Promise<void> {
    return this.daemon.terminate(5000);
  }

  /** PING, not a bare connect: PONG proves clamd reads commands, and a probe that sends
   *  nothing would sit in its queue until CommandReadTimeout. */
  private waitReady(timeoutMs: number): Promise<number> {
    return waitUntilReady(this.daemon, {
      timeoutMs,
      intervalMs: 25,
      probe: async () =>
        (await talk(this.host, this.port, { request: 'zPING\0', until: (got) => got.includes('\0'), timeoutMs: 1000 })).startsWith('PONG'),
      timeoutMessage: `clamd did not answer PING on ${this.host}:${this.port} within ${timeoutMs} ms`,
    });
  }
}

function clamdConf(opts: ClamdServerOptions, port: number, dir: string): string {
  return [
    `TCPAddr ${opts.host}`,
    `TCPSocket ${port}`,
    // No LocalSocket line: no unix socket (the system's /run/clamav is not ours).
    'Foreground yes',
    // No LogFile: in the foreground clamd then logs to stdout, which we keep. (LogFile
    // /dev/stderr does not work: clamd will not open a log file through a symlink.)
    'LogTime yes',
    'LogVerbose no',
    `DatabaseDirectory ${join(dir, 'db')}`,
    `TemporaryDirectory ${join(dir, 'tmp')}`,
    `PidFile ${join(dir, 'clamd.pid')}`,
    // No User line: clamd then keeps the user it was started as, so as root it stays root and
    // the parent-death signal (cleared by any change of credentials) stays armed.
    // The database never changes during a test; re-reading it would only cost CPU.
    'SelfCheck 0',
    'MaxThreads 4',
    // Explicit although it is the default: the attachment tests depend on it.
    'ScanMail yes',
    // There are no bytecode signatures here; this skips setting up the bytecode engine.
    'Bytecode no',
    `StreamMaxLength ${opts.streamMaxLength ?? '25M'}`,
    ...(opts.config ?? []),
  ].join('\n') + '\n';
}

// The kernel SIGKILLs clamd when this Node process dies (see spawnDaemon). clamd is one
// process (threads, no forks), so that covers everything that could hold the port.
function spawnClamd(conf: string): DaemonProcess {
  return spawnDaemon('clamd', CLAMD, ['-c', conf]);
}
