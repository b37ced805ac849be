import type { CommandSpec } from '../commands/registry.js';
import type { EventLog } from './events.js';

const DEFAULT_LIMIT = 200;
const MAX_LIMIT = 1000;

/** `events list [--limit N]`: the box's event log, newest first; a standby keeps its own (link faults, takeovers). */
export function eventCommands(deps: () => EventLog): CommandSpec[] {
  return [
    {
      name: 'events list',
      summary: `the latest events, newest first (${DEFAULT_LIMIT}, or --limit N up to ${MAX_LIMIT})`,
      options: [{ name: 'limit', type: 'string', value: 'N' }],
      standby: true,
      run: async (input) => {
        const raw = input.string('limit');
        // The dashboard asks for a few; a typo must not silently list 200.
        if (raw !== undefined && !/^\d{1,4}$/.test(raw)) throw new Error(`events list: --limit must be a whole number from 1 to ${MAX_LIMIT}, not "${raw}"`);
        const limit = raw === undefined ? DEFAULT_LIMIT : Number(raw);
        if (limit < 1 || limit > MAX_LIMIT) throw new Error(`events list: --limit must be a whole number from 1 to ${MAX_LIMIT}, not ${limit}`);
        const evs = await deps().list(limit);
        const text = evs.length ? evs.map((e) => `${e.time} ${e.severity.padEnd(8)} ${e.kind.padEnd(16)} ${e.text}`).join('\n') : 'no events';
        return { text, json: evs };
      },
    },
  ];
}
