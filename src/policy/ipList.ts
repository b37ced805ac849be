import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** Strips the IPv4-mapped prefix that a dual-stack socket reports for IPv4 clients. */
export function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

/**
 * A list of addresses and CIDR ranges, matched as parsed addresses (never as strings):
 * "10.0.0.1" does not match "10.0.0.10", "::1" matches "0:0:0:0:0:0:0:1".
 */
export class IpList {
  private readonly list = new BlockList();
  private empty = true;

  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const [addr, bits] = e.split('/');
      const type = isIPv6(addr!) ? 'ipv6' : 'ipv4';
      if (bits !== undefined) this.list.addSubnet(addr!, Number(bits), type);
      else this.list.addAddress(addr!, type);
      this.empty = false;
    }
  }

  has(ip: string): boolean {
    if (this.empty) return false;
    const addr = normalizeIp(ip);
    if (isIPv4(addr)) return this.list.check(addr, 'ipv4');
    if (isIPv6(addr)) return this.list.check(addr, 'ipv6');
    return false;
  }
}
