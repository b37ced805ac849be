import type { Config } from '../config/schema.js';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import { AuthLockout } from './authLockout.js';
import { normalizeAddress } from './address.js';
import { replies, type Reply } from './reply.js';
import type { SessionFacts } from './types.js';

export type AuthResult = { ok: true; login: string } | { ok: false; reply: Reply };

export interface Credentials {
  authenticate(login: string, password: string): Promise<string | null>;
}

/**
 * AUTH: the lockout first (a locked IP or account is refused without even checking the
 * password, so guessing goes on being useless), then the password; every failure counts
 * and a new lock is an event for the administrator.
 */
export class AuthPolicy {
  private readonly lockout: AuthLockout;

  constructor(
    private readonly config: () => Config,
    private readonly credentials: Credentials,
    private readonly emit: (ev: EventInput) => Promise<unknown>,
    private readonly log: Logger,
    now: () => number = Date.now,
  ) {
    this.lockout = new AuthLockout(() => {
      const l = this.config().auth.lockout;
      return { maxFailures: l.maxFailures, windowMs: l.windowMinutes * 60_000, lockMs: l.lockMinutes * 60_000 };
    }, now);
  }

  async authenticate(facts: SessionFacts, login: string, password: string): Promise<AuthResult> {
    const account = normalizeAddress(login) ?? '';
    const ip = facts.clientIp;
    if (this.lockout.lockedBy(ip, account)) return { ok: false, reply: replies.authLocked };
    const user = await this.credentials.authenticate(login, password);
    if (user) {
      this.lockout.recordSuccess(ip, account);
      return { ok: true, login: user };
    }
    const out = this.lockout.recordFailure(ip, account);
    if (out.locked) {
      const l = this.config().auth.lockout;
      const who = out.locked === 'ip' ? `client ${ip}` : `account ${account} from ${ip}`;
      this.emit({
        kind: 'auth.lockout',
        severity: 'warning',
        ip,
        account,
        limit: 'auth.lockout.maxFailures',
        text: `${who} locked out of AUTH for ${l.lockMinutes} min after ${l.maxFailures} failed logins in ${l.windowMinutes} min`,
        data: { lock: out.locked, ipFailures: out.ipFailures, accountFailures: out.accountFailures, lockMinutes: l.lockMinutes },
      }).catch((err: Error) => this.log.error({ evt: 'event.write', err: err.message }, 'could not record event'));
    }
    return { ok: false, reply: replies.authFailed };
  }
}
