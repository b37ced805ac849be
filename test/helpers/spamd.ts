// SpamAssassin's spamd on one loopback address, for the spam-scanning client and the policy
// that uses it. Everything it reads or writes is in a temp dir or the packaged rules: it never
// looks at /etc/spamassassin (a host's local.cf must not change test verdicts), never at
// sa-update's /var/lib/spamassassin, and it runs local tests only (-L: no DNS blocklists,
// Razor, Pyzor, DCC...), so a verdict depends on the message alone and nothing leaves the host.
import { execFileSync } from 'node:child_process';
import { chown, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { shutDown, spawnDaemon, startOnPort, talk, waitUntilReady, withTempDir, type DaemonProcess } from './daemon-process.js';

const SPAMD = '/usr/sbin/spamd';
// The packaged rules. Naming them (-C) keeps spamd from preferring an sa-update download in
// /var/lib/spamassassin/<version>, which would make results differ between hosts.
const RULES = '/usr/share/spamassassin';
// The kernel SIGKILLs spamd's master when this Node process dies (see spawnDaemon). Its
// children need no such guard: a prefork child waits on a pipe from the master and exits at
// EOF (checked: after SIGKILL of the master they are gone within a second).
/**
 * Who spamd runs as when the tests run as root. Not root: a root spamd switches its effective
 * uid to nobody while it compiles the rules and back again, and any such change clears the
 * parent-death signal, so a crashed test run would leave it holding the port. Started as
 * nobody, spamd never changes credentials (and needs no -u for its children).
 */
const RUN_AS = 'nobody';

/**
 * The plugins the packaged rules need to score a message on its own. Debian loads these from
 * /etc/spamassassin/*.pre; the network ones (SPF, DKIM, DMARC, URIDNSBL, Razor2, Pyzor,
 * AskDNS, HashBL...) and Bayes/AutoLearn are left out on purpose. Without Check nothing runs.
 */
const PRE = `enable_compat welcomelist_blocklist
loadplugin Mail::SpamAssassin::Plugin::Check
loadplugin Mail::SpamAssassin::Plugin::BodyEval
loadplugin Mail::SpamAssassin::Plugin::HeaderEval
loadplugin Mail::SpamAssassin::Plugin::HTMLEval
loadplugin Mail::SpamAssassin::Plugin::MIMEEval
loadplugin Mail::SpamAssassin::Plugin::MIMEHeader
loadplugin Mail::SpamAssassin::Plugin::RelayEval
loadplugin Mail::SpamAssassin::Plugin::URIEval
loadplugin Mail::SpamAssassin::Plugin::WLBLEval
loadplugin Mail::SpamAssassin::Plugin::ReplaceTags
loadplugin Mail::SpamAssassin::Plugin::FreeMail
`;

// No learning (the Bayes and AWL/TxRep plugins are not even loaded): a verdict depends on the
// message alone, not on what earlier tests sent.
const LOCAL_CF = `use_bayes 0
bayes_auto_learn 0
`;

export interface SpamdServerOptions {
  host: string;
  /** Default: a free port on host. */
  port?: number;
  /** Extra local.cf lines, e.g. ['required_score 3', 'score GTUBE 100']. */
  config?: string[];
  /** spamd compiles every rule before it listens: 1.1-1.7 s here on its own, several seconds
   *  when other daemons start beside it on a loaded machine. Default 30 s. */
  startTimeoutMs?: number;
}

export class SpamdServer {
  /** How long spamd took from spawn to answering PING, in ms. */
  startMs = 0;

  private constructor(
    private readonly daemon: DaemonProcess,
    readonly host: string,
    readonly port: number,
    private readonly dir: string,
  ) {}

  static start(opts: SpamdServerOptions): Promise<SpamdServer> {
    return withTempDir('mlsd-spamd-', async (dir) => {
      const site = join(dir, 'site');
      const home = join(dir, 'home');
      await mkdir(site);
      await mkdir(home);
      await writeFile(join(site, 'init.pre'), PRE);
      await writeFile(join(site, 'local.cf'), LOCAL_CF + (opts.config ?? []).join('\n') + '\n');
      let user: { uid: number; gid: number } | undefined;
      if (process.getuid?.() === 0) {
        user = lookupUser(RUN_AS) ?? undefined;
        if (!user) throw new Error(`spamd: no user ${RUN_AS} to run it as`);
        // spamd writes its pid file here and its children their state under home.
        for (const p of [dir, site, home, join(site, 'init.pre'), join(site, 'local.cf')]) await chown(p, user.uid, user.gid);
      }
      // A port picked by freePort() may be taken again before spamd binds it.
      return startOnPort({
        host: opts.host,
        port: opts.port,
        attempts: 3,
        launch: (port) => new SpamdServer(spawnSpamd(opts.host, port, dir, user), opts.host, port, dir),
        ready: async (s) => void (s.startMs = await s.waitReady(opts.startTimeoutMs ?? 30000)),
        discard: (s) => s.kill(),
      });
    });
  }

  /** spamd's log (it logs to stderr with -s stderr): start-up, one "result:" line per check. */
  log(): string {
    return this.daemon.output;
  }

  /** Stops spamd and resolves once host:port can be bound again (its children hold the
   *  listening socket too and go a moment after the master). Removes the temp dir. */
  stop(): Promise<void> {
    return shutDown(() => this.kill(), this.host, this.port, 'spamd', this.dir);
  }

  /** SIGTERM: the master stops its children and removes its pid file. */
  private kill(): Promise<void> {
    return this.daemon.terminate(5000);
  }

  /** PING rather than a bare connect: spamd listens before its first child is ready, and a
   *  connection that sends nothing is logged as a protocol error. */
  private waitReady(timeoutMs: number): Promise<number> {
    return waitUntilReady(this.daemon, {
      timeoutMs,
      intervalMs: 50,
      // Sent with a half-close: spamd reads the request until EOF.
      probe: async () =>
        /^SPAMD\/[\d.]+ 0 PONG/.test(await talk(this.host, this.port, { request: 'PING SPAMC/1.5\r\n\r\n', halfClose: true, timeoutMs: 1000 })),
      timeoutMessage: `spamd did not answer PING on ${this.host}:${this.port} within ${timeoutMs} ms`,
    });
  }
}

function spawnSpamd(host: string, port: number, dir: string, user: { uid: number; gid: number } | undefined): DaemonProcess {
  const args = [
    '-C', RULES,
    `--siteconfigpath=${join(dir, 'site')}`,
    '-L', // local tests only: no DNS, no network checks
    '-x', // no per-user config files (nothing under a user's home to read or create)
    `-H${join(dir, 'home')}`, // HOME for the children (and any helper they would start)
    '-i', `${host}:${port}`,
    '-A', '127.0.0.0/8',
    // One child is plenty for tests and keeps start-up and memory small.
    '-m', '2', '--min-children=1', '--min-spare=1', '--max-spare=1',
    '-r', join(dir, 'spamd.pid'),
    '-s', 'stderr',
  ];
  // Node switches uid/gid (and drops supplementary groups) before exec'ing setpriv, so the
  // parent-death signal is set after the switch and stays.
  return spawnDaemon('spamd', SPAMD, args, user ?? {});
}

/** uid/gid of a user by name (os.userInfo() only knows the current user). */
function lookupUser(name: string): { uid: number; gid: number } | null {
  try {
    const f = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim().split(':');
    return f.length >= 4 ? { uid: Number(f[2]), gid: Number(f[3]) } : null;
  } catch {
    return null;
  }
}
