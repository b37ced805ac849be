import { isIPv4, isIPv6 } from 'node:net';
import { normalizeIp } from './ipList.js';

/**
 * The source a lockout counts against. An IPv4 address is one source. An IPv6 address is
 * not: a single customer gets a whole /64 (often a /56 or /48) and can pick a fresh
 * address for every guess, so IPv6 clients are counted by their prefix ("2001:db8:1:2::/64").
 * IPv4-mapped IPv6 ("::ffff:192.0.2.1") is the IPv4 address.
 */
export function clientKey(ip: string, ipv6Prefix: number): string {
  const addr = normalizeIp(ip);
  if (isIPv4(addr) || !isIPv6(addr)) return addr;
  const bytes = ipv6Bytes(addr);
  const bits = Math.max(0, Math.min(128, ipv6Prefix));
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16));
  // The URL parser writes the canonical compressed form, so equal prefixes give equal keys.
  const canonical = new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
  return `${canonical}/${bits}`;
}

/** The 16 bytes of a valid IPv6 address (zone id dropped; "::" and an embedded IPv4 tail handled). */
function ipv6Bytes(addr: string): number[] {
  let text = addr.split('%')[0]!;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const part = (s: string | undefined) => (s ? s.split(':') : []);
  const left = part(head);
  const right = part(tail);
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}
