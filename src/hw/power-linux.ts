import { execFile } from 'node:child_process';
import type { Logger } from '../log/logger.js';
import type { Power, PowerAction } from './power.js';

/**
 * A Linux board's power through systemd: `systemctl reboot|poweroff` queues the job and
 * returns, and systemd then stops mlsd like any other service (SIGTERM, the HA hand-over
 * of `stop()`), so the command's answer still reaches the panel or the console. Never run
 * in this repository's tests.
 */
export function linuxPower(log: Logger): Power {
  const act = (action: PowerAction, verb: string) =>
    new Promise<void>((resolve, reject) => {
      log.warn({ evt: 'power.request', board: 'linux', action }, `systemctl ${verb}`);
      execFile('systemctl', [verb], { timeout: 15_000 }, (err, _out, stderr) => (err ? reject(new Error(`systemctl ${verb}: ${stderr.trim() || err.message}`)) : resolve()));
    });
  return { reboot: () => act('reboot', 'reboot'), shutdown: () => act('shutdown', 'poweroff') };
}
