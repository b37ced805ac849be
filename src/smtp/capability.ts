import type { Config } from '../config/schema.js';
import type { BoxContext, Capability } from '../core/capability.js';
import type { Timer } from '../core/clock.js';
import type { PolicyChain } from '../policy/chain.js';
import type { Envelope, Spool } from '../spool/spool.js';
import { SmtpService } from './server.js';
import { loadOrCreateTls } from './tls.js';
import type { SmtpStatusSource } from './commands.js';

export interface SmtpCapability extends Capability, SmtpStatusSource {}

/**
 * The listeners. Under HA they bind the service address, which only the active box holds
 * (claimed before the mail services start); a bind that fails because the other box still
 * has it (both active in a partition, before one steps down) is retried.
 */
export async function startSmtp(
  box: BoxContext,
  o: { chain: PolicyChain; spool: Spool; onCommitted: (env: Envelope, body: Buffer[] | null) => void },
): Promise<SmtpCapability> {
  const { config, log, clock } = box;
  const ha = config.current.ha;
  const serviceAddr = ha.enabled ? ha.serviceAddress : '';
  const tls = await loadOrCreateTls(box.configDir, config.current.hostname, log);
  const smtpConfig = (): Config => {
    const cfg = config.current;
    return serviceAddr ? { ...cfg, smtp: { ...cfg.smtp, listeners: cfg.smtp.listeners.map((l) => ({ ...l, host: serviceAddr })) } } : cfg;
  };
  const smtp = new SmtpService({ config: smtpConfig, chain: o.chain, spool: o.spool, onCommitted: o.onCommitted, tls, log: log.child({ mod: 'smtp' }), clock, emit: box.emit });
  let bindTimer: Timer | null = null;
  let bindWarned = false;
  let stopped = false;
  const bind = async (): Promise<void> => {
    bindTimer = null;
    try {
      await smtp.start();
      if (bindWarned) log.info({ evt: 'smtp.bind.done', listeners: smtp.addresses() }, 'service address bound');
    } catch (err) {
      await smtp.stop();
      if (!ha.enabled) throw err;
      if (!bindWarned) log.warn({ evt: 'smtp.bind.retry', err: (err as Error).message }, 'cannot bind the service address yet; retrying');
      bindWarned = true;
      if (!stopped) bindTimer = clock.setTimeout(() => void bind(), 250);
    }
  };
  await bind();
  return {
    addresses: () => smtp.addresses(),
    get sessionsOpen() {
      return smtp.sessionsOpen;
    },
    get dataInFlight() {
      return smtp.dataInFlight;
    },
    configChanged: () => smtp.applyConfig(smtpConfig()),
    async stop() {
      stopped = true;
      clock.clearTimeout(bindTimer);
      await smtp.stop();
    },
  };
}
