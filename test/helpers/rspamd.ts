// Rspamd on one loopback address: one normal worker (the /checkv2 endpoint), no controller,
// proxy or fuzzy worker, no Redis. It scores with the packaged regexp/Lua rules
// (/usr/share/rspamd/rules) but loads none of the Lua plugins (RBL, SPF, DKIM, DMARC,
// multimap, phishing...), which are what look things up in DNS or fetch maps over HTTP; DNS
// itself points at a closed loopback port, so anything that still asks fails at once and
// nothing leaves the host. GTUBE is detected by Rspamd's core and answered "reject".
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { shutDown, spawnDaemon, startOnPort, talk, waitUntilReady, withTempDir, type DaemonProcess } from './daemon-process.js';

const RSPAMD = '/usr/bin/rspamd';
// Rspamd forks workers that outlive a SIGKILLed main process (they are re-parented and keep the
// listening socket). Run as PID 1 of its own PID namespace, its death takes every worker with
// it: setpriv (spawnDaemon) SIGKILLs unshare when Node dies, unshare SIGKILLs Rspamd (--kill-child), and
// the kernel kills the rest of the namespace. Needs root (CAP_SYS_ADMIN).
const UNSHARE = '/usr/bin/unshare';

/**
 * The public-suffix list Rspamd compiles at start-up. The packaged one (~9600 suffixes) takes
 * about 12 s to compile here, every start; with these few it is instant. URL rules only need
 * the suffixes the test mails use.
 */
const TLDS = ['com', 'net', 'org', 'de', 'uk', 'co.uk', 'test', 'example', 'invalid', 'localhost'];

export interface RspamdServerOptions {
  host: string;
  /** Default: a free port on host. */
  port?: number;
  /** Extra top-level UCL, e.g. 'actions { reject = 10; }' (later sections merge/override). */
  config?: string;
  /** Default 30 s. */
  startTimeoutMs?: number;
}

export class RspamdServer {
  /** How long Rspamd took from spawn to answering /ping, in ms. */
  startMs = 0;

  private constructor(
    private readonly daemon: DaemonProcess,
    /** daemon is unshare (which forks Rspamd), not Rspamd itself. */
    private readonly namespaced: boolean,
    readonly host: string,
    readonly port: number,
    private readonly dir: string,
  ) {}

  /** Base URL for rspamdCheck(). */
  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  static start(opts: RspamdServerOptions): Promise<RspamdServer> {
    return withTempDir('mlsd-rspamd-', async (dir) => {
      await mkdir(join(dir, 'db'));
      await mkdir(join(dir, 'tmp'));
      await writeFile(join(dir, 'tld.dat'), TLDS.join('\n') + '\n');
      let namespaced = process.getuid?.() === 0 && existsSync(UNSHARE);
      return startOnPort({
        host: opts.host,
        port: opts.port,
        attempts: 3,
        launch: async (port) => {
          const conf = join(dir, 'rspamd.conf');
          await writeFile(conf, rspamdConf(opts, port, dir));
          return new RspamdServer(spawnRspamd(conf, dir, namespaced), namespaced, opts.host, port, dir);
        },
        ready: async (s) => void (s.startMs = await s.waitReady(opts.startTimeoutMs ?? 30000)),
        discard: async (s) => {
          await s.kill();
          // A container may refuse new namespaces even to root: run without (a crashed test
          // run may then leave workers behind; stop() still ends them). That is worth another
          // attempt even on a fixed port.
          if (namespaced && /unshare failed/.test(s.daemon.output)) {
            namespaced = false;
            return true;
          }
          return false;
        },
      });
    });
  }

  /** Rspamd's console log: start-up, and one rspamd_task_write_log line per scan. */
  log(): string {
    return this.daemon.output;
  }

  /** Stops Rspamd and resolves once host:port can be bound again. Removes the temp dir. */
  stop(): Promise<void> {
    return shutDown(() => this.kill(), this.host, this.port, 'rspamd', this.dir);
  }

  private kill(): Promise<void> {
    const proc = this.daemon.proc;
    return this.daemon.terminate(
      5000,
      // SIGTERM to Rspamd's main process, which stops its workers and exits; unshare (which
      // blocks SIGTERM itself) then exits too. Without a namespace proc is the main process.
      // No main process found: nothing to ask, SIGKILL at once.
      async () => {
        const main = this.namespaced ? await childOf(proc.pid!) : proc.pid!;
        if (main) process.kill(main, 'SIGTERM');
        return Boolean(main);
      },
      // SIGKILL to unshare ends the whole namespace; without one, to the process group.
      () => {
        if (this.namespaced) proc.kill('SIGKILL');
        else process.kill(-proc.pid!, 'SIGKILL');
      },
    );
  }

  private waitReady(timeoutMs: number): Promise<number> {
    return waitUntilReady(this.daemon, {
      timeoutMs,
      intervalMs: 50,
      probe: async () => {
        const reply = await talk(this.host, this.port, { request: 'GET /ping HTTP/1.0\r\n\r\n', timeoutMs: 1000 });
        return /^HTTP\/1\.[01] 200 /.test(reply) && /pong/i.test(reply);
      },
      timeoutMessage: `rspamd did not answer /ping on ${this.host}:${this.port} within ${timeoutMs} ms`,
    });
  }
}

function rspamdConf(opts: RspamdServerOptions, port: number, dir: string): string {
  const q = (s: string) => JSON.stringify(s);
  const bind = opts.host.includes(':') ? `[${opts.host}]:${port}` : `${opts.host}:${port}`;
  return `# Generated by test/helpers/rspamd.ts.
# The packaged rules and their scores; no modules { path } section, so no Lua plugin loads.
lua = "$RULESDIR/rspamd.lua";
.include "$CONFDIR/groups.conf"
.include "$CONFDIR/composites.conf"

options {
  dbdir = ${q(join(dir, 'db'))};
  hs_cache_dir = ${q(join(dir, 'db'))};
  tempdir = ${q(join(dir, 'tmp'))};
  # C modules only: chartable and regexp are local; dkim and fuzzy_check would go out.
  filters = "chartable,regexp";
  dns {
    nameserver = ["127.0.0.1:9"];
    timeout = 0.2s;
    retransmits = 0;
  }
  url_tld = ${q(join(dir, 'tld.dat'))};
  # (disable_hyperscan = true has no effect in 3.4: the hs_helper worker is always spawned and
  # spends ~5 s of CPU after start compiling the rules' regexps into the temp dir; until it
  # is done the normal worker matches with PCRE, with the same results.)
  task_timeout = 8s;
}

logging {
  type = "console";
  level = "info";
}

actions {
  reject = 15;
  add_header = 6;
  greylist = 4;
}

worker "normal" {
  bind_socket = ${q(bind)};
  count = 1;
  mime = true;
}
${opts.config ?? ''}
`;
}

function spawnRspamd(conf: string, dir: string, namespaced: boolean): DaemonProcess {
  const args = [
    '-f', // no fork: we are its supervisor
    // As root Rspamd wants -u/-g for its workers; -i lets them run as root instead, which
    // keeps every process's credentials (and so the parent-death signals) unchanged.
    ...(process.getuid?.() === 0 ? ['-i'] : []),
    '-c', conf,
    // local.d/ and override.d/ includes of the packaged groups.conf resolve here (to nothing)
    // rather than to a host's /etc/rspamd/local.d, which must not change test verdicts.
    `--var=LOCAL_CONFDIR=${dir}`,
  ];
  if (namespaced) return spawnDaemon('rspamd', UNSHARE, ['--pid', '--kill-child=SIGKILL', '--', RSPAMD, ...args]);
  // Its own process group, so stop() can kill workers together with the main process.
  return spawnDaemon('rspamd', RSPAMD, args, { detached: true });
}

/** The (only) child of pid: Rspamd's main process under unshare. */
async function childOf(pid: number): Promise<number | null> {
  try {
    const first = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/)[0];
    return first ? Number(first) : null;
  } catch {
    return null;
  }
}
