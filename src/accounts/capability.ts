import type { BoxContext, Capability } from '../core/capability.js';
import { AuthPolicy } from '../policy/auth.js';
import { credentialsUnit, loginStampUnit, loginValidUnit, senderNotSuspendedUnit } from '../policy/units.js';
import { AccountStore } from './accounts.js';

export interface AccountsCapability extends Capability {
  accounts: AccountStore;
}

/** Users, aliases and logins: AUTH with its lockout, and the refusals of a suspended account. */
export async function startAccounts(box: BoxContext): Promise<AccountsCapability> {
  const { config, events, log } = box;
  // A user added or suspended reaches an HA standby before the command (or the session) goes on.
  const accounts = await AccountStore.open(box.configDir, () => box.durability.configChanged());
  const auth = new AuthPolicy(() => config.current, accounts, (ev) => events.emit(ev), log.child({ mod: 'auth' }), () => box.clock.now());
  return {
    accounts,
    policies: [credentialsUnit(auth), loginStampUnit(accounts), loginValidUnit(accounts), senderNotSuspendedUnit(accounts)],
  };
}
