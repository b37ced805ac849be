import type { Clock } from '../core/clock.js';
import type { Logger } from '../log/logger.js';
import type { Power, PowerAction } from './power.js';
import { SIM_HISTORY, readSimRecord, simBoardPath, writeSimRecord } from './sim-board.js';

const FILE = 'power.json';

interface SimPowerDoc {
  /** The reboots and shutdowns asked for, oldest first. */
  requests: { time: string; action: PowerAction }[];
}

/**
 * The sim board's power: a request is recorded in `<configDir>/sim-board/power.json` and
 * logged as `power.request`, and the daemon goes on running (a test, or a person trying
 * the panel, keeps the box it is talking to).
 */
export function simPower(configDir: string, clock: Clock, log: Logger): Power {
  const record = async (action: PowerAction) => {
    const doc = (await readSimRecord<SimPowerDoc>(configDir, FILE)) ?? { requests: [] };
    const requests = [...(Array.isArray(doc.requests) ? doc.requests : []), { time: new Date(clock.now()).toISOString(), action }].slice(-SIM_HISTORY);
    await writeSimRecord(configDir, FILE, { requests });
    log.warn({ evt: 'power.request', board: 'sim', action, file: simBoardPath(configDir, FILE) }, `sim board: ${action} recorded; the daemon keeps running`);
  };
  return { reboot: () => record('reboot'), shutdown: () => record('shutdown') };
}
