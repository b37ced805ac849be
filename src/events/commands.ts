import type { CommandSpec } from '../commands/registry.js';
import type { EventLog } from './events.js';

/** `events list`: the box's event log; a standby keeps its own (link faults, takeovers). */
export function eventCommands(deps: () => EventLog): CommandSpec[] {
  return [
    {
      name: 'events list',
      summary: 'the latest 200 events',
      standby: true,
      run: async () => {
        const evs = await deps().list(200);
        const text = evs.length ? evs.map((e) => `${e.time} ${e.severity.padEnd(8)} ${e.kind.padEnd(16)} ${e.text}`).join('\n') : 'no events';
        return { text, json: evs };
      },
    },
  ];
}
