// A real DNS server for tests: dnsmasq bound to one loopback address, answering only from the
// records given here and never forwarding (--no-resolv, no server= lines), so a test's DNS can
// never leak off the machine and its answers do not depend on /etc/hosts or /etc/resolv.conf.
import { chmod, writeFile } from 'node:fs/promises';
import { promises as dnsPromises } from 'node:dns';
import { join } from 'node:path';
import { removeDir, spawnDaemon, startOnPort, waitUntilReady, withTempDir, type DaemonProcess } from './daemon-process.js';

const DNSMASQ = '/usr/sbin/dnsmasq';

export interface DnsRecords {
  /** MX records. host '.' publishes a null MX (RFC 7505, "MX 0 ."), served as a raw RR whose
   *  RDATA is spelled out byte for byte (Node resolves it as { exchange: '', priority: 0 }). */
  mx?: { domain: string; host: string; pref: number }[];
  /** Static A records (several entries with one name give several addresses). */
  a?: { name: string; ip: string }[];
  /** TXT records; text longer than 255 bytes is split into several strings of one record, as
   *  DNS requires (Node returns them as one string[] to join). */
  txt?: { name: string; text: string }[];
  /**
   * Zones whose unknown names get NXDOMAIN (dnsmasq --local=/zone/). Default ['#']: every name.
   * A name outside these zones and without a record gets REFUSED (Node: EREFUSED), since there
   * is no upstream. The names of the records above are always added, so e.g. an AAAA query for
   * an MX host answers NODATA (ENODATA), not REFUSED.
   */
  authoritative?: string[];
}

export interface DnsServerOptions {
  host: string;
  /** Default: a free port on host (retried if the UDP side turns out to be taken). */
  port?: number;
  records: DnsRecords;
  /** Log every query into log() (handy to see what the code under test asked). */
  logQueries?: boolean;
}

/** The marker name whose presence proves dnsmasq has (re)read the dynamic hosts file. */
const marker = (gen: number) => `gen${gen}.mlsd-dns-marker.invalid`;

export class DnsServer {
  private gen = 0;

  private constructor(
    private readonly daemon: DaemonProcess,
    readonly host: string,
    readonly port: number,
    private readonly dir: string,
  ) {}

  /** "host:port", the form Node's dns Resolver.setServers() takes. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  static start(opts: DnsServerOptions): Promise<DnsServer> {
    return withTempDir('mlsd-dns-', async (dir) => {
      // dnsmasq re-reads addn-hosts on SIGHUP; keep the directory readable in case it runs as
      // a non-root user (it does when the tests are not run as root).
      await chmod(dir, 0o755);
      await writeFile(join(dir, 'records.conf'), recordsConf(opts.records, join(dir, 'dynamic.hosts')));
      await writeFile(join(dir, 'dynamic.hosts'), hostsFile(0, []));
      // A port picked by freePort() is free for TCP only; dnsmasq also needs it for UDP.
      return startOnPort({
        host: opts.host,
        port: opts.port,
        attempts: 5,
        launch: (port) => new DnsServer(spawnDnsmasq(opts, port, dir), opts.host, port, dir),
        ready: (s) => s.waitForGeneration(0, 5000),
        discard: (s) => s.kill(),
      });
    });
  }

  /**
   * Replaces the run-time A records (e.g. a DNSBL listing appearing or going away) and resolves
   * once dnsmasq answers from the new set. Static records given at start stay as they are.
   */
  async setA(records: { name: string; ip: string }[]): Promise<void> {
    const gen = ++this.gen;
    // The whole file is read at once on SIGHUP (which also clears the cache), so seeing this
    // generation's marker in an answer proves every record of the new set is being served.
    await writeFile(join(this.dir, 'dynamic.hosts'), hostsFile(gen, records));
    this.daemon.proc.kill('SIGHUP');
    await this.waitForGeneration(gen, 5000);
  }

  /** dnsmasq's own log (stderr): start-up, reloads and, with logQueries, each query. */
  log(): string {
    return this.daemon.output;
  }

  async stop(): Promise<void> {
    await this.kill();
    await removeDir(this.dir);
  }

  private kill(): Promise<void> {
    return this.daemon.terminate(3000);
  }

  private waitForGeneration(gen: number, timeoutMs: number): Promise<number> {
    const r = new dnsPromises.Resolver({ timeout: 300, tries: 1 });
    r.setServers([this.address]);
    return waitUntilReady(this.daemon, {
      timeoutMs,
      intervalMs: 25,
      probe: () =>
        r.resolve4(marker(gen)).then(
          () => true,
          () => false, // not listening yet, or still answering from the previous file
        ),
      timeoutMessage: `dnsmasq did not serve generation ${gen} in ${timeoutMs} ms`,
    });
  }
}

function spawnDnsmasq(opts: DnsServerOptions, port: number, dir: string): DaemonProcess {
  const args = [
    '--keep-in-foreground',
    `--conf-file=${join(dir, 'records.conf')}`, // and so not /etc/dnsmasq.conf
    '--pid-file=', // no pid file: the system's /run/dnsmasq.pid is not ours
    '--no-resolv',
    '--no-hosts',
    '--no-poll',
    // Binds only this address (dnsmasq binds a listen-address even though no interface carries
    // it; lo routes all of 127/8) rather than the wildcard address.
    '--bind-interfaces',
    `--listen-address=${opts.host}`,
    `--port=${port}`,
    '--log-facility=-',
    // As root, stay root (user and group: Debian's dnsmasq otherwise switches to group "dip"):
    // any change of credentials clears the parent-death signal set below.
    ...(process.getuid?.() === 0 ? ['--user=root', '--group=root'] : []),
    ...(opts.logQueries ? ['--log-queries'] : []),
  ];
  // Under setpriv, so a crashed test run cannot leave a server holding the port (see
  // spawnDaemon). Only stderr: that is where --log-facility=- logs.
  return spawnDaemon('dnsmasq', DNSMASQ, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** dnsmasq.conf syntax (not argv) because only the file parser honours quotes, which TXT text
 *  containing commas needs. */
function recordsConf(r: DnsRecords, dynamicHosts: string): string {
  const lines: string[] = [`addn-hosts=${dynamicHosts}`];
  const names = new Set<string>();
  for (const m of r.mx ?? []) {
    names.add(m.domain);
    if (m.host === '.' || m.host === '') {
      // RDATA of MX = 16-bit preference + target name; the root name is the single byte 00.
      lines.push(`dns-rr=${m.domain},15,${m.pref.toString(16).padStart(4, '0')}00`);
    } else {
      lines.push(`mx-host=${m.domain},${m.host},${m.pref}`);
    }
  }
  const byName = new Map<string, string[]>();
  for (const a of r.a ?? []) byName.set(a.name, [...(byName.get(a.name) ?? []), a.ip]);
  for (const [name, ips] of byName) {
    names.add(name);
    lines.push(`host-record=${name},${ips.join(',')}`);
  }
  for (const t of r.txt ?? []) {
    names.add(t.name);
    const chunks: string[] = [];
    const bytes = Buffer.from(t.text);
    for (let i = 0; i < bytes.length || i === 0; i += 255) chunks.push(bytes.subarray(i, i + 255).toString());
    lines.push(`txt-record=${t.name},${chunks.map(quote).join(',')}`);
  }
  for (const zone of [...(r.authoritative ?? ['#']), ...names]) lines.push(`local=/${zone}/`);
  return lines.join('\n') + '\n';
}

function quote(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function hostsFile(gen: number, records: { name: string; ip: string }[]): string {
  // The marker's address is TEST-NET-1: it is never a target, only a proof of reload.
  return [`192.0.2.1 ${marker(gen)}`, ...records.map((r) => `${r.ip} ${r.name}`)].join('\n') + '\n';
}
