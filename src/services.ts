import type { BoxContext, Capability, CapabilityDef } from './core/capability.js';
import type { ServiceAddress } from './hw/service-address.js';
import { buildChain } from './policy/chain.js';
import { startAccounts, type AccountsCapability } from './accounts/capability.js';
import { startSpool, type SpoolCapability } from './spool/capability.js';
import { startRelayControl } from './policy/capability.js';
import { startDelivery, type DeliveryCapability } from './delivery/capability.js';
import { startScan, type ScanCapability } from './scan/capability.js';
import { startReputation } from './reputation/capability.js';
import { startAlerts } from './alerts/capability.js';
import { startThresholds, type ThresholdsCapability } from './policy/thresholds-capability.js';
import { startSmtp, type SmtpCapability } from './smtp/capability.js';
import { diskUsageCapability, type DiskWatch } from './disk/capability.js';
import { startArchive, type ArchiveCapability } from './archive/capability.js';
import { startBackup, type BackupCapability } from './backup/capability.js';
import { startMailStats, type MailStatsCapability } from './stats/capability.js';

/** The running mail services, by capability (the command layer reaches them through here). */
export interface MailServices {
  accounts: AccountsCapability;
  spool: SpoolCapability;
  delivery: DeliveryCapability;
  scan: ScanCapability;
  archive: ArchiveCapability;
  backup: BackupCapability;
  thresholds: ThresholdsCapability;
  reputation: Capability;
  smtp: SmtpCapability;
  stats: MailStatsCapability;
  /** Capabilities added by the composition root's caller, by name. */
  extras: Map<string, Capability>;
  /** Every capability, in the order started. */
  all: Capability[];
  stop(drainMs: number): Promise<void>;
}

/**
 * Starts the mail services on this box's data: at daemon start, or when an HA standby
 * becomes active (then everything is read afresh from what replication wrote). Each
 * capability is built from those before it; the SMTP listeners come last, once every
 * policy unit is known, so no mail arrives before the services that handle it run.
 */
export async function startMailServices(box: BoxContext, o: { serviceAddress: ServiceAddress; extras: CapabilityDef[]; disk: DiskWatch }): Promise<MailServices> {
  const { log } = box;
  // First, before anything runs: a box that cannot hold the service address is not active.
  const ha = box.config.current.ha;
  const serviceAddr = ha.enabled ? ha.serviceAddress : '';
  if (serviceAddr) await o.serviceAddress.claim(serviceAddr);
  const releaseAddress = async () => {
    if (serviceAddr) await o.serviceAddress.release(serviceAddr).catch((err: Error) => log.error({ evt: 'ha.release.fail', err: err.message }, 'could not drop the service address'));
  };
  const started: Capability[] = [];
  const up = <T extends Capability>(c: T): T => (started.push(c), c);
  try {
    // First: it counts what every later one does, recovery's deliveries included.
    const stats = up(await startMailStats(box));
    const accounts = up(await startAccounts(box));
    const spool = up(await startSpool(box));
    const relay = up(startRelayControl(box, accounts.accounts));
    const delivery = up(await startDelivery(box, spool.spool, accounts.accounts, relay.isTrustedClient));
    delivery.tallyWith(stats.tally);
    const scan = up(await startScan(box, spool.spool, delivery.route, relay.isTrustedClient));
    // Mail the other box of a pair hands over goes where the scanners' verdict says, as recovered mail does.
    delivery.dispatchWith(scan.dispatch);
    // Before recovery routes anything: the archive's intake of every commit from now on.
    const archive = up(await startArchive(box, spool.spool, relay.isTrustedClient));
    // Recovery: everything committed but not fully routed is routed again.
    const pending = await spool.spool.pending();
    await delivery.resume(pending);
    if (pending.length) log.info({ evt: 'spool.recover', messages: pending.length }, 'resuming routing of committed messages');
    for (const env of pending) scan.dispatch(env, null);
    const reputation = up(startReputation(box, delivery));
    up(startAlerts(box, delivery.submitLocal));
    const thresholds = up(await startThresholds(box, accounts.accounts, delivery.runner));
    // After every owner of data runs: a restore hands their records to them.
    const backup = up(await startBackup(box, { archiveHead: () => archive.head() }));
    // The disk monitor runs on every box (main.ts); mail refused when full only matters here.
    up(diskUsageCapability(box, o.disk));
    const extras = new Map<string, Capability>();
    for (const def of o.extras) extras.set(def.name, up(await def.start(box)));
    const chain = buildChain(
      started.flatMap((c) => c.policies ?? []),
      started.flatMap((c) => (c.disconnect ? [c.disconnect] : [])),
    );
    const smtp = up(
      await startSmtp(box, {
        chain,
        spool: spool.spool,
        onCommitted: (env, body) => {
          thresholds.committed(env);
          stats.committed(env);
          scan.dispatch(env, body);
        },
      }),
    );
    return running(box, { accounts, spool, delivery, scan, archive, backup, thresholds, reputation, smtp, stats, extras, all: [...started] }, releaseAddress);
  } catch (err) {
    // Not active after all: nothing that started may keep running on a box that is not.
    await stopAll(box, started.reverse(), 0);
    await releaseAddress();
    throw err;
  }
}

/** Stops each capability in turn; one that fails is logged and the rest still stop. */
async function stopAll(box: BoxContext, order: Capability[], drainMs: number): Promise<void> {
  for (const c of order) await c.stop?.(drainMs).catch((err: Error) => box.log.error({ evt: 'services.stop.fail', err: err.message }, 'a capability failed to stop'));
}

function running(box: BoxContext, s: Omit<MailServices, 'stop'>, releaseAddress: () => Promise<void>): MailServices {
  const all = s.all;
  const unsubscribe = box.config.onChange((cfg, key) => {
    for (const c of all) c.configChanged?.(cfg, key);
  });
  box.log.info({ evt: 'services.ready', listeners: s.smtp.addresses() }, 'mail services running');
  return {
    ...s,
    async stop(drainMs) {
      unsubscribe();
      // The listeners first, then the outbound queue drains (alerts and counters of that
      // drain still work), then the rest in reverse order of start.
      await stopAll(box, [s.smtp], drainMs);
      await releaseAddress();
      await stopAll(box, [s.delivery], drainMs);
      await stopAll(box, [...all].reverse().filter((c) => c !== s.smtp && c !== s.delivery), drainMs);
      box.log.info({ evt: 'services.stopped' }, 'mail services stopped');
    },
  };
}
