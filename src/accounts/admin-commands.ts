import type { CommandSpec } from '../commands/registry.js';
import type { EventInput } from '../events/events.js';
import { setAdminPassword } from './admin.js';
import { generatePassword } from './password.js';

/** Long enough to guess for no one, short enough for one line of the 20-column LCD with room to spare. */
const RESET_PASSWORD_LENGTH = 12;

/** `admin passwd` and `admin reset`: the administrator password of the web admin and the serial console. */
export function adminCommands(configDir: string, emit: (ev: EventInput) => void): CommandSpec[] {
  return [
    {
      name: 'admin passwd',
      summary: 'set the administrator password (web admin and serial console), read from standard input',
      stdin: true,
      // admin.json is replicated from the active box: one set on a standby would be overwritten.
      standby: false,
      run: async (input) => {
        // A password arrives on stdin with the line end the terminal or the pipe added.
        await setAdminPassword(configDir, (input.stdin ?? '').replace(/\r?\n$/, ''));
        return { text: 'administrator password changed; the first-start password file is deleted' };
      },
    },
    {
      name: 'admin reset',
      summary: 'set a new random administrator password and show it (for the front panel: a forgotten password)',
      // As admin passwd: admin.json comes from the active box.
      standby: false,
      run: async () => {
        const password = generatePassword(RESET_PASSWORD_LENGTH);
        await setAdminPassword(configDir, password);
        // The event says that it happened, never what the password is: the log is read by more people than the panel.
        emit({ kind: 'admin.reset', severity: 'warning', text: 'administrator password reset to a new random one' });
        return { text: `new admin password: ${password}`, json: { password } };
      },
    },
  ];
}
