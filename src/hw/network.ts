import { formatIPv4, isLoopback, isUnassignable, maskOf, parseIPv4, prefixOf } from './ipv4.js';

/**
 * The BoardNetwork port: the box's LAN settings, read from the interface and applied the
 * way the board applies them. Adapters: network-sim.ts (a JSON file that records what
 * would be applied) and network-linux.ts (iproute2 to read, a systemd-networkd file to
 * apply). The settings are this box's own: they are never replicated to an HA peer.
 */
export interface LanSettings {
  /** The board's LAN interface (board.network.lan); not settable. */
  interface: string;
  /** Dotted quads; '' where the interface has none (a link without an address). */
  address: string;
  netmask: string;
  gateway: string;
}

export interface BoardNetwork {
  read(): Promise<LanSettings>;
  apply(s: LanSettings): Promise<void>;
}

export interface LanInput {
  address: string;
  netmask: string;
  gateway: string;
}

/**
 * Checks the settings an administrator typed; throws one line naming the option that is
 * wrong. `allowLoopback` is for the sim board, whose "LAN" is the loopback network its
 * listeners use; on a real board a 127.x address would cut the box off its network.
 */
export function checkLanInput(input: LanInput, opts: { allowLoopback: boolean }): LanInput {
  const quad = (option: string, text: string): number => {
    const n = parseIPv4(text);
    if (n === null) throw new Error(`--${option}: "${printable(text)}" is not an IPv4 address (four numbers 0-255 without leading zeros, such as 192.168.1.10)`);
    return n;
  };
  const address = quad('address', input.address);
  const mask = quad('netmask', input.netmask);
  const gateway = quad('gateway', input.gateway);
  const prefix = prefixOf(mask);
  if (prefix === null) throw new Error(`--netmask: ${input.netmask} is not a contiguous netmask (such as 255.255.255.0)`);
  if (prefix === 0) throw new Error('--netmask: 0.0.0.0 leaves no network');
  for (const [option, n] of [['address', address], ['gateway', gateway]] as const) {
    if (isUnassignable(n)) throw new Error(`--${option}: ${formatIPv4(n)} cannot be a host's address (0.x, multicast or reserved)`);
    if (isLoopback(n) && !opts.allowLoopback) throw new Error(`--${option}: ${formatIPv4(n)} is a loopback address`);
  }
  const network = (address & mask) >>> 0;
  const broadcast = (network | (~mask >>> 0)) >>> 0;
  // A /31 is a point-to-point link with two hosts and neither address reserved (RFC 3021).
  if (prefix <= 30 && address === network) throw new Error(`--address: ${input.address} is the network address of ${formatIPv4(network)}/${prefix}`);
  if (prefix <= 30 && address === broadcast) throw new Error(`--address: ${input.address} is the broadcast address of ${formatIPv4(network)}/${prefix}`);
  if (((gateway & mask) >>> 0) !== network) throw new Error(`--gateway: ${input.gateway} is outside the LAN ${formatIPv4(network)}/${prefix}`);
  if (gateway === address) throw new Error(`--gateway: ${input.gateway} is the box's own address`);
  if (prefix <= 30 && (gateway === network || gateway === broadcast)) throw new Error(`--gateway: ${input.gateway} is the ${gateway === network ? 'network' : 'broadcast'} address of ${formatIPv4(network)}/${prefix}`);
  return { address: formatIPv4(address), netmask: formatIPv4(maskOf(prefix)), gateway: formatIPv4(gateway) };
}

/** What an error message may quote of typed input: printable, short. */
function printable(s: string): string {
  const p = s.replace(/[^\x20-\x7e]/g, '?');
  return p.length > 40 ? `${p.slice(0, 40)}...` : p;
}
