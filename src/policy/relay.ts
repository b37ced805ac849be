import type { Config } from '../config/schema.js';
import { IpList } from './ipList.js';
import { replies } from './reply.js';
import { accept, refuse, type SessionFacts, type Verdict } from './types.js';

/**
 * The relay decision, evaluated before any other recipient policy (Postfix's
 * smtpd_relay_restrictions): a recipient domain that is not local is accepted only
 * for an allowed client IP, an allowed recipient domain, or an authenticated session.
 */
export class RelayPolicy {
  private ips: IpList;
  private relayDomains: Set<string>;
  private localDomains: Set<string>;
  private allowAuthenticated: boolean;

  constructor(cfg: Config) {
    this.ips = new IpList(cfg.relay.allowIps);
    this.relayDomains = new Set(cfg.relay.allowRecipientDomains.map((d) => d.toLowerCase()));
    this.localDomains = new Set(cfg.domains);
    this.allowAuthenticated = cfg.relay.allowAuthenticated;
  }

  /** A client of the company's own network (relay.allowIps): its mail counts as local, outbound mail. */
  isTrustedClient(ip: string): boolean {
    return this.ips.has(ip);
  }

  isLocalDomain(domain: string): boolean {
    return this.localDomains.has(domain);
  }

  /**
   * The session may speak for a local domain: an authenticated login or a client of the
   * company's own network. Anyone else claiming a local sender is a forger (or a mailing
   * list that resends our users' posts, which relay.localSenderFromOutside can allow).
   */
  vouchesForSender(facts: SessionFacts): boolean {
    return !!facts.login || this.ips.has(facts.clientIp);
  }

  /** `domain` is the normalized recipient domain (exact, case-insensitive match). */
  check(facts: SessionFacts, domain: string): Verdict {
    if (this.localDomains.has(domain)) return accept;
    if (this.ips.has(facts.clientIp)) return accept;
    if (this.relayDomains.has(domain)) return accept;
    if (this.allowAuthenticated && facts.login) return accept;
    return refuse(replies.relayDenied);
  }
}
