import type { Config } from '../config/schema.js';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import { AuthLockout, type FailureOutcome } from './authLockout.js';
import { CheckGate } from './checkGate.js';
import { normalizeAddress } from './address.js';
import { replies, type Reply } from './reply.js';
import type { SessionFacts } from './types.js';

export type AuthResult = { ok: true; login: string } | { ok: false; reply: Reply };

export interface Credentials {
  authenticate(login: string, password: string): Promise<string | null>;
  /** Set while the account is suspended from sending. */
  suspension(address: string): unknown;
}

/** How many sources an alert names; the rest are counted. */
const NAMED_SOURCES = 20;

/**
 * AUTH: the lockout first (a locked IP or account is refused without even checking the
 * password, so guessing goes on being useless), then the password, through a bounded queue
 * (a login flood must not take the thread pool from the spool). Every failure counts, and a
 * new lock is an event for the administrator.
 *
 * No reply tells a guesser whether the password was right: a locked attempt gets the lock
 * reply whatever the password, and a suspended account's right password gets the same 535
 * as a wrong one and counts as a failure (the log says why).
 */
export class AuthPolicy {
  private readonly lockout: AuthLockout;
  private readonly gate: CheckGate;

  constructor(
    private readonly config: () => Config,
    private readonly credentials: Credentials,
    private readonly emit: (ev: EventInput) => Promise<unknown>,
    private readonly log: Logger,
    now: () => number = Date.now,
  ) {
    this.lockout = new AuthLockout(() => {
      const l = this.config().auth.lockout;
      return { maxFailures: l.maxFailures, windowMs: l.windowMinutes * 60_000, lockMs: l.lockMinutes * 60_000, ipv6Prefix: l.ipv6Prefix };
    }, now);
    this.gate = new CheckGate(() => ({ maxConcurrent: this.config().auth.maxConcurrentChecks, maxQueued: this.config().auth.maxQueuedChecks }));
  }

  async authenticate(facts: SessionFacts, login: string, password: string): Promise<AuthResult> {
    const account = normalizeAddress(login) ?? '';
    const ip = facts.clientIp;
    const lock = this.lockout.lockedBy(ip, account);
    if (lock) {
      this.log.info({ evt: 'auth.locked', ip, source: this.lockout.sourceOf(ip), account, lock }, 'AUTH refused by a lock; password not checked');
      return { ok: false, reply: replies.authLocked };
    }
    // The whole decision is taken in the check's turn: the lock is asked again (one set while
    // this attempt waited in the queue holds too) and the outcome is counted before the slot
    // frees, or every guess queued behind the one that locks would still be checked.
    const checked = await this.gate.run(() => this.checkInTurn(ip, account, login, password));
    if (checked.busy) {
      // Not a failure: the password was not looked at, so it must not count towards a lock.
      this.log.warn({ evt: 'auth.busy', ip, account, ...this.gate.load }, 'AUTH refused: too many password checks waiting');
      return { ok: false, reply: replies.authTemporaryFailure };
    }
    return checked.value;
  }

  private async checkInTurn(ip: string, account: string, login: string, password: string): Promise<AuthResult> {
    const late = this.lockout.lockedBy(ip, account);
    if (late) {
      this.log.info({ evt: 'auth.locked', ip, source: this.lockout.sourceOf(ip), account, lock: late, queued: true }, 'AUTH refused by a lock set while it waited; password not checked');
      return { ok: false, reply: replies.authLocked };
    }
    const user = await this.credentials.authenticate(login, password);
    if (this.credentials.suspension(user ?? account)) {
      // A suspended account: every attempt, right password or wrong, is refused alike and
      // counted alike, against the account only. Its owner's mail client retries the right
      // password on its own, and that must not lock out everybody behind the office's NAT
      // address; and counting right and wrong alike keeps the lock from telling a guesser
      // which password was right.
      this.log.info({ evt: 'auth.suspended', ip, account: user ?? account, passwordRight: user !== null }, 'AUTH for a suspended account; refused as a failed login');
      this.lockedOut(account, this.lockout.recordFailure(ip, account, 'account'));
      return { ok: false, reply: replies.authFailed };
    }
    if (user) {
      this.lockout.recordSuccess(ip, account);
      return { ok: true, login: user };
    }
    this.lockedOut(account, this.lockout.recordFailure(ip, account));
    return { ok: false, reply: replies.authFailed };
  }

  /**
   * Events for locks this failure started. A source lock names the source. An account lock
   * names every source it holds and carries no IP, so the alert mail (one per kind, IP,
   * account and limit per period) is one per account however many sources guess at it.
   */
  private lockedOut(account: string, out: FailureOutcome): void {
    const l = this.config().auth.lockout;
    const after = `for ${l.lockMinutes} min after ${l.maxFailures} failed logins in ${l.windowMinutes} min`;
    const counts = { ipFailures: out.ipFailures, accountFailures: out.accountFailures, lockMinutes: l.lockMinutes };
    if (out.ipLocked) {
      this.record({
        kind: 'auth.lockout',
        severity: 'warning',
        ip: out.source, // an IPv6 client is named by its prefix
        limit: 'auth.lockout.maxFailures',
        text: `client ${out.source} locked out of AUTH ${after} (last tried ${account || 'an invalid login'})`,
        data: { lock: 'ip', ...counts },
      });
    }
    // An account lock that holds only the source locked by this same failure tells nothing more.
    if (out.accountLocked && !(out.ipLocked && out.accountSources.length === 1)) {
      const named = out.accountSources.slice(0, NAMED_SOURCES).join(', ');
      const more = out.accountSources.length > NAMED_SOURCES ? ` and ${out.accountSources.length - NAMED_SOURCES} more` : '';
      this.record({
        kind: 'auth.lockout',
        severity: 'warning',
        account,
        limit: 'auth.lockout.maxFailures',
        text: `account ${account} locked out of AUTH ${after}, for the clients that guessed at it: ${named}${more}`,
        data: { lock: 'account', sources: out.accountSources.length, ...counts },
      });
    }
  }

  private record(ev: EventInput): void {
    this.emit(ev).catch((err: Error) => this.log.error({ evt: 'event.write', err: err.message }, 'could not record event'));
  }
}
