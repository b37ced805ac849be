import type { Config } from '../config/schema.js';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';

export type RouteKind = 'mx' | 'smarthost' | 'fixed' | 'local';

export interface Route {
  /** What the connection caps and buckets count by: 'local', 'smarthost', 'fixed:DOMAIN' or 'mx:DOMAIN'. */
  key: string;
  kind: RouteKind;
}

export interface RoutesDeps {
  isLocalDomain: (domain: string) => boolean;
  /** True while the DNSBL check says our own address is listed and mail should go via the smarthost. */
  reroute: () => boolean;
  emit: (ev: EventInput) => unknown;
  log: Logger;
}

/**
 * Which way a recipient's mail leaves: a local mailbox, a partner domain's fixed host, the
 * smarthost (by configuration or because a blacklist listing reroutes us), or the MX hosts.
 */
export class Routes {
  private wasRerouted = false;

  constructor(private readonly deps: RoutesDeps) {}

  of(domain: string, cfg: Config): Route {
    if (this.deps.isLocalDomain(domain)) return { key: 'local', kind: 'local' };
    if (cfg.routing.domains[domain]) return { key: `fixed:${domain}`, kind: 'fixed' };
    if (cfg.routing.mode === 'smarthost' || this.rerouting(cfg)) return { key: 'smarthost', kind: 'smarthost' };
    return { key: `mx:${domain}`, kind: 'mx' };
  }

  /** True while mx-mode mail goes through the smarthost; a switch either way is announced once. */
  rerouting(cfg: Config): boolean {
    const on = cfg.routing.mode === 'mx' && cfg.dnsbl.autoReroute && cfg.routing.smarthost.host !== '' && this.deps.reroute();
    if (on !== this.wasRerouted) {
      this.wasRerouted = on;
      this.deps.emit(
        on
          ? { kind: 'routing.rerouted', severity: 'warning', text: `our address is on a blacklist: outbound mail now goes through the smarthost ${cfg.routing.smarthost.host}` }
          : { kind: 'routing.restored', severity: 'info', text: 'outbound mail goes to MX hosts directly again' },
      );
      this.deps.log.warn({ evt: on ? 'routing.rerouted' : 'routing.restored', smarthost: cfg.routing.smarthost.host }, 'outbound route switched');
    }
    return on;
  }

  /** Changes whenever any input of of() does (mode, overrides, local domains, a reroute). */
  signature(cfg: Config): string {
    return JSON.stringify([cfg.routing.mode, Object.keys(cfg.routing.domains), cfg.domains, this.rerouting(cfg)]);
  }
}
