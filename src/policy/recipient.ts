import { normalizeAddress, splitAddress } from './address.js';
import type { RelayPolicy } from './relay.js';
import { replies } from './reply.js';
import { accept, refuse, type SessionFacts, type Verdict } from './types.js';

export interface RecipientDirectory {
  exists(address: string): boolean;
}

/**
 * RCPT TO: syntax, then the relay decision, then local existence. A postmaster with no
 * domain (RFC 5321 4.1.1.3) is mapped to postmaster@ the first local domain.
 */
export function checkRecipient(
  facts: SessionFacts,
  rawAddress: string,
  relay: RelayPolicy,
  directory: RecipientDirectory,
  firstDomain: string,
): { verdict: Verdict; address: string | null } {
  let address = normalizeAddress(rawAddress);
  if (address === 'postmaster') address = `postmaster@${firstDomain}`;
  const parts = address ? splitAddress(address) : null;
  if (!address || !parts) return { verdict: refuse(replies.badRecipientSyntax), address: null };
  const relayVerdict = relay.check(facts, parts.domain);
  if (!relayVerdict.ok) return { verdict: relayVerdict, address };
  // RFC 5321 4.5.1: postmaster at every local domain must be accepted, account or not.
  if (relay.isLocalDomain(parts.domain) && parts.local !== 'postmaster' && !directory.exists(address)) {
    return { verdict: refuse(replies.unknownUser), address };
  }
  return { verdict: accept, address };
}
