import type { CommandSpec } from '../commands/registry.js';
import { setAdminPassword } from './admin.js';

/** `admin passwd`: the administrator password of the web admin and the serial console. */
export function adminCommands(configDir: string): CommandSpec[] {
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
  ];
}
