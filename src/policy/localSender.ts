import { domainToASCII } from 'node:url';
import type { Reply } from './reply.js';
import { accept, refuse, type SessionFacts, type Verdict } from './types.js';

/** What the local-sender rule needs of the relay policy. */
export interface LocalSenderJudge {
  isLocalDomain(domain: string): boolean;
  vouchesForSender(facts: SessionFacts): boolean;
}

/**
 * A local domain as sender from a client nobody vouches for (no login, not in
 * relay.allowIps) is a forgery of our own domain (Postfix's
 * reject_unauthenticated_sender_login_mismatch): refused unless the site allows it
 * (relay.localSenderFromOutside). `addresses` are lower-cased. The domain is taken after
 * the last "@" with trailing dots dropped, so a quoted local part or "example.test." in a
 * header From (which a reader or a DMARC check may take for ours) is judged too. The
 * domain is compared in its A-label form, mapped as leniently as a reader's IDNA would
 * (U-labels, "。" for "."): local domains are stored as A-labels, and smtp-server hands
 * envelope domains over in U-labels.
 */
export function checkLocalSenders(mode: 'reject' | 'allow', facts: SessionFacts, addresses: string[], judge: LocalSenderJudge, reply: Reply): Verdict {
  if (mode !== 'reject' || judge.vouchesForSender(facts)) return accept;
  for (const a of addresses) {
    const domain = a.slice(a.lastIndexOf('@') + 1).replace(/[.\u3002\uff0e\uff61]+$/, '');
    if (a.includes('@') && (judge.isLocalDomain(domain) || judge.isLocalDomain(domainToASCII(domain)))) return refuse(reply);
  }
  return accept;
}
