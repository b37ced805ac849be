import { normalizeAddress } from './address.js';
import { replies, type Reply } from './reply.js';
import { accept, refuse, type SessionFacts, type Verdict } from './types.js';

export interface SenderOwnership {
  owns(login: string, address: string): boolean;
}

/**
 * "Block mismatching AUTH name and sender": an authenticated login may use as sender
 * only addresses it owns. Unauthenticated sessions are not judged here (relay rules
 * and, later, thresholds are). The null sender is not an address anyone owns, so an
 * authenticated client may not use it either.
 */
function check(mode: 'reject' | 'allow', facts: SessionFacts, address: string, own: SenderOwnership, reply: Reply): Verdict {
  if (mode !== 'reject' || !facts.login) return accept;
  // A header From may spell an IDN domain in U-labels; logins are stored in A-labels.
  return own.owns(facts.login, normalizeAddress(address) ?? address) ? accept : refuse(reply);
}

export function checkEnvelopeSender(mode: 'reject' | 'allow', facts: SessionFacts, address: string, own: SenderOwnership): Verdict {
  return check(mode, facts, address, own, replies.senderNotOwned);
}

/** Every address in the header From must be owned (a From may list several authors). */
export function checkHeaderFrom(mode: 'reject' | 'allow', facts: SessionFacts, addresses: string[], own: SenderOwnership): Verdict {
  if (mode !== 'reject' || !facts.login) return accept;
  if (addresses.length === 0) return refuse(replies.headerFromNotOwned);
  for (const a of addresses) {
    const v = check(mode, facts, a, own, replies.headerFromNotOwned);
    if (!v.ok) return v;
  }
  return accept;
}
