import type { BoxContext, Capability } from '../core/capability.js';
import { Alerter } from './alerts.js';

/** Administrator alerts: every event worth one is mailed (through our own spool), de-duplicated. */
export function startAlerts(box: BoxContext, submitLocal: (from: string, to: string[], message: Buffer, listener: string) => Promise<string>): Capability {
  const { config } = box;
  const alerter = new Alerter({
    settings: () => ({ enabled: config.current.thresholds.alert, adminEmails: config.current.alerts.adminEmails, periodMinutes: config.current.alerts.periodMinutes }),
    hostname: () => config.current.hostname,
    log: box.log.child({ mod: 'alerts' }),
    sink: async (from, to, message) => void (await submitLocal(from, to, message, 'alerts')),
  });
  const unsubscribe = box.events.subscribe((ev) => void alerter.handle(ev));
  return { stop: async () => unsubscribe() };
}
