import type { EventInput } from '../events/events.js';
import type { DiskVerdict } from './marker.js';

/** What the data disk's marker said at start, as events (alerts mail the critical ones). */
export function announceDiskVerdict(v: DiskVerdict, emit: (ev: EventInput) => void): void {
  const m = (d: { boxId: string; serial: string; generation: number }) => ({ boxId: d.boxId, serial: d.serial, generation: d.generation });
  switch (v.kind) {
    case 'swapped':
      emit({ kind: 'disk.swapped', severity: 'warning', text: `a blank data disk replaced disk ${v.was.generation} (serial ${v.was.serial || '?'}); mail is accepted at once and every mailbox is restored from the newest backup`, data: { was: m(v.was), now: m(v.marker) } });
      return;
    case 'notBlank':
      emit({ kind: 'disk.unknown', severity: 'critical', text: `the data disk holds data but no marker of this box (it replaced disk ${v.was.generation}); nothing is restored onto it by itself: check it, then run \`mlsd restore start --from TARGET\``, data: { was: m(v.was) } });
      return;
    case 'foreign':
      emit({ kind: 'disk.foreign', severity: 'critical', text: `the data disk belongs to another box (${v.found.boxId.slice(0, 8)}…); nothing is restored onto it by itself`, data: { found: m(v.found) } });
      return;
    case 'older':
      emit({ kind: 'disk.older', severity: 'warning', text: `an earlier data disk of this box (disk ${v.found.generation}) is back in place of disk ${v.was.generation}; it is used as it is, and no restore is made onto it`, data: { found: m(v.found), was: m(v.was) } });
      return;
    case 'noDisk':
      emit({ kind: 'disk.absent', severity: 'critical', text: `${v.why}: the data disk is not checked, marked or restored until it is back` });
      return;
    default:
  }
}
