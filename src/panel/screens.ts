// The status screens the LCD cycles through while nobody uses the buttons: pure functions of
// what the panel knows, sized to the display the board has (20x4 on most, 16x2 on some).
import type { PanelFacts } from './facts.js';
import { row, wrap } from './text.js';

export type Screen = string[];

/** Every status screen for `f`, in cycle order; each at most `rows` rows of at most `cols` characters. */
export function statusScreens(f: PanelFacts, cols: number, rows: number): Screen[] {
  const screens: Screen[] = [identity(f, cols, rows), ha(f, cols), queue(f, cols), disk(f, cols), backup(f, cols)];
  if (f.restore?.running) screens.push([row('Restore running', cols), row(f.restore.percent === null ? 'progress unknown' : `${Math.floor(f.restore.percent)}% done`, cols)]);
  if ((f.alarms?.unacknowledged ?? 0) > 0) screens.push([row(`Alarms: ${f.alarms!.unacknowledged} new`, cols), ...wrap(f.alarms!.latest ?? '', cols, Math.max(0, rows - 2)), row('Enter: menu', cols)]);
  if (f.pollError !== null) screens.unshift([row('Status unreadable', cols), ...wrap(f.pollError, cols, Math.max(1, rows - 1))]);
  return screens.map((s) => s.slice(0, rows));
}

function identity(f: PanelFacts, cols: number, rows: number): Screen {
  // The hostname takes what rows the address leaves: a long one wraps, a hostile one is ASCII.
  const name = wrap(f.hostname, cols, Math.max(1, rows - 1));
  return [...name, row(`IP ${f.address ?? 'unknown'}`, cols)];
}

function ha(f: PanelFacts, cols: number): Screen {
  if (!f.ha) return [row('HA: off', cols), row('single box', cols)];
  const h = f.ha;
  const lines = [row(`HA: ${h.role}`, cols), row(`Peer: ${h.peerRole ?? 'unknown'}`, cols), row(h.replication || 'replication ?', cols)];
  if (h.role === 'active') lines.push(row(`One disk only: ${h.oneDiskOnly}`, cols));
  return lines;
}

function queue(f: PanelFacts, cols: number): Screen {
  if (!f.queue) return [row('Queue: on the', cols), row('active box', cols)];
  const q = f.queue;
  return [row(`Queue: ${q.messages} msg`, cols), row(`Deferred: ${q.deferred}`, cols), row(`Held: ${q.held}`, cols)];
}

function disk(f: PanelFacts, cols: number): Screen {
  const d = f.disk;
  if (!d) return [row('Disk: on the', cols), row('active box', cols)];
  const state = d.present === false ? 'MISSING' : d.failing ? 'FAILING' : d.present === null ? 'not read yet' : 'healthy';
  return [row(`Disk: ${state}`, cols), row(d.usedPercent === null ? 'Used: unknown' : `Used: ${d.usedPercent}%`, cols)];
}

function backup(f: PanelFacts, cols: number): Screen {
  if (!f.backup) return [row('Backup: not set up', cols)];
  return [row('Last backup:', cols), row(f.backup.last ?? 'never', cols)];
}
