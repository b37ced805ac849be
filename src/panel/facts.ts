// What the panel knows about the box: read from the JSON of `status --json` and `network show
// --json`, the same documents every face gets. Read defensively: a field that is missing (a
// standby serves no mail; backup and restore are not built yet) or of the wrong type is absent,
// never a crash of the panel.

export interface PanelFacts {
  hostname: string;
  /** The LAN address (`network show`), null when unknown. */
  address: string | null;
  /** This box serves mail (it is not an HA standby). */
  serving: boolean;
  ha: { role: string; replication: string; oneDiskOnly: number; peerRole: string | null; linkFault: string } | null;
  queue: { messages: number; deferred: number; held: number } | null;
  disk: { present: boolean | null; failing: boolean; usedPercent: number | null } | null;
  alarms: { unacknowledged: number; latest: string | null } | null;
  /** `backup.last` (ISO time of the last good backup) once issue 15's backup reports it. */
  backup: { last: string | null } | null;
  /** `restore: {running, percent}` once issue 15's restore reports it. */
  restore: { running: boolean; percent: number | null } | null;
  /** Changes whenever mail moved (sessions, spool, queue, sent counters): drives the activity LED. */
  traffic: string;
  /** Why the last poll failed, if it did. */
  pollError: string | null;
}

type Doc = Record<string, unknown>;
const obj = (v: unknown): Doc | null => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Doc) : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const bool = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);

export function panelFacts(status: unknown, network: unknown, hostname: string, pollError: string | null = null): PanelFacts {
  const s = obj(status) ?? {};
  const ha = obj(s.ha);
  const peer = obj(ha?.peer);
  const queue = obj(s.queue);
  const rcpts = obj(queue?.recipients);
  const disk = obj(s.disk);
  const alarms = obj(s.alarms);
  const backup = obj(s.backup);
  const restore = obj(s.restore);
  const sent = obj(queue?.smarthost);
  return {
    hostname: str(s.hostname) ?? hostname,
    address: str(obj(network)?.address),
    serving: queue !== null,
    ha: ha ? { role: str(ha.role) ?? 'unknown', replication: str(ha.replication) ?? '', oneDiskOnly: num(ha.oneDiskOnly) ?? 0, peerRole: str(peer?.role), linkFault: str(ha.linkFault) ?? 'none' } : null,
    queue: queue ? { messages: num(queue.messages) ?? 0, deferred: num(rcpts?.deferred) ?? 0, held: num(queue.held) ?? 0 } : null,
    disk: disk ? { present: bool(disk.present), failing: bool(disk.failing) ?? false, usedPercent: num(disk.usedPercent) } : null,
    alarms: alarms ? { unacknowledged: num(alarms.unacknowledged) ?? 0, latest: str(alarms.latest) } : null,
    // No target set up is "not set up", not a backup that never ran.
    backup: backup && num(backup.targets) !== 0 ? { last: str(backup.last) } : null,
    restore: restore ? { running: bool(restore.running) ?? false, percent: num(restore.percent) } : null,
    traffic: [s.smtpSessionsOpen, s.smtpDataBytesInFlight, s.spoolPending, queue?.messages, rcpts?.queued, rcpts?.deferred, sent?.sentToday].map((v) => String(v ?? '')).join('/'),
    pollError,
  };
}
