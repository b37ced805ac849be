import type { BoxContext } from './core/capability.js';
import type { CommandRegistry } from './commands/registry.js';
import type { StatusReport } from './commands/status.js';
import type { MailServices } from './services.js';
import { accountCommands, accountStatus } from './accounts/commands.js';
import { deliveryCommands, deliveryStatus } from './delivery/commands.js';
import { quarantineCommands } from './scan/commands.js';
import { smtpStatus } from './smtp/commands.js';
import { archiveCommands } from './archive/commands.js';
import { holdId, SEARCH_TOOLS } from './archive/capability.js';
import { backupCommands } from './backup/commands.js';
import { mailStatsCommands } from './stats/commands.js';

/**
 * The commands and status sections of the mail services, registered once: they reach
 * whichever services run now (rebuilt at each HA promotion). On a standby the registry
 * answers them itself, so `live()` is reached only where services run.
 */
export function registerMailCommands(box: BoxContext, registry: CommandRegistry, status: StatusReport, live: () => MailServices): void {
  const { config } = box;
  const accounts = () => ({ accounts: live().accounts.accounts, domains: () => config.current.domains, unlock: (a: string) => live().thresholds.unlock(a), suspend: (a: string, why: string) => live().thresholds.suspend(a, why) });
  status.add('smtp', smtpStatus(() => live().smtp));
  status.add('accounts', accountStatus(accounts));
  status.add('delivery', deliveryStatus(() => ({
    spoolPending: async () => (await live().spool.spool.pending()).length,
    queueStats: () => live().delivery.runner.stats(),
    routing: () => config.current.routing,
  })));
  status.add('thresholds', (b) => (b.serving ? (live().thresholds.status?.(b) ?? null) : null));
  status.add('reputation', (b) => (b.serving ? (live().reputation.status?.(b) ?? null) : null));
  status.add('archive', (b) => (b.serving ? (live().archive.status?.(b) ?? null) : null));
  registry.register('archive', archiveCommands(() => live().archive, SEARCH_TOOLS, holdId));
  status.add('backup', (b) => (b.serving ? (live().backup.status?.(b) ?? null) : null));
  registry.register('backup', backupCommands({ backup: () => live().backup, config: () => config, configDir: box.configDir, now: () => box.clock.now() }));
  registry.register('accounts', accountCommands(accounts));
  registry.register('delivery', deliveryCommands(() => ({
    queue: live().delivery.runner,
    dkimRecord: (domain: string) => {
      if (!config.current.domains.includes(domain)) throw new Error(`dkim: ${domain} is not a local domain (domains: ${config.current.domains.join(', ')})`);
      return live().delivery.dkim.dnsRecord(domain, config.current.dkim.selector);
    },
  })));
  registry.register('stats', mailStatsCommands(() => live().stats));
  registry.register('scan', quarantineCommands(() => {
    const scan = live().scan;
    return {
      list: () => scan.quarantine.list(),
      show: async (id: string) => ({ record: (await scan.quarantine.get(id))!, content: await scan.quarantine.content(id) }),
      release: (id: string) => scan.release(id),
      delete: (id: string) => scan.remove(id),
    };
  }));
}
