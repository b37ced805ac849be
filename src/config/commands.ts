import type { CommandSpec } from '../commands/registry.js';
import { getKey, type ConfigStore } from './config.js';
import { needsRestart } from './restart.js';
import { maskSecrets } from './secrets.js';

/** `config get/set`: the config document of record, one dotted key at a time. Secrets are never printed back. */
export function configCommands(deps: () => ConfigStore): CommandSpec[] {
  return [
    {
      name: 'config get',
      summary: 'show a config key, or the whole document without one (secrets masked)',
      args: [{ name: 'KEY', required: false }],
      standby: false,
      run: (input) => {
        const key = input.arg('KEY');
        const v = maskSecrets(key, getKey(deps().current, key));
        return { text: JSON.stringify(v, null, 2), json: v };
      },
    },
    {
      name: 'config set',
      summary: 'set a config key to a JSON value; it is checked, saved, and applied live unless it needs a restart',
      args: [
        { name: 'KEY', required: true },
        { name: 'JSON-VALUE', required: true },
      ],
      standby: false,
      run: async (input) => {
        const key = input.arg('KEY');
        let value: unknown;
        try {
          value = JSON.parse(input.arg('JSON-VALUE'));
        } catch {
          throw new Error(`${key}: value is not JSON (strings need quotes: '"text"')`);
        }
        await deps().set(key, value);
        const restart = needsRestart(key);
        return {
          text: `${key} set${restart ? ' (takes effect at the next start)' : ''}`,
          json: { key, value: maskSecrets(key, getKey(deps().current, key)), restartNeeded: restart },
        };
      },
    },
  ];
}
