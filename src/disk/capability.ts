import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BoxContext, Capability } from '../core/capability.js';
import type { PolicyUnit } from '../policy/chain.js';
import { replies } from '../policy/reply.js';
import { linuxDiskInventory } from '../hw/disks-linux.js';
import { simDiskInventory } from '../hw/disks-sim.js';
import type { DiskInventory } from '../hw/disks.js';
import { DiskMonitor, usedPercent } from './monitor.js';
import { configDirIdentityStore } from './identity.js';

/** The board picks the adapter: the sim board reads smartctl fixtures, a real one its disk. */
export function inventoryOf(box: Pick<BoxContext, 'board' | 'config' | 'dataDir'>): DiskInventory {
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

/** The data disk's monitor and the inventory it reads (the usage policy reads space from it too). */
export interface DiskWatch {
  /** Polls from `monitor.start()` on: the caller starts it once alerts listen, so a boot's events are mailed. */
  monitor: DiskMonitor;
  inventory: DiskInventory;
  stop(): Promise<void>;
}

/**
 * The data disk's health: polled, reported as events (mailed by alerts where they run), shown
 * in status. It runs on every box, an HA standby too (a standby's own disk may fail), so the
 * composition root starts it once, apart from the mail services that come and go with the role.
 */
export function startDiskMonitor(box: BoxContext): DiskWatch {
  const inventory = inventoryOf(box);
  const monitor = new DiskMonitor({
    inventory,
    settings: () => box.config.current.disk,
    emit: box.emit,
    clock: box.clock,
    log: box.log.child({ mod: 'disk' }),
    known: configDirIdentityStore(box.configDir, () => box.clock.now()),
  });
  // A changed pollMinutes applies from now, whether set here or received from the HA peer.
  let minutes = box.config.current.disk.pollMinutes;
  const unsubscribe = box.config.onChange((cfg) => {
    if (cfg.disk.pollMinutes === minutes) return;
    minutes = cfg.disk.pollMinutes;
    monitor.schedule();
  });
  return {
    monitor,
    inventory,
    stop: async () => {
      unsubscribe();
      await monitor.stop();
    },
  };
}

/** The mail services' part: at the highest usage level new mail is refused (only where mail is accepted). */
export function diskUsageCapability(box: BoxContext, watch: DiskWatch): Capability {
  return { policies: [usageReserveUnit(watch.inventory, () => box.config.current.disk.usageLevels, box)] };
}
