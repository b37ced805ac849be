import { replies, type Reply } from './reply.js';
import type { ScanVerdict, SessionFacts } from './types.js';

/**
 * The policy chain: per SMTP stage, an ordered list of small units (Postfix's
 * smtpd_*_restrictions, Haraka's hooks). Units run in the order below; the first one
 * that does not say "continue" ends the stage; the end of the list accepts. Everything
 * mlsd decides about a session is in a unit listed here; the SMTP layer only turns the
 * outcome into a wire reply.
 */

export type Stage = 'connect' | 'auth' | 'mail' | 'rcpt' | 'data';

/** The end-of-DATA message, as the data units see it (the spool already holds it). */
export interface DataMessage {
  /** The envelope sender, lower-cased ('' for the null sender). */
  from: string;
  /** The accepted recipients, normalized. */
  rcpt: string[];
  size: number;
  subject: string;
  contents: () => Promise<Buffer>;
}

/** What a unit of each stage is told: the session, and what the client has said at this stage. */
export interface StageFacts {
  connect: SessionFacts;
  /** `login` is null until a unit vouches for the credentials (then it is the user's address; `loginStamp` may follow). */
  auth: SessionFacts & { username: string; password: string };
  /** `sender` as the client gave it (blank for the null sender <>). */
  mail: SessionFacts & { sender: string };
  /** `recipient` as the client gave it, until a unit replaces it with the normalized address. */
  rcpt: SessionFacts & { recipient: string };
  /** `headerFrom`: the addresses in the message's From header. */
  data: SessionFacts & { headerFrom: string[]; message: DataMessage };
}

/** How the message is committed: with the scanners' verdict and headers to add, if any. */
export interface Commit {
  scan?: ScanVerdict;
  addHeaders?: string;
}

/**
 * What a unit may answer besides "continue" and a refusal:
 * - auth: `{ login }`, the credentials are good for this user; the stage goes on with
 *   `login` set, so later units judge the account (the end of the list accepts it);
 *   `loginStamp` goes with the session, for accounts.loginValid at each MAIL;
 * - rcpt: `{ recipient }`, the normalized address; the stage goes on with it;
 * - data: `{ commit }`, accept the message, as the content check decided (ends the stage).
 */
interface StageAnswers {
  connect: never;
  auth: { login: string; loginStamp?: string };
  mail: never;
  rcpt: { recipient: string };
  data: { commit: Commit };
}

export interface Refusal {
  refuse: Reply;
}

export type UnitResult<S extends Stage> = 'continue' | Refusal | StageAnswers[S];

/** One policy of one stage; `check` may be async (a unit that never answers holds only its session). */
export type PolicyUnit = {
  [S in Stage]: { name: string; stage: S; check(facts: StageFacts[S]): UnitResult<S> | Promise<UnitResult<S>> };
}[Stage];

/**
 * THE ORDER: every unit of every stage, in the order it runs. A unit supplied to
 * `buildChain` but not listed here is a start-up error, as is a listed one not supplied.
 */
export const POLICY_ORDER = {
  // It counts the connection it accepts (released at disconnect): keep it last.
  connect: ['thresholds.connections'],
  // The lockout comes before the password check; a suspended account is judged inside
  // it too (its right password is answered and counted as a wrong one: no password oracle).
  // The login stamp comes last: it notes the credentials a successful AUTH used.
  auth: ['smtp.tlsRequired', 'auth.lockout+credentials', 'accounts.loginStamp'],
  mail: ['accounts.loginValid', 'spool.diskReserve', 'disk.usageReserve', 'accounts.senderNotSuspended', 'address.senderSyntax', 'senderLogin.envelope', 'relay.localSender', 'thresholds.messages'],
  // Relay first (Postfix's smtpd_relay_restrictions): it parses the address the way every
  // later unit will see it, so no later rule can be talked into relaying.
  rcpt: ['relay', 'recipient.local', 'thresholds.recipients', 'thresholds.newRecipients'],
  data: ['senderLogin.headerFrom', 'relay.localHeaderFrom', 'scan.content'],
} as const satisfies Record<Stage, readonly string[]>;

/** A stage's outcome for the SMTP layer: accepted (with what the stage settled) or refused by `unit`. */
export type Outcome<T extends object = object> = ({ ok: true } & T) | { ok: false; reply: Reply; unit: string };

/** Told when a session whose connect stage was accepted ends (thresholds release its slot). */
export type DisconnectListener = (facts: SessionFacts) => void;

export interface PolicyChain {
  connect(session: SessionFacts): Promise<Outcome>;
  auth(session: SessionFacts, username: string, password: string): Promise<Outcome<{ login: string; loginStamp?: string }>>;
  mail(session: SessionFacts, sender: string): Promise<Outcome>;
  rcpt(session: SessionFacts, recipient: string): Promise<Outcome<{ address: string }>>;
  data(session: SessionFacts, headerFrom: string[], message: DataMessage): Promise<Outcome<Commit>>;
  /** Only for sessions whose connect stage was accepted. */
  disconnect(session: SessionFacts): void;
}

type UnitOf<S extends Stage> = Extract<PolicyUnit, { stage: S }>;

/** Checks the supplied units against POLICY_ORDER (every problem named in one error) and puts them in order. */
export function buildChain(units: PolicyUnit[], onDisconnect: DisconnectListener[] = []): PolicyChain {
  const problems: string[] = [];
  const byKey = new Map<string, PolicyUnit>();
  for (const u of units) {
    const key = `${u.stage}:${u.name}`;
    if (!(POLICY_ORDER[u.stage] as readonly string[]).includes(u.name)) problems.push(`policy unit ${u.name} (${u.stage}) is not in the policy order`);
    else if (byKey.has(key)) problems.push(`policy unit ${u.name} (${u.stage}) is supplied twice`);
    else byKey.set(key, u);
  }
  const ordered = <S extends Stage>(stage: S): UnitOf<S>[] =>
    (POLICY_ORDER[stage] as readonly string[]).flatMap((name) => {
      const u = byKey.get(`${stage}:${name}`);
      if (!u) problems.push(`policy unit ${name} (${stage}) is listed in the policy order but not supplied`);
      return u ? [u as UnitOf<S>] : [];
    });
  const connect = ordered('connect');
  const auth = ordered('auth');
  const mail = ordered('mail');
  const rcpt = ordered('rcpt');
  const data = ordered('data');
  if (problems.length) throw new Error(`policy chain: ${problems.join('; ')}`);

  const refused = (r: Refusal, unit: { name: string }) => ({ ok: false as const, reply: r.refuse, unit: unit.name });

  return {
    async connect(session) {
      for (const u of connect) {
        const r = await u.check(session);
        if (r !== 'continue') return refused(r, u);
      }
      return { ok: true };
    },
    async auth(session, username, password) {
      let facts: StageFacts['auth'] = { ...session, login: null, username, password };
      for (const u of auth) {
        const r = await u.check(facts);
        if (r === 'continue') continue;
        if ('refuse' in r) return refused(r, u);
        facts = { ...facts, login: r.login, ...(r.loginStamp ? { loginStamp: r.loginStamp } : {}) };
      }
      // No unit vouched for the credentials: nothing to accept.
      if (!facts.login) return { ok: false, reply: replies.authFailed, unit: 'auth' };
      return facts.loginStamp ? { ok: true, login: facts.login, loginStamp: facts.loginStamp } : { ok: true, login: facts.login };
    },
    async mail(session, sender) {
      const facts = { ...session, sender };
      for (const u of mail) {
        const r = await u.check(facts);
        if (r !== 'continue') return refused(r, u);
      }
      return { ok: true };
    },
    async rcpt(session, recipient) {
      let facts: StageFacts['rcpt'] = { ...session, recipient };
      for (const u of rcpt) {
        const r = await u.check(facts);
        if (r === 'continue') continue;
        if ('refuse' in r) return refused(r, u);
        facts = { ...facts, recipient: r.recipient };
      }
      return { ok: true, address: facts.recipient };
    },
    async data(session, headerFrom, message) {
      const facts = { ...session, headerFrom, message };
      for (const u of data) {
        const r = await u.check(facts);
        if (r === 'continue') continue;
        if ('refuse' in r) return refused(r, u);
        return { ok: true, ...r.commit };
      }
      return { ok: true };
    },
    disconnect(session) {
      for (const l of onDisconnect) l(session);
    },
  };
}

/**
 * Repeated errors end the session (Postfix's smtpd_hard_error_limit): once a client has
 * had `maxBadCommands` refusals, a permanent one becomes 421 and the connection closes.
 * `errorsSoFar` counts this refusal too.
 */
export function escalate(reply: Reply, errorsSoFar: number, maxBadCommands: number): Reply {
  return errorsSoFar >= maxBadCommands && reply.code >= 500 ? replies.tooManyErrors : reply;
}

/**
 * The reply when a stage could not be decided because something inside mlsd failed: a
 * temporary one (the client retries), never a 5xx. At DATA a full disk and a lost standby
 * say so; `expected` tells the caller those are conditions, not faults to log as errors.
 */
export function failureReply(stage: Stage, err: unknown): { reply: Reply; expected: boolean } {
  if (stage === 'auth') return { reply: replies.authTemporaryFailure, expected: false };
  const kind = stage === 'data' ? (err as { kind?: string } | null)?.kind : undefined;
  if (kind === 'full') return { reply: replies.storageFull, expected: true };
  if (kind === 'peerLost') return { reply: replies.haNotInSync, expected: true };
  return { reply: replies.internalError, expected: false };
}
