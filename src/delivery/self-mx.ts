import { networkInterfaces } from 'node:os';
import { BlockList, isIP } from 'node:net';
import type { Config } from '../config/schema.js';
import { normalizeIp } from '../policy/ipList.js';
import type { MxHost } from './dns.js';

/**
 * "Mail loops back to myself" (Postfix's words): an MX host that is this box must never
 * be sent to, or a message for a domain whose MX points at us (a misconfigured domain, a
 * poisoned or hostile DNS answer) circles through our own MX listener until its hop count
 * runs out, and a loopback MX would hand mail to whatever else listens on this machine.
 *
 * An MX host is this box when
 * - its name is our hostname; or
 * - one of its addresses is an address this box listens or sends on: a listener's address
 *   (the HA service address under HA), the HA link's address, routing.sourceAddress; and
 *   when a listener binds every address (0.0.0.0 or ::), every interface address and all
 *   of loopback (127/8 and ::1 all reach a wildcard listener); or
 * - one of its addresses is loopback while this box listens on no loopback address: it
 *   cannot be a remote site's server, only some other program on this machine.
 * A loopback MX that is not ours is allowed when the box itself listens on loopback (a
 * test bench, where every peer is on loopback too). Only MX routes are judged: a smarthost
 * or a routing.domains host is the administrator's explicit choice.
 */
export interface SelfView {
  hostname: string;
  /** Addresses this box holds; with `wildcard`, interface addresses too. */
  addresses: BlockList;
  /** A listener binds every address: all of loopback is ours. */
  wildcard: boolean;
  /** This box has a loopback address of its own (wildcard, or a listener on 127/8 or ::1). */
  onLoopback: boolean;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

// Matched as parsed addresses, so "0:0:0:0:0:0:0:1" is ::1 and ::ffff:127.0.0.1 is loopback.
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

const family = (ip: string) => (isIP(ip) === 6 ? 'ipv6' : 'ipv4');

export function isLoopback(ip: string): boolean {
  const a = normalizeIp(ip);
  return isIP(a) !== 0 && LOOPBACK.check(a, family(a));
}

/** The interface addresses of this machine (every family). */
export function systemAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/** What "this box" is, from the config (and the interface list, when a listener binds every address). */
export function selfView(cfg: Config, interfaces: () => string[] = systemAddresses): SelfView {
  const listenerHosts = cfg.ha.enabled && cfg.ha.serviceAddress ? [cfg.ha.serviceAddress] : cfg.smtp.listeners.map((l) => l.host);
  const wildcard = listenerHosts.some((h) => WILDCARDS.has(h));
  const held = [...listenerHosts, cfg.routing.sourceAddress, ...(cfg.ha.enabled ? [cfg.ha.listen.host] : []), ...(wildcard ? interfaces() : [])];
  const own = held.map(normalizeIp).filter((h) => isIP(h) && !WILDCARDS.has(h));
  const addresses = new BlockList();
  for (const a of own) addresses.addAddress(a, family(a));
  const onLoopback = wildcard || own.some(isLoopback);
  return { hostname: cfg.hostname.toLowerCase().replace(/\.$/, ''), addresses, wildcard, onLoopback };
}

/** True when mail sent to this MX host would come back to this box. */
export function isSelf(host: MxHost, self: SelfView): boolean {
  if (host.name.toLowerCase().replace(/\.$/, '') === self.hostname) return true;
  return host.addresses.some((raw) => {
    const a = normalizeIp(raw);
    if (!isIP(a)) return false;
    if (self.addresses.check(a, family(a))) return true;
    if (isLoopback(a)) return self.wildcard || !self.onLoopback;
    return false;
  });
}

/**
 * RFC 5321 5.1: a client that finds itself among a domain's MX hosts drops that host and
 * every host of equal or worse preference (they would hand the mail back to it). What is
 * left is where the mail may go; nothing left means the mail loops.
 */
export function withoutSelf(hosts: MxHost[], self: SelfView): { hosts: MxHost[]; dropped: string[] } {
  const mine = hosts.filter((h) => isSelf(h, self));
  if (!mine.length) return { hosts, dropped: [] };
  const best = Math.min(...mine.map((h) => h.pref));
  return { hosts: hosts.filter((h) => h.pref < best), dropped: hosts.filter((h) => h.pref >= best).map((h) => h.name) };
}
