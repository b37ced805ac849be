import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface DnsSettings {
  servers: string[];
  timeoutSeconds: number;
}

/** One host to try, in order: an address to connect to and the name it was found under. */
export interface MxHost {
  name: string;
  pref: number;
  addresses: string[];
}

/** What a domain's mail routing looks like, or why there is none. */
export type MxAnswer =
  | { kind: 'hosts'; hosts: MxHost[] }
  /** The domain does not exist: permanent. */
  | { kind: 'nxdomain' }
  /** RFC 7505 null MX: the domain takes no mail, permanent. */
  | { kind: 'nullmx' }
  /** A name server failed or timed out: try again later. */
  | { kind: 'temporary'; error: string };

const NOT_FOUND = new Set(['ENOTFOUND']);
const NO_DATA = new Set(['ENODATA']);

/**
 * The resolver for MX, address and blacklist look-ups. Its servers come from `dns.servers`
 * (the appliance's own choice, and how tests point it at a DNS server on loopback); it is
 * rebuilt when they change.
 */
export class DnsClient {
  private current: Resolver | null = null;
  private key = '';

  constructor(private readonly settings: () => DnsSettings) {}

  resolver(): Resolver {
    const s = this.settings();
    const key = `${s.servers.join(',')}/${s.timeoutSeconds}`;
    if (!this.current || key !== this.key) {
      const r = new Resolver({ timeout: s.timeoutSeconds * 1000, tries: 2 });
      if (s.servers.length) r.setServers(s.servers);
      this.current = r;
      this.key = key;
    }
    return this.current;
  }

  /** IPv4 then IPv6 addresses of a host; an IP literal is its own answer. */
  async addresses(host: string): Promise<string[]> {
    if (isIP(host)) return [host];
    const r = this.resolver();
    const [v4, v6] = await Promise.allSettled([r.resolve4(host), r.resolve6(host)]);
    const out = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (out.length) return out;
    // "No address" only when both answers say so; a failed query makes it a temporary error,
    // or a timeout on AAAA would turn into a permanent bounce.
    for (const r of [v4, v6]) {
      const err = r.status === 'rejected' ? (r.reason as NodeJS.ErrnoException) : null;
      if (err && !NOT_FOUND.has(err.code ?? '') && !NO_DATA.has(err.code ?? '')) throw err;
    }
    return [];
  }

  /**
   * Where mail for a domain goes (RFC 5321 5.1): the MX hosts in preference order, or the
   * domain's own address when it has no MX record at all.
   */
  async mx(domain: string): Promise<MxAnswer> {
    const r = this.resolver();
    let records: { exchange: string; priority: number }[];
    try {
      records = await r.resolveMx(domain);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (NOT_FOUND.has(code)) return { kind: 'nxdomain' };
      if (!NO_DATA.has(code)) return { kind: 'temporary', error: `MX look-up for ${domain}: ${code || (err as Error).message}` };
      records = [];
    }
    if (records.length === 1 && (records[0]!.exchange === '' || records[0]!.exchange === '.')) return { kind: 'nullmx' };
    if (records.length === 0) {
      try {
        const addresses = await this.addresses(domain);
        return addresses.length ? { kind: 'hosts', hosts: [{ name: domain, pref: 0, addresses }] } : { kind: 'nxdomain' };
      } catch (err) {
        return { kind: 'temporary', error: `address look-up for ${domain}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
      }
    }
    // Equal preferences are shuffled so that load spreads, as RFC 5321 asks.
    const sorted = records
      .filter((m) => m.exchange !== '' && m.exchange !== '.')
      .map((m) => ({ ...m, tie: Math.random() }))
      .sort((a, b) => a.priority - b.priority || a.tie - b.tie);
    const hosts: MxHost[] = [];
    let lastError: string | null = null;
    for (const m of sorted) {
      try {
        const addresses = await this.addresses(m.exchange);
        if (addresses.length) hosts.push({ name: m.exchange, pref: m.priority, addresses });
      } catch (err) {
        lastError = `address look-up for ${m.exchange}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      }
    }
    if (hosts.length) return { kind: 'hosts', hosts };
    return { kind: 'temporary', error: lastError ?? `no address for any MX host of ${domain}` };
  }
}
