// The `console` face: a login prompt on the serial console, then the CLI's commands. It runs on
// an HA standby too (where only standby commands answer), so it is started by the composition
// root beside the control socket, not with the mail services.
import type { Board } from '../hw/board.js';
import type { SerialLine } from '../hw/serial.js';
import type { Config } from '../config/schema.js';
import { ConsoleSession, type ConsoleDeps } from './session.js';

/** The device the console uses: the config's, else the board's; null for none ("pty" on the sim board means none). */
export function consoleDevice(cfg: Config['console'], board: Board): { device: string; baud: number } | null {
  if (!cfg.enabled) return null;
  const device = cfg.device || board.serial.console.device;
  if (!device || device === 'pty') return null;
  return { device, baud: cfg.baud ?? board.serial.console.baud };
}

export interface ConsoleFace {
  stop(): Promise<void>;
}

const WRITE_TIMEOUT_MS = 5000;

export function startConsole(line: SerialLine, deps: Omit<ConsoleDeps, 'write' | 'device'>): ConsoleFace {
  const session = new ConsoleSession({
    ...deps,
    device: line.device,
    // A terminal that does not drain is the line's fault to report (serial.writeTimeout); the
    // console just goes on.
    write: (text) => void line.write(text, WRITE_TIMEOUT_MS).catch(() => undefined),
  });
  line.onData((chunk) => session.feed(chunk));
  line.onState((open) => (open ? session.begin() : session.hangUp()));
  line.start();
  deps.log.info({ evt: 'console.start', device: line.device });
  return {
    async stop() {
      session.close();
      await line.stop();
    },
  };
}
