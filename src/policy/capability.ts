import type { Config } from '../config/schema.js';
import type { BoxContext, Capability } from '../core/capability.js';
import type { AccountStore } from '../accounts/accounts.js';
import { RelayPolicy } from './relay.js';
import { envelopeSenderUnit, headerFromUnit, localEnvelopeSenderUnit, localHeaderFromUnit, localRecipientUnit, relayUnit, senderSyntaxUnit, tlsRequiredUnit } from './units.js';

export interface RelayControlCapability extends Capability {
  /** Clients the relay rules trust (relay.allowIps): the scanners judge their mail as outbound. */
  isTrustedClient(ip: string): boolean;
}

/**
 * Relay control and address rules: who may relay, which recipients exist, who may send
 * as whom, and that passwords never cross in clear. Relay is judged first at RCPT.
 */
export function startRelayControl(box: BoxContext, accounts: AccountStore): RelayControlCapability {
  const current = () => box.config.current;
  let relay = new RelayPolicy(current());
  return {
    isTrustedClient: (ip) => relay.isTrustedClient(ip),
    policies: [
      tlsRequiredUnit(),
      senderSyntaxUnit(),
      envelopeSenderUnit(current, accounts),
      localEnvelopeSenderUnit(() => relay, current),
      relayUnit(() => relay, current),
      localRecipientUnit(() => relay, accounts),
      headerFromUnit(current, accounts),
      localHeaderFromUnit(() => relay, current),
    ],
    configChanged: (cfg: Config) => {
      relay = new RelayPolicy(cfg);
    },
  };
}
