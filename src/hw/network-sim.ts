import type { Clock } from '../core/clock.js';
import type { Logger } from '../log/logger.js';
import type { BoardNetwork, LanSettings } from './network.js';
import { SIM_HISTORY, readSimRecord, simBoardPath, writeSimRecord } from './sim-board.js';

const FILE = 'network.json';

/**
 * The sim board's LAN before anything was set: loopback, where the sim daemon's listeners
 * are (board/sim.json), on an interface named like no real one.
 */
export const SIM_LAN_DEFAULT: LanSettings = { interface: 'lan0', address: '127.0.0.1', netmask: '255.0.0.0', gateway: '127.0.0.254' };

interface SimNetworkDoc {
  current: LanSettings;
  /** What would have been applied to a real interface, oldest first. */
  applied: { time: string; settings: LanSettings }[];
}

/**
 * The sim board's network: nothing is applied to a real interface; the settings are kept
 * in `<configDir>/sim-board/network.json` (`current`, and the `applied` history) and each
 * apply is logged as `network.apply`.
 */
export function simBoardNetwork(configDir: string, clock: Clock, log: Logger): BoardNetwork {
  const load = async (): Promise<SimNetworkDoc> => (await readSimRecord<SimNetworkDoc>(configDir, FILE)) ?? { current: SIM_LAN_DEFAULT, applied: [] };
  return {
    async read() {
      return { ...(await load()).current };
    },
    async apply(s) {
      const doc = await load();
      const applied = [...(Array.isArray(doc.applied) ? doc.applied : []), { time: new Date(clock.now()).toISOString(), settings: s }].slice(-SIM_HISTORY);
      await writeSimRecord(configDir, FILE, { current: s, applied });
      log.info({ evt: 'network.apply', board: 'sim', ...s, file: simBoardPath(configDir, FILE) }, 'sim board: LAN settings recorded, not applied to any interface');
    },
  };
}
