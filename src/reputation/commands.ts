import type { StatusSection } from '../commands/status.js';
import type { DnsblStatus } from './dnsbl.js';

/** The blacklist watch has no commands yet; it shows in `mlsd status` whether our addresses are listed. */
export function dnsblStatus(deps: () => { status(): DnsblStatus }): StatusSection {
  return ({ serving }) => {
    if (!serving) return null;
    const dnsbl = deps()
      .status()
      .ips.map((i) => ({ ip: i.ip, label: i.label, listed: i.listed, zones: i.zones.map((z) => ({ zone: z.zone, state: z.state, answer: z.answer, reason: z.reason, error: z.error })) }));
    const lines = dnsbl.length
      ? dnsbl.map(
          (d) =>
            `blacklists: ${d.ip} (${d.label}) ${d.listed ? 'LISTED on ' + d.zones.filter((z) => z.state === 'listed' || (z.state === 'error' && z.answer)).map((z) => `${z.zone}${z.reason ? ` (${z.reason})` : ''}`).join(', ') : d.zones.length ? 'not listed' : 'not checked yet'}${d.zones.some((z) => z.state === 'error') ? `; ${d.zones.filter((z) => z.state === 'error').length} list(s) did not answer` : ''}`,
        )
      : ['blacklists: no address to watch (dnsbl.checkIps is empty)'];
    return { json: { dnsbl }, lines };
  };
}
