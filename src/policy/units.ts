import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { needsSmtpUtf8, normalizeAddress, splitAddress } from './address.js';
import type { AuthPolicy } from './auth.js';
import type { PolicyUnit, Refusal } from './chain.js';
import { checkLocalRecipient, parseRecipient, type RecipientDirectory } from './recipient.js';
import type { RelayPolicy } from './relay.js';
import { replies } from './reply.js';
import { checkEnvelopeSender, checkHeaderFrom, type SenderOwnership } from './senderLogin.js';
import { checkLocalSenders } from './localSender.js';
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

export interface CredentialStamps {
  /** A fingerprint of the user's current credentials; undefined when there is no such user. */
  credentialStamp(address: string): string | undefined;
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

/** Notes what the credentials were at AUTH, so a later password change or deletion ends the session's authority. */
export function loginStampUnit(accounts: CredentialStamps): PolicyUnit {
  return {
    name: 'accounts.loginStamp',
    stage: 'auth',
    check: (f) => {
      const loginStamp = f.login ? accounts.credentialStamp(f.login) : undefined;
      return f.login && loginStamp ? { login: f.login, loginStamp } : 'continue';
    },
  };
}

// ---- MAIL FROM

/**
 * An open session keeps no authority its login has lost: at every MAIL the account must
 * still exist with the credentials of the AUTH. The reply is 421 and the session ends:
 * the client reconnects and logs in again, where a deleted account or an old password
 * gets 535 (a suspended account too: see AuthPolicy).
 */
export function loginValidUnit(accounts: CredentialStamps): PolicyUnit {
  return {
    name: 'accounts.loginValid',
    stage: 'mail',
    check: (f) => {
      if (!f.login) return 'continue';
      const now = accounts.credentialStamp(f.login);
      const changed = now === undefined || (f.loginStamp != null && now !== f.loginStamp);
      return changed ? { refuse: replies.loginNoLongerValid } : 'continue';
    },
  };
}

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

/**
 * The null sender <> passes; any other sender must be a plain address, and one with a
 * UTF-8 local part needs SMTPUTF8 on its MAIL FROM.
 */
export function senderSyntaxUnit(): PolicyUnit {
  return {
    name: 'address.senderSyntax',
    stage: 'mail',
    check: (f) => {
      const sender = normalizeAddress(f.sender);
      if (sender === null) return 'continue';
      if (!splitAddress(sender)) return { refuse: replies.badSenderSyntax };
      return needsSmtpUtf8(sender) && !f.smtputf8 ? { refuse: replies.needsSmtpUtf8 } : 'continue';
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

/** An unauthenticated outside client may not claim a local domain as envelope sender; <> (bounces) passes. */
export function localEnvelopeSenderUnit(relay: () => RelayPolicy, config: () => Config): PolicyUnit {
  return {
    name: 'relay.localSender',
    stage: 'mail',
    check: (f) => {
      const sender = normalizeAddress(f.sender);
      if (sender === null) return 'continue';
      return asResult(checkLocalSenders(config().relay.localSenderFromOutside, f, [sender], relay(), replies.localSenderFromOutside));
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
      if (needsSmtpUtf8(address) && !f.smtputf8) return { refuse: replies.needsSmtpUtf8 };
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
}

/**
 * First-time recipients of a login per day; the store is not read when the limit is off.
 * A recipient is counted here, but remembered as known only when a message to it is
 * committed (the thresholds capability does that), so a probe that never sends teaches
 * the store nothing.
 */
export function newRecipientThresholdUnit(config: () => Config, thresholds: ThresholdPolicy, sent: SentRecipients): PolicyUnit {
  return {
    name: 'thresholds.newRecipients',
    stage: 'rcpt',
    check: async (f) => {
      if (!f.login || config().thresholds.perAccountNewRecipientsPerDay <= 0) return 'continue';
      const isNew = !(await sent.hasSent(f.login, f.recipient));
      return asResult(thresholds.newRecipient(f, isNew, f.recipient));
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

/** The same rule for the header From, which is what DMARC and the reader see. */
export function localHeaderFromUnit(relay: () => RelayPolicy, config: () => Config): PolicyUnit {
  return {
    name: 'relay.localHeaderFrom',
    stage: 'data',
    check: (f) => {
      const from = f.headerFrom.map((a) => normalizeAddress(a) ?? '');
      return asResult(checkLocalSenders(config().relay.localSenderFromOutside, f, from, relay(), replies.localHeaderFromOutside));
    },
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
