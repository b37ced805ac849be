import { needsSmtpUtf8, normalizeAddress, splitAddress } from './address.js';
import type { RelayPolicy } from './relay.js';
import { replies } from './reply.js';
import { accept, refuse, type SessionFacts, type Verdict } from './types.js';

export interface RecipientDirectory {
  exists(address: string): boolean;
}

/**
 * The RCPT TO address as every policy sees it: normalized, and a postmaster with no
 * domain (RFC 5321 4.1.1.3) mapped to postmaster@ the first local domain. Null for
 * anything that is not a plain dot-atom@domain.
 */
export function parseRecipient(rawAddress: string, firstDomain: string): string | null {
  let address = normalizeAddress(rawAddress);
  if (address === 'postmaster') address = `postmaster@${firstDomain}`;
  return address && splitAddress(address) ? address : null;
}

/** A recipient at a local domain must have an account or alias; `address` is parsed. */
export function checkLocalRecipient(address: string, relay: RelayPolicy, directory: RecipientDirectory): Verdict {
  const { local, domain } = splitAddress(address)!;
  // RFC 5321 4.5.1: postmaster at every local domain must be accepted, account or not.
  if (relay.isLocalDomain(domain) && local !== 'postmaster' && !directory.exists(address)) return refuse(replies.unknownUser);
  return accept;
}

/** RCPT TO: syntax, then the relay decision, then local existence (the chain's first RCPT units). */
export function checkRecipient(
  facts: SessionFacts,
  rawAddress: string,
  relay: RelayPolicy,
  directory: RecipientDirectory,
  firstDomain: string,
): { verdict: Verdict; address: string | null } {
  const address = parseRecipient(rawAddress, firstDomain);
  if (!address) return { verdict: refuse(replies.badRecipientSyntax), address: null };
  if (needsSmtpUtf8(address) && !facts.smtputf8) return { verdict: refuse(replies.needsSmtpUtf8), address };
  const relayVerdict = relay.check(facts, splitAddress(address)!.domain);
  if (!relayVerdict.ok) return { verdict: relayVerdict, address };
  return { verdict: checkLocalRecipient(address, relay, directory), address };
}
