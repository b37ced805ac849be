import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BoxContext, Capability } from '../core/capability.js';
import type { PolicyUnit } from '../policy/chain.js';
import { replies } from '../policy/reply.js';
import { linuxDiskInventory } from '../hw/disks-linux.js';
import { simDiskInventory } from '../hw/disks-sim.js';
import type { DiskInventory } from '../hw/disks.js';
import { DiskMonitor, usedPercent } from './monitor.js';
import { diskStatus } from './commands.js';

export interface DiskCapability extends Capability {
  monitor: DiskMonitor;
}

/** The board picks the adapter: the sim board reads smartctl fixtures, a real one its disk. */
function inventoryOf(box: BoxContext): DiskInventory {
  const cfg = () => box.config.current.disk;
  if (box.board.adapter === 'linux') {
    const boardDisk = (box.board as { dataDisk?: { device?: unknown } }).dataDisk;
    return linuxDiskInventory(() => cfg().device || (typeof boardDisk?.device === 'string' ? boardDisk.device : '/dev/sda'), box.dataDir);
  }
  // A relative folder is inside the package (test/fixtures/...), wherever the daemon was started.
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  return simDiskInventory(() => (isAbsolute(cfg().simFixtures) ? cfg().simFixtures : resolve(root, cfg().simFixtures)), box.dataDir);
}

/**
 * At the highest usage level no new message is begun (452 4.3.1, the client retries), so
 * mail already accepted still has the room left to be delivered. Space is read at each MAIL,
 * not from the last poll: a disk filling between polls is refused at once.
 */
function usageReserveUnit(inventory: DiskInventory, levels: () => number[], box: BoxContext): PolicyUnit {
  return {
    name: 'disk.usageReserve',
    stage: 'mail',
    check: async () => {
      try {
        const space = await inventory.space();
        return usedPercent(space) >= Math.max(...levels()) ? { refuse: replies.storageFull } : 'continue';
      } catch (err) {
        box.log.error({ evt: 'disk.statfs', err: (err as Error).message }, 'cannot read data disk space');
        return { refuse: replies.internalError };
      }
    },
  };
}

/** The data disk's health: polled, reported as events (mailed by alerts), shown in status. */
export function startDisk(box: BoxContext): DiskCapability {
  const inventory = inventoryOf(box);
  const monitor = new DiskMonitor({
    inventory,
    settings: () => box.config.current.disk,
    emit: box.emit,
    clock: box.clock,
    log: box.log.child({ mod: 'disk' }),
  });
  monitor.start();
  return {
    monitor,
    policies: [usageReserveUnit(inventory, () => box.config.current.disk.usageLevels, box)],
    status: diskStatus(() => monitor),
    configChanged: (_cfg, key) => {
      if (key === 'disk.pollMinutes') monitor.schedule();
    },
    stop: async () => monitor.stop(),
  };
}
