import { execFile } from 'node:child_process';
import type { Logger } from '../log/logger.js';

/**
 * The HA service address: the active box holds it, the standby does not. On the box it is
 * an address on the LAN interface, announced by gratuitous ARP so switches and clients
 * move to the new box at once; on the simulated board every 127.x address is already
 * local, so holding it just means binding the listeners there.
 */
export interface ServiceAddress {
  claim(address: string): Promise<void>;
  release(address: string): Promise<void>;
}

export const simServiceAddress: ServiceAddress = {
  claim: async () => undefined,
  release: async () => undefined,
};

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: 10_000 }, (err, _out, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve(stderr))),
  );
}

/** iproute2 for the address, iputils' arping for the announcement (three, a second apart). */
export function linuxServiceAddress(lan: string, log: Logger): ServiceAddress {
  return {
    async claim(address) {
      await run('ip', ['addr', 'add', `${address}/32`, 'dev', lan]).catch((err: Error) => {
        if (!/File exists/.test(err.message)) throw err;
      });
      await run('arping', ['-U', '-c', '3', '-I', lan, address]).catch((err: Error) =>
        log.warn({ evt: 'ha.arp.fail', address, lan, err: err.message }, 'gratuitous ARP failed; clients may reach the new box only after their ARP cache expires'),
      );
    },
    async release(address) {
      await run('ip', ['addr', 'del', `${address}/32`, 'dev', lan]).catch((err: Error) => {
        if (!/Cannot assign|not found/i.test(err.message)) throw err;
      });
    },
  };
}
