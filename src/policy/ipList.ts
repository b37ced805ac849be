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

/**
 * The network an address is in, as "192.0.2.0/24" or "2001:db8:0:1:0:0:0:0/64": the key of
 * limits per network. One client owns a whole IPv6 /64 (and often a whole IPv4 /24), so a
 * per-address limit alone is no limit.
 */
export function subnetOf(ip: string, v4Bits: number, v6Bits: number): string {
  const addr = normalizeIp(ip);
  if (isIPv4(addr)) {
    const n = addr.split('.').reduce((a, o) => a * 256 + Number(o), 0);
    const mask = v4Bits === 0 ? 0 : (0xffffffff << (32 - v4Bits)) >>> 0;
    const m = (n & mask) >>> 0;
    return `${[24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.')}/${v4Bits}`;
  }
  if (isIPv6(addr)) {
    const groups = ipv6Groups(addr).map((g, i) => {
      const keep = Math.max(0, Math.min(16, v6Bits - i * 16));
      return keep === 0 ? 0 : g & ((0xffff << (16 - keep)) & 0xffff);
    });
    return `${groups.map((g) => g.toString(16)).join(':')}/${v6Bits}`;
  }
  return addr;
}

/** The eight 16-bit groups of a valid IPv6 address (:: expanded, a dotted IPv4 tail converted, a zone dropped). */
function ipv6Groups(addr: string): number[] {
  let a = addr.split('%')[0]!;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (v4) {
    const [o0, o1, o2, o3] = v4.slice(1).map(Number) as [number, number, number, number];
    a = a.slice(0, v4.index) + `${(o0 * 256 + o1).toString(16)}:${(o2 * 256 + o3).toString(16)}`;
  }
  const [head, tail] = a.split('::') as [string, string | undefined];
  const parse = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = parse(head);
  const t = parse(tail);
  return tail === undefined ? h : [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
}
