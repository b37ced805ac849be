import type { BoxContext, Capability } from '../core/capability.js';
import type { AccountStore } from '../accounts/accounts.js';
import type { QueueRunner } from '../delivery/runner.js';
import type { Envelope } from '../spool/spool.js';
import { ThresholdStore } from '../store/counters.js';
import { DAY_MS } from '../core/clock.js';
import { normalizeAddress } from './address.js';
import { ThresholdPolicy, type NearLimit } from './thresholds.js';
import { connectionThresholdUnit, messageThresholdUnit, newRecipientThresholdUnit, recipientThresholdUnit } from './units.js';

export interface ThresholdsCapability extends Capability {
  /** A message was committed (its 250): it counts now. */
  committed(env: Envelope): void;
  /** Lifts a suspension and releases the account's held mail; returns how many messages. */
  unlock(address: string): Promise<number>;
  /** The administrator suspends an account by hand (`mlsd user suspend`); false when it already was. */
  suspend(address: string, reason: string): Promise<boolean>;
}

/**
 * Mail control thresholds, and the stop of a compromised account: at its limit an account
 * is suspended from sending, its queued mail held, and the administrators alerted.
 */
export async function startThresholds(box: BoxContext, accounts: AccountStore, runner: Pick<QueueRunner, 'hold'>): Promise<ThresholdsCapability> {
  const { config, events, log, clock } = box;
  const current = () => config.current;
  const store = new ThresholdStore(box.db, box.durability, (err) => log.error({ evt: 'counters.write', err: err.message }, 'could not save counters'));
  const thresholds = new ThresholdPolicy(current, box.emit, store);
  thresholds.restore(await store.load());
  // The known-recipient store is pruned by age: at start, then daily.
  const prune = () =>
    store
      .pruneSent(clock.now() - current().thresholds.newRecipientMemoryDays * DAY_MS, clock.now())
      .then((r) => log.info({ evt: 'thresholds.seen.prune', ...r, days: current().thresholds.newRecipientMemoryDays }, 'forgot recipients not written to for a while'))
      .catch((err: Error) => log.error({ evt: 'thresholds.seen.prune.fail', err: err.message }, 'could not prune known recipients'));
  let pruning = prune();
  const pruneTimer = clock.setInterval(() => void (pruning = prune()), DAY_MS).unref();
  // Concurrent sessions of one account can trip its limit together: suspend it once.
  const suspending = new Set<string>();
  /** Suspends, holds the account's queued mail and records the event; false when it already was. */
  const suspendAccount = async (login: string, reason: string, evidence: Record<string, string | number>, limit?: string): Promise<boolean> => {
    if (suspending.has(login) || accounts.suspension(login)) return false;
    suspending.add(login);
    try {
      if (!(await accounts.suspend(login, reason, evidence))) return false;
      const held = await runner.hold(login, true);
      await events.emit({
        kind: 'account.suspended',
        severity: 'critical',
        account: login,
        ...(limit ? { limit } : {}),
        text: `${login} suspended from sending: ${reason}; ${held} queued message(s) held`,
        data: { ...evidence, heldMessages: held },
      });
      return true;
    } finally {
      suspending.delete(login);
    }
  };
  thresholds.onSuspend((login, evidence) => {
    const refused = evidence.refusedAttempts > 1 ? `, ${evidence.refusedAttempts} more refused` : '';
    const reason = `${evidence.used} ${evidence.limitName === 'thresholds.perAccountNewRecipientsPerDay' ? 'new recipients' : 'messages'} today${refused}, limit ${evidence.limit} (${evidence.limitName})`;
    const data = { ...evidence, clientIps: evidence.clientIps.join(', '), sampleSubjects: evidence.sampleSubjects.join(' | ') };
    suspendAccount(login, reason, data, evidence.limitName).catch((err: Error) => log.error({ evt: 'suspend.fail', login, err: err.message }, 'could not suspend account'));
  });
  return {
    policies: [connectionThresholdUnit(thresholds), messageThresholdUnit(thresholds), recipientThresholdUnit(thresholds), newRecipientThresholdUnit(current, thresholds, store)],
    disconnect: (facts) => thresholds.disconnect(facts),
    committed: (env) => {
      thresholds.committed({ clientIp: env.clientIp, login: env.login, listener: env.listener, tls: false }, env.subject);
      if (env.login && current().thresholds.perAccountNewRecipientsPerDay > 0) {
        store.rememberSent(env.login, env.rcpt, clock.now()).catch((err: Error) => log.error({ evt: 'counters.write', err: err.message }, 'could not remember recipients'));
      }
    },
    async suspend(address, reason) {
      const login = normalizeAddress(address) ?? address;
      if (!accounts.user(login)) throw new Error(`${address}: no such user`);
      return suspendAccount(login, reason, { by: 'administrator' });
    },
    async unlock(address) {
      await accounts.unlock(address);
      const login = normalizeAddress(address) ?? address;
      const released = await runner.hold(login, false);
      await events.emit({ kind: 'account.unlocked', severity: 'info', account: login, text: `${login} may send again; ${released} held message(s) released` });
      return released;
    },
    status: ({ serving }) => {
      if (!serving) return null;
      const near = thresholds.nearLimits();
      return { json: { thresholds: { nearLimit: near } }, lines: [nearLimitText(near)] };
    },
    configChanged: () => thresholds.reload(),
    stop: () => {
      clock.clearInterval(pruneTimer);
      // The database closes after this: a prune under way finishes first.
      return pruning.then(() => store.close());
    },
  };
}

/** One status line: the counters closest to their limits. */
function nearLimitText(near: NearLimit[]): string {
  if (near.length === 0) return 'thresholds: no counter at half its limit or more';
  return `thresholds near their limit: ${near.map((n) => `${n.ip ?? n.account} ${n.count}/${n.max} (${n.limit})`).join('; ')}`;
}
