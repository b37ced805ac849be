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

/** The running mail services, by capability (the command layer reaches them through here). */
export interface MailServices {
  accounts: AccountsCapability;
  spool: SpoolCapability;
  delivery: DeliveryCapability;
  scan: ScanCapability;
  thresholds: ThresholdsCapability;
  reputation: Capability;
  smtp: SmtpCapability;
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
export async function startMailServices(box: BoxContext, o: { serviceAddress: ServiceAddress; extras: CapabilityDef[] }): Promise<MailServices> {
  const accounts = await startAccounts(box);
  const spool = await startSpool(box);
  const relay = startRelayControl(box, accounts.accounts);
  const delivery = await startDelivery(box, spool.spool, accounts.accounts);
  const scan = await startScan(box, spool.spool, delivery.route, relay.isTrustedClient);
  // Recovery: everything committed but not fully routed is routed again.
  const pending = await spool.spool.pending();
  await delivery.resume(pending);
  if (pending.length) box.log.info({ evt: 'spool.recover', messages: pending.length }, 'resuming routing of committed messages');
  for (const env of pending) scan.dispatch(env, null);
  const reputation = startReputation(box, delivery);
  const alerts = startAlerts(box, delivery.submitLocal);
  const thresholds = await startThresholds(box, accounts.accounts, delivery.runner);
  const extras = new Map<string, Capability>();
  for (const def of o.extras) extras.set(def.name, await def.start(box));
  const before: Capability[] = [accounts, spool, relay, delivery, scan, reputation, alerts, thresholds, ...extras.values()];
  const chain = buildChain(
    before.flatMap((c) => c.policies ?? []),
    before.flatMap((c) => (c.disconnect ? [c.disconnect] : [])),
  );
  const smtp = await startSmtp(box, {
    chain,
    spool: spool.spool,
    onCommitted: (env, body) => {
      thresholds.committed(env);
      scan.dispatch(env, body);
    },
    serviceAddress: o.serviceAddress,
  });
  const all = [...before, smtp];
  const unsubscribe = box.config.onChange((cfg, key) => {
    for (const c of all) c.configChanged?.(cfg, key);
  });
  box.log.info({ evt: 'services.ready', listeners: smtp.addresses() }, 'mail services running');
  return {
    accounts,
    spool,
    delivery,
    scan,
    thresholds,
    reputation,
    smtp,
    extras,
    all,
    async stop(drainMs) {
      unsubscribe();
      // Listeners first, then the rest in reverse order of start.
      for (const c of [...all].reverse()) await c.stop?.(drainMs);
      box.log.info({ evt: 'services.stopped' }, 'mail services stopped');
    },
  };
}
