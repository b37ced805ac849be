import type { BoxContext, Capability } from '../core/capability.js';
import { diskReserveUnit } from '../policy/units.js';
import { Spool } from './spool.js';

export interface SpoolCapability extends Capability {
  spool: Spool;
}

/** The durable spool: where a message becomes ours before the 250, and the disk reserve that guards it. */
export async function startSpool(box: BoxContext): Promise<SpoolCapability> {
  const { config, log } = box;
  const spool = new Spool(box.dataDir, box.db, box.durability, box.dirs, log.child({ mod: 'spool' }), () => config.current.spool.minFreeBytes);
  await spool.init();
  return {
    spool,
    policies: [diskReserveUnit(() => spool.hasRoom(), log.child({ mod: 'smtp' }))],
  };
}
