import type { Reply } from './reply.js';

/** What a policy knows about the session; filled in by the SMTP layer. */
export interface SessionFacts {
  clientIp: string;
  listener: string;
  /** The authenticated login (a normalized user address), if any. */
  login: string | null;
  tls: boolean;
}

export type Verdict = { ok: true } | { ok: false; reply: Reply };

export const accept: Verdict = { ok: true };
export const refuse = (reply: Reply): Verdict => ({ ok: false, reply });
