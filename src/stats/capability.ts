import type { BoxContext, Capability } from '../core/capability.js';
import type { Envelope } from '../spool/spool.js';
import type { DeliveryTally } from '../delivery/outcome.js';
import { MailTraffic, type TrafficWindow } from './traffic.js';

export interface MailStatsCapability extends Capability {
  /** A message was committed over SMTP (its 250). */
  committed(env: Envelope): void;
  /** Where delivery reports each recipient's final outcome. */
  tally: DeliveryTally;
  window(): TrafficWindow;
}

/** Mail traffic per hour and per day, for `mail stats` and the dashboard's charts. */
export async function startMailStats(box: BoxContext): Promise<MailStatsCapability> {
  const { log } = box;
  const traffic = new MailTraffic({
    db: box.db,
    writer: box.durability,
    clock: box.clock,
    timezone: () => box.config.current.timezone,
    onError: (err) => log.error({ evt: 'stats.write.fail', err: err.message }, 'could not save the mail traffic counts'),
  });
  await traffic.start();
  return {
    committed: (env) => traffic.accepted(env.rcpt.length),
    tally: (outcome, recipients) => traffic.delivered(outcome === 'local' ? 'outLocal' : outcome === 'remote' ? 'outRemote' : 'failed', recipients),
    window: () => traffic.window(),
    stop: () => traffic.stop(),
  };
}
