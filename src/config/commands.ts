import type { CommandSpec } from '../commands/registry.js';
import { getKey, type ConfigStore } from './config.js';
import { needsRestart } from './restart.js';

/** Secrets (the smarthost password) are never printed back. */
function redact(v: unknown, key = ''): unknown {
  if (/password$/i.test(key)) return typeof v === 'string' && v !== '' ? '********' : v;
  if (Array.isArray(v)) return v.map((x) => redact(x));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redact(x, k)]));
  return v;
}

/** `config get/set`: the config document of record, one dotted key at a time. */
export function configCommands(deps: () => ConfigStore): CommandSpec[] {
  return [
    {
      name: 'config get',
      summary: 'show a config key (secrets masked)',
      args: [{ name: 'KEY', required: true }],
      standby: false,
      run: (input) => {
        const key = input.arg('KEY');
        const v = redact(getKey(deps().current, key), key.split('.').pop());
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
          json: { key, value: redact(value, key.split('.').pop()), restartNeeded: restart },
        };
      },
    },
  ];
}
