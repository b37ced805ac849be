// Starts the front panel of a board: picks the GPIO adapter (sim, or onoff on a Linux board) and
// the display (the LK LCD on its serial line, or a screen kept in memory when there is none),
// then the Panel over the one command layer. Kept out of main.ts so the composition root stays a
// list of faces and capabilities.
import type { Board } from '../hw/board.js';
import type { ConfigStore } from '../config/config.js';
import type { ControlRequest, ControlResponse } from '../commands/control.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../log/logger.js';
import { simGpioPanel } from '../hw/gpio-sim.js';
import { memoryDisplay } from '../hw/lcd-memory.js';
import { mtxorbDisplay } from '../hw/lcd-mtxorb.js';
import { serialportLine } from '../hw/serialport-line.js';
import { Panel } from './panel.js';
import type { PanelCommandDeps } from './commands.js';

export interface PanelFace extends PanelCommandDeps {
  /** The LCD's device, or null when the screen is kept in memory only. */
  lcdDevice: string | null;
}

export async function startPanelFace(deps: {
  board: Board;
  config: ConfigStore;
  run(req: ControlRequest): Promise<ControlResponse>;
  query(req: ControlRequest): Promise<ControlResponse>;
  clock: Clock;
  log: Logger;
}): Promise<PanelFace | null> {
  const { board, config, clock } = deps;
  const cfg = config.current.panel;
  if (!cfg.enabled) return null;
  const log = deps.log.child({ mod: 'panel' });
  const lcd = board.serial.lcd;
  const size = { cols: lcd?.cols ?? 20, rows: lcd?.rows ?? 4 };
  const lcdAt = cfg.lcdDevice || lcd?.device || '';
  // "pty" on the sim board names no device: the screen is then kept in memory only.
  const onLine = lcdAt !== '' && lcdAt !== 'pty';
  // LCD commands on the console's or the heartbeat's line would be typed at a login prompt or
  // break the HA link: one device, one use.
  const others: [string, string][] = [
    ['console.device', config.current.console.device || board.serial.console.device],
    ['ha.serial.device', config.current.ha.serial.device],
  ];
  const clash = onLine ? others.find(([, dev]) => dev === lcdAt) : undefined;
  if (clash) throw new Error(`panel.lcdDevice: ${lcdAt} is already the ${clash[0]}; the LCD needs its own serial line`);
  const display = onLine ? mtxorbDisplay(serialportLine(lcdAt, lcd?.baud ?? 19200, log), { ...size, log }) : memoryDisplay(size.cols, size.rows);
  const sim = board.adapter === 'sim' ? simGpioPanel(log) : null;
  // onoff is loaded only here, on a Linux board: the sim board never loads its native binding.
  // GPIO that cannot be opened costs the buttons and LEDs, not the mail service: the LCD still shows the status.
  const gpio =
    sim ??
    (await (await import('../hw/gpio-onoff.js')).onoffGpioPanel(board.gpio, log).catch((err: Error) => {
      log.error({ evt: 'panel.gpio.fail', err: err.message }, 'front-panel buttons and LEDs unavailable');
      return simGpioPanel(log);
    }));
  // The web admin (issue 16) has no config key for its port yet: ARCHITECTURE.md's 8443 on the sim board, 443 on a box.
  const panel = new Panel({ gpio, display, run: deps.run, query: deps.query, settings: () => config.current.panel, hostname: () => config.current.hostname, adminPort: board.adapter === 'sim' ? 8443 : 443, clock, log });
  await panel.start();
  log.info({ evt: 'panel.start', lcd: onLine ? lcdAt : 'memory', ...size, gpio: sim ? 'sim' : 'linux' }, 'front panel started');
  return { panel, sim, board: board.model, debounceMs: () => config.current.panel.debounceMs, lcdDevice: onLine ? lcdAt : null };
}
