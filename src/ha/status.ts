import type { Config } from '../config/schema.js';
import type { Replicator } from './replicator.js';
import { links, type Heartbeat, type Role } from './roles.js';
import type { LinkFault } from './linkwatch.js';
import type { SavedState } from './state.js';
import type { AlarmSummary } from './peer-alarms.js';

/** What `mlsd ha status --json` shows. */
export interface HaStatusInfo {
  nodeId: string;
  role: Role;
  epoch: number;
  priority: number;
  peer: {
    node: string | null;
    role: string | null;
    epoch: number | null;
    configMatches: boolean | null;
    links: { serial: string; network: string };
    lastHeardMs: number | null;
    /** The peer's unacknowledged alarms as its last heartbeat said (null: not said, a box before it). */
    alarms: { unacknowledged: number; latest: AlarmSummary['latest'] } | null;
  };
  linkFault: LinkFault;
  replication: string;
  oneDiskOnly: number;
  onPeerLost: 'accept' | 'tempfail';
  lastFailover: SavedState['lastFailover'];
}

/** Everything the status document is made from, as the node holds it at one moment. */
export interface StatusFacts {
  ha: Config['ha'];
  now: number;
  role: Role;
  saved: SavedState;
  peer: Heartbeat | null;
  heardSerial: number | null;
  heardNet: number | null;
  serialConfigured: boolean;
  fault: LinkFault;
  replicator: Pick<Replicator, 'inSync' | 'behind' | 'state' | 'oneDiskOnly'>;
  configVersion: () => string;
  peerAlarms: AlarmSummary | null;
}

/** How replication looks from this box, in the words `ha status` uses. */
function replicationText(f: StatusFacts): string {
  const r = f.replicator;
  if (f.role === 'active') return r.inSync ? (r.behind > 0 ? `in sync (${r.behind} frame(s) in flight)` : 'in sync') : r.state === 'down' ? 'standby out of sync' : `standby ${r.state}`;
  if (f.role === 'standby') return f.saved.inSync ? 'in sync' : 'behind';
  return f.saved.inSync ? 'in sync' : 'outdated';
}

export function haStatus(f: StatusFacts): HaStatusInfo {
  const { ha, now, peer } = f;
  const l = links({ now, heardSerial: f.heardSerial, heardNet: f.heardNet, serialConfigured: f.serialConfigured, deadMs: ha.deadMs });
  return {
    nodeId: ha.nodeId,
    role: f.role,
    epoch: f.saved.epoch,
    priority: ha.priority,
    peer: {
      node: peer?.node ?? null,
      role: l.peerAlive ? (peer?.role ?? null) : 'unreachable',
      epoch: peer?.epoch ?? null,
      configMatches: peer ? peer.cfg === f.configVersion() : null,
      links: {
        serial: f.serialConfigured ? (l.serial ? 'up' : 'down') : 'not configured',
        network: l.net ? 'up' : 'down',
      },
      lastHeardMs: f.heardNet === null && f.heardSerial === null ? null : now - Math.max(f.heardNet ?? 0, f.heardSerial ?? 0),
      alarms: f.peerAlarms ? { unacknowledged: f.peerAlarms.n, latest: f.peerAlarms.latest } : null,
    },
    linkFault: f.fault,
    replication: replicationText(f),
    oneDiskOnly: f.role === 'active' ? f.replicator.oneDiskOnly : 0,
    onPeerLost: ha.onPeerLost,
    lastFailover: f.saved.lastFailover,
  };
}
