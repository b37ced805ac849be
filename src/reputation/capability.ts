import type { BoxContext, Capability } from '../core/capability.js';
import type { DeliveryCapability } from '../delivery/capability.js';
import { DnsblMonitor } from './dnsbl.js';
import { dnsblStatus } from './commands.js';

/** The blacklist watch of the box's own outbound addresses; a listing reroutes delivery. */
export function startReputation(box: BoxContext, delivery: DeliveryCapability): Capability {
  const { config } = box;
  const dns = delivery.dns;
  const dnsbl = new DnsblMonitor({
    settings: () => config.current.dnsbl,
    // In smarthost mode the ISP's relay is our reputation too.
    extraIps: async () => {
      const sh = config.current.routing.smarthost;
      if (!sh.host || (config.current.routing.mode !== 'smarthost' && !config.current.dnsbl.autoReroute)) return [];
      // A failed look-up throws: the monitor then keeps checking the address it knew.
      const ips = await dns.addresses(sh.host);
      return ips.filter((ip) => ip.includes('.')).map((ip) => ({ ip, label: 'smarthost' }));
    },
    lookup: { resolve4: (n) => dns.resolver().resolve4(n), resolveTxt: (n) => dns.resolver().resolveTxt(n) },
    emit: (ev) => box.events.emit(ev),
    clock: box.clock,
    log: box.log.child({ mod: 'dnsbl' }),
  });
  delivery.rerouteWhen(() => dnsbl.ownListed());
  dnsbl.onChange(() => delivery.runner.routingChanged());
  dnsbl.start();
  return {
    status: dnsblStatus(() => dnsbl),
    stop: async () => dnsbl.stop(),
  };
}
