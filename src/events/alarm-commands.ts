import type { CommandSpec } from '../commands/registry.js';
import type { EventInput } from './events.js';
import type { Alarms } from './alarms.js';

/** `alarm list|ack`: this box's unacknowledged critical events; on a standby too (its link faults are its own). */
export function alarmCommands(alarms: () => Alarms, emit: (ev: EventInput) => void): CommandSpec[] {
  return [
    {
      name: 'alarm list',
      summary: 'critical events not acknowledged yet, newest first',
      standby: true,
      run: async () => {
        const list = await alarms().unacknowledged();
        const text = list.length ? list.map((e) => `${e.id} ${e.time} ${e.kind} ${e.text}`).join('\n') : 'no alarms';
        return { text, json: list };
      },
    },
    {
      name: 'alarm ack',
      summary: 'acknowledge one alarm by its id, or without an id every alarm up to now',
      args: [{ name: 'ID', required: false }],
      standby: true,
      run: async (input) => {
        const id = input.arg('ID') || undefined;
        const n = await alarms().acknowledge(id);
        if (n > 0) emit({ kind: 'alarm.acknowledged', severity: 'info', text: id ? `alarm ${id} acknowledged` : `${n} alarm${n === 1 ? '' : 's'} acknowledged`, data: { count: n, ...(id ? { id } : {}) } });
        return { text: n === 0 ? (id ? `alarm ${id} was already acknowledged` : 'no alarms to acknowledge') : `${n} alarm${n === 1 ? '' : 's'} acknowledged`, json: { acknowledged: n } };
      },
    },
  ];
}
