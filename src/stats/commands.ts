import type { CommandSpec } from '../commands/registry.js';
import type { TrafficWindow } from './traffic.js';

/** `mail stats`: the numbers behind the dashboard's traffic charts. */
export function mailStatsCommands(deps: () => { window(): TrafficWindow }): CommandSpec[] {
  return [
    {
      name: 'mail stats',
      summary: 'mail in and out per hour (last 24 h) and per day (last 30 days)',
      // The counts are kept by the box that serves mail.
      standby: false,
      run: () => {
        const w = deps().window();
        const sum = (rows: { in: number; out: number; failed: number }[]) => rows.reduce((a, r) => ({ in: a.in + r.in, out: a.out + r.out, failed: a.failed + r.failed }), { in: 0, out: 0, failed: 0 });
        const h = sum(w.hours);
        const d = sum(w.days);
        const text = [
          `last 24 hours: ${h.in} in, ${h.out} out, ${h.failed} failed`,
          `last 30 days (${w.timezone}): ${d.in} in, ${d.out} out, ${d.failed} failed`,
          `${'hour (UTC)'.padEnd(16)}  ${'in'.padStart(6)} ${'out'.padStart(6)} ${'failed'.padStart(7)}`,
          ...w.hours.map((r) => `${r.start.slice(0, 16).replace('T', ' ')}  ${String(r.in).padStart(6)} ${String(r.out).padStart(6)} ${String(r.failed).padStart(7)}`),
        ].join('\n');
        return { text, json: w };
      },
    },
  ];
}
