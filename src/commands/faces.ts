// What `make run` prints once the daemon is ready on the sim board: where each face of the box is
// reached (SMTP listeners, the CLI, the serial console, the front panel, the web admin), as
// commands a person can paste.
import { relative } from 'node:path';
import type { Config } from '../config/schema.js';

export interface FacesInput {
  configDir: string;
  listeners: Config['smtp']['listeners'];
  /** The console's device, or null when it has none. */
  console: string | null;
  panel: { lcdDevice: string | null } | null;
  /** The web admin's URL, or null when it is off. */
  admin: string | null;
}

export function facesText(f: FacesInput, cliPath = process.argv[1] ?? 'dist/src/cli.js', cwd = process.cwd()): string {
  const cli = `node ${relative(cwd, cliPath) || cliPath} --config-dir ${relative(cwd, f.configDir) || '.'}`;
  const tls = (l: FacesInput['listeners'][number]) => (l.implicitTls ? 'implicit TLS' : l.starttls ? 'STARTTLS' : 'plain') + (l.authRequired ? ', AUTH required' : '');
  const lines = [
    'mlsd: the faces of this box',
    ...f.listeners.map((l) => `  SMTP ${l.name.padEnd(11)} ${l.host}:${l.port} (${tls(l)})`),
    `  CLI              ${cli} status   (--help: every command)`,
    `  serial console   ${f.console ?? "none (set console.device to one end of a socat pty pair, restart, and use screen on the other)"}`,
  ];
  if (f.panel) {
    lines.push(`  LCD              ${cli} panel screen   (LEDs: panel leds)`);
    lines.push(`  buttons          ${cli} panel press up|down|enter|esc`);
    if (f.panel.lcdDevice) lines.push(`  LCD line         ${f.panel.lcdDevice} (Matrix Orbital LK commands)`);
  } else lines.push('  front panel      off (panel.enabled is false)');
  // Where the first password is was said once already, by the notice that made it.
  lines.push(`  web admin        ${f.admin ? `${f.admin}   (user admin)` : 'off (admin.enabled is false)'}`);
  return lines.join('\n') + '\n';
}
