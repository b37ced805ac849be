/**
 * IPv4 dotted quads and netmasks as an administrator types them on the panel, the console
 * or the CLI. Strict on purpose: `inet_aton` reads "010.1.1.1" as octal 8.1.1.1 and "10.1"
 * as 10.0.0.1, so a lenient parser would apply an address other than the one typed. Only
 * the canonical form is taken: four decimal octets 0-255, no leading zeros, no spaces.
 */

const QUAD = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;

/** The address as an unsigned 32-bit number, or null when it is not a canonical dotted quad. */
export function parseIPv4(text: string): number | null {
  const m = QUAD.exec(text);
  if (!m) return null;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) return null;
    n = n * 256 + octet;
  }
  return n;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The prefix length of a contiguous netmask (255.255.255.0 is 24), or null for one with a hole. */
export function prefixOf(mask: number): number | null {
  const hostBits = ~mask >>> 0;
  // Contiguous: the host part is all ones from the bottom, so adding one carries it away.
  if ((hostBits & (hostBits + 1)) !== 0) return null;
  return 32 - Math.log2(hostBits + 1);
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** 0.0.0.0/8 ("this network"), 224.0.0.0/4 (multicast) and 240.0.0.0/4 (reserved, with the limited broadcast). */
export function isUnassignable(n: number): boolean {
  const first = n >>> 24;
  return first === 0 || first >= 224;
}

export function isLoopback(n: number): boolean {
  return n >>> 24 === 127;
}
