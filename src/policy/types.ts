import type { Reply } from './reply.js';

/** What a policy knows about the session; filled in by the SMTP layer. */
export interface SessionFacts {
  clientIp: string;
  listener: string;
  /** The authenticated login (a normalized user address), if any. */
  login: string | null;
  /**
   * A fingerprint of the login's credentials as they were at AUTH: once the password
   * changes (or the account goes) the session's authority ends (accounts.loginValid).
   */
  loginStamp?: string | null;
  tls: boolean;
  /** The client gave SMTPUTF8 on this transaction's MAIL FROM (RFC 6531): UTF-8 local parts may follow. */
  smtputf8?: boolean;
}

export type Verdict = { ok: true } | { ok: false; reply: Reply };

export const accept: Verdict = { ok: true };
export const refuse = (reply: Reply): Verdict => ({ ok: false, reply });

/** What the content scanners decided for a message (the scan/ module makes it). */
export interface ScanVerdict {
  class: 'spam' | 'virus';
  action: 'quarantine' | 'delete' | 'deliver';
  summary: string;
}

export type ContentDecision =
  | { kind: 'accept'; addHeaders?: string }
  /** Commit, then quarantine, drop or deliver tagged, as `scan.action` says. */
  | { kind: 'commit'; scan: ScanVerdict; addHeaders?: string }
  | { kind: 'refuse'; reply: Reply };
