import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { writeFileAtomic } from '../store/atomic.js';
import { formatIPv4, maskOf, parseIPv4, prefixOf } from './ipv4.js';
import type { BoardNetwork, LanSettings } from './network.js';

/** Where systemd-networkd reads local `.network` files (systemd.network(5)). */
export const NETWORKD_DIR = '/etc/systemd/network';

/**
 * The LAN of a Linux board. Read from the kernel with iproute2's JSON output (what the
 * interface has now, whoever set it); applied through systemd-networkd: one `.network`
 * file of mlsd's own, then `networkctl reload` and `networkctl reconfigure`. networkd
 * rather than ifupdown: the box already runs under systemd; a file of our own name edits
 * nothing shared (ifupdown's interfaces file is one file for every interface); and
 * `reconfigure` swaps the address in place, where `ifdown`+`ifup` takes the link down
 * and leaves it down when the new stanza fails. Never run in this repository's tests.
 */
export function linuxBoardNetwork(lan: string, networkDir: string, log: Logger): BoardNetwork {
  const file = join(networkDir, `10-mlsd-${lan}.network`);
  return {
    async read() {
      const addrs = JSON.parse(await run('ip', ['-j', '-4', 'addr', 'show', 'dev', lan])) as { addr_info?: { family?: string; local?: string; prefixlen?: number; scope?: string }[] }[];
      const inet = (addrs[0]?.addr_info ?? []).find((a) => a.family === 'inet' && a.scope !== 'host' && typeof a.local === 'string' && typeof a.prefixlen === 'number');
      const routes = JSON.parse(await run('ip', ['-j', '-4', 'route', 'show', 'default', 'dev', lan])) as { gateway?: string }[];
      return {
        interface: lan,
        address: inet?.local ?? '',
        netmask: inet ? formatIPv4(maskOf(inet.prefixlen!)) : '',
        gateway: routes.find((r) => typeof r.gateway === 'string')?.gateway ?? '',
      };
    },
    async apply(s) {
      await writeFileAtomic(file, networkdFile(s), 0o644);
      await run('networkctl', ['reload']);
      await run('networkctl', ['reconfigure', lan]);
      log.info({ evt: 'network.apply', board: 'linux', ...s, file }, 'LAN settings applied through systemd-networkd');
    },
  };
}

/** The `.network` file for settings already checked (checkLanInput). */
export function networkdFile(s: LanSettings): string {
  const prefix = prefixOf(parseIPv4(s.netmask) ?? 0);
  return [
    '# Written by mlsd (`mlsd network set`, the front panel); changes made here are overwritten.',
    '[Match]',
    `Name=${s.interface}`,
    '',
    '[Network]',
    `Address=${s.address}/${prefix}`,
    `Gateway=${s.gateway}`,
    '',
  ].join('\n');
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve(stdout))),
  );
}
