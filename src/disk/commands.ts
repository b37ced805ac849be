import type { CommandSpec } from '../commands/registry.js';
import type { StatusSection } from '../commands/status.js';
import type { DiskState } from './monitor.js';

function summary(s: DiskState): string {
  if (!s.polledAt) return 'data disk: not read yet';
  if (s.error) return `data disk: could not be read (${s.error})`;
  const d = s.disk;
  if (!d || !d.present) return 'data disk: MISSING';
  const health = s.failing ? 'FAILING (SMART)' : d.smart?.passed === null ? 'SMART unknown' : 'healthy';
  const temp = d.smart?.temperatureC != null ? `, ${d.smart.temperatureC} °C${s.hot ? ' (HOT)' : ''}` : '';
  const used = s.usedPercent !== null ? `, ${s.usedPercent}% used${s.usageLevel ? ` (over ${s.usageLevel}%)` : ''}` : '';
  return `data disk: ${health}, ${d.model}${temp}${used}`;
}

function details(s: DiskState): string[] {
  const d = s.disk;
  const lines = [summary(s), `last read: ${s.polledAt ?? 'never'}`];
  if (d?.present) {
    const m = d.smart;
    lines.push(`device: ${d.device} (${d.interface}), serial ${d.serial || '?'}, ${d.sizeBytes !== null ? Math.round(d.sizeBytes / 1e9) + ' GB' : 'size unknown'}`);
    if (m) {
      const f = (label: string, v: number | null) => (v === null ? [] : [`${label}: ${v}`]);
      lines.push(
        `SMART overall health: ${m.passed === null ? 'unknown' : m.passed ? 'passed' : 'FAILED'}`,
        ...f('reallocated sectors', m.reallocatedSectors),
        ...f('pending sectors', m.pendingSectors),
        ...f('offline uncorrectable', m.offlineUncorrectable),
        ...f('power-on hours', m.powerOnHours),
        ...f('temperature °C', m.temperatureC),
        ...f('NVMe critical warning', m.nvmeCriticalWarning),
        ...f('NVMe percentage used', m.nvmePercentageUsed),
      );
    }
  } else if (d) lines.push(`smartctl: ${d.messages.join('; ') || 'no device'}`);
  if (s.space) lines.push(`space: ${Math.round(s.space.availableBytes / 1048576)} MiB free of ${Math.round(s.space.totalBytes / 1048576)} MiB`);
  return lines;
}

/** `disk status` and `disk poll` (the udev rule's hot-plug poke), on the monitor; an HA standby answers them too. */
export function diskCommands(deps: () => { status(): DiskState; poll(): Promise<DiskState> }): CommandSpec[] {
  return [
    {
      name: 'disk status',
      summary: 'the data disk: SMART health, sectors, temperature, space',
      standby: true,
      run: async () => {
        const s = deps().status();
        return { text: details(s).join('\n'), json: s };
      },
    },
    {
      name: 'disk poll',
      summary: 'read the data disk now (the udev rule runs this at hot-plug)',
      standby: true,
      run: async () => {
        const s = await deps().poll();
        return { text: details(s).join('\n'), json: s };
      },
    },
  ];
}

/** The one line of `mlsd status`, on an HA standby as well (its own disk). */
export function diskStatus(deps: () => { status(): DiskState }): StatusSection {
  return () => {
    const s = deps().status();
    return { json: { disk: { summary: summary(s), usedPercent: s.usedPercent, failing: s.failing, present: s.disk?.present ?? null } }, lines: [summary(s)] };
  };
}
