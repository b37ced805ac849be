import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { normalizeAddress, splitAddress } from './address.js';
import type { AuthPolicy } from './auth.js';
import type { PolicyUnit, Refusal } from './chain.js';
import { checkLocalRecipient, parseRecipient, type RecipientDirectory } from './recipient.js';
import type { RelayPolicy } from './relay.js';
import { replies } from './reply.js';
import { checkEnvelopeSender, checkHeaderFrom, type SenderOwnership } from './senderLogin.js';
import type { ThresholdPolicy } from './thresholds.js';
import type { ContentDecision, SessionFacts, Verdict } from './types.js';

/**
 * The units of the policy chain (see chain.ts for their order). Each factory takes what
 * its unit needs and nothing more, so the capability that owns a policy can contribute
 * its unit. Config and the relay policy are getters: both are replaced on a config change.
 */

const asResult = (v: Verdict): 'continue' | Refusal => (v.ok ? 'continue' : { refuse: v.reply });

export interface Suspensions {
  /** Set while the account is suspended from sending. */
  suspension(address: string): unknown;
}

// ---- connect

export function connectionThresholdUnit(thresholds: ThresholdPolicy): PolicyUnit {
  return { name: 'thresholds.connections', stage: 'connect', check: (f) => asResult(thresholds.connect(f)) };
}

// ---- auth

/** A listener without STARTTLS would otherwise take a password in clear text. */
export function tlsRequiredUnit(): PolicyUnit {
  return { name: 'smtp.tlsRequired', stage: 'auth', check: (f) => (f.tls ? 'continue' : { refuse: replies.authNeedsTls }) };
}

export function credentialsUnit(auth: AuthPolicy): PolicyUnit {
  return {
    name: 'auth.lockout+credentials',
    stage: 'auth',
    check: async (f) => {
      const r = await auth.authenticate(f, f.username, f.password);
      return r.ok ? { login: r.login } : { refuse: r.reply };
    },
  };
}

// ---- MAIL FROM

/** The spool's free-space reserve: below it no new message is begun (452 4.3.1, the client retries). */
export function diskReserveUnit(hasRoom: () => Promise<boolean>, log: Logger): PolicyUnit {
  return {
    name: 'spool.diskReserve',
    stage: 'mail',
    check: async () => {
      try {
        return (await hasRoom()) ? 'continue' : { refuse: replies.storageFull };
      } catch (err) {
        log.error({ evt: 'spool.statfs', err: (err as Error).message }, 'cannot read free space');
        return { refuse: replies.internalError };
      }
    },
  };
}

export function senderNotSuspendedUnit(accounts: Suspensions): PolicyUnit {
  return {
    name: 'accounts.senderNotSuspended',
    stage: 'mail',
    check: (f) => (f.login && accounts.suspension(f.login) ? { refuse: replies.senderSuspended } : 'continue'),
  };
}

/** The null sender <> passes; any other sender must be a plain address. */
export function senderSyntaxUnit(): PolicyUnit {
  return {
    name: 'address.senderSyntax',
    stage: 'mail',
    check: (f) => {
      const sender = normalizeAddress(f.sender);
      return sender === null || splitAddress(sender) ? 'continue' : { refuse: replies.badSenderSyntax };
    },
  };
}

/** An authenticated login sends only as addresses it owns; the null sender is no one's. */
export function envelopeSenderUnit(config: () => Config, accounts: SenderOwnership): PolicyUnit {
  return {
    name: 'senderLogin.envelope',
    stage: 'mail',
    check: (f) => {
      const mode = config().senderLoginMismatch;
      const sender = normalizeAddress(f.sender);
      if (sender === null) return f.login && mode === 'reject' ? { refuse: replies.senderNotOwned } : 'continue';
      return asResult(checkEnvelopeSender(mode, f, sender, accounts));
    },
  };
}

/** The null sender (bounces) is not held to the message limits at MAIL; it is still counted when committed. */
export function messageThresholdUnit(thresholds: ThresholdPolicy): PolicyUnit {
  return {
    name: 'thresholds.messages',
    stage: 'mail',
    check: (f) => (normalizeAddress(f.sender) === null ? 'continue' : asResult(thresholds.mail(f))),
  };
}

// ---- RCPT TO

/**
 * The relay decision, on the address parsed once here (syntax refused with 501 5.1.3):
 * a non-local domain only for an allowed client, recipient domain or login.
 */
export function relayUnit(relay: () => RelayPolicy, config: () => Config): PolicyUnit {
  return {
    name: 'relay',
    stage: 'rcpt',
    check: (f) => {
      const address = parseRecipient(f.recipient, config().domains[0] ?? 'localhost');
      if (!address) return { refuse: replies.badRecipientSyntax };
      const v = relay().check(f, splitAddress(address)!.domain);
      return v.ok ? { recipient: address } : { refuse: v.reply };
    },
  };
}

export function localRecipientUnit(relay: () => RelayPolicy, directory: RecipientDirectory): PolicyUnit {
  return { name: 'recipient.local', stage: 'rcpt', check: (f) => asResult(checkLocalRecipient(f.recipient, relay(), directory)) };
}

/** Checks and, when accepted, counts the recipient (per client IP, per minute). */
export function recipientThresholdUnit(thresholds: ThresholdPolicy): PolicyUnit {
  return { name: 'thresholds.recipients', stage: 'rcpt', check: (f) => asResult(thresholds.rcpt(f)) };
}

/** The recipients each login has written to (kept in LevelDB by store/counters.ts). */
export interface SentRecipients {
  hasSent(login: string, rcpt: string): Promise<boolean>;
  rememberSent(login: string, rcpt: string): Promise<void>;
}

/** First-time recipients of a login per day; the store is not read when the limit is off. */
export function newRecipientThresholdUnit(config: () => Config, thresholds: ThresholdPolicy, sent: SentRecipients): PolicyUnit {
  return {
    name: 'thresholds.newRecipients',
    stage: 'rcpt',
    check: async (f) => {
      if (!f.login || config().thresholds.perAccountNewRecipientsPerDay <= 0) return 'continue';
      const isNew = !(await sent.hasSent(f.login, f.recipient));
      const v = thresholds.newRecipient(f, isNew);
      if (v.ok && isNew) await sent.rememberSent(f.login, f.recipient);
      return asResult(v);
    },
  };
}

// ---- end of DATA

export function headerFromUnit(config: () => Config, accounts: SenderOwnership): PolicyUnit {
  return {
    name: 'senderLogin.headerFrom',
    stage: 'data',
    check: (f) => asResult(checkHeaderFrom(config().senderLoginMismatch, f, f.headerFrom, accounts)),
  };
}

/** The scanners (scan/policy.ts's ContentPolicy): null when the message is not scanned. */
export interface ContentCheck {
  check(facts: SessionFacts, m: { from: string; rcpt: string[]; size: number; subject: string; contents: () => Promise<Buffer> }): Promise<ContentDecision | null>;
}

export function contentUnit(content: ContentCheck): PolicyUnit {
  return {
    name: 'scan.content',
    stage: 'data',
    check: async (f) => {
      const d = await content.check(f, f.message);
      if (!d) return 'continue';
      if (d.kind === 'refuse') return { refuse: d.reply };
      return { commit: d.kind === 'commit' ? { scan: d.scan, addHeaders: d.addHeaders } : { addHeaders: d.addHeaders } };
    },
  };
}
