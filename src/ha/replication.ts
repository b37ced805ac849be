import { NetLink } from './netlink.js';
import { Replicator, type PeerSync } from './replicator.js';
import { Applier } from './applier.js';
import { deriveKey } from './wire.js';
import type { StandbySync } from './standby.js';
import type { HaNodeDeps } from './node.js';

export interface ReplicationParts {
  link: NetLink;
  /** The active's side: sends every change to the standby. */
  replicator: Replicator;
  /** The standby's side: applies what the active sends. */
  applier: Applier;
}

export interface ReplicationHooks {
  /** The box's current epoch. */
  epoch: () => number;
  /** The active's view of its standby changed. */
  onPeerSync: (s: PeerSync, reason: string) => void;
  /** Where the applier's news goes. */
  standby: StandbySync;
}

type Deps = Pick<HaNodeDeps, 'ha' | 'db' | 'group' | 'dirs' | 'dataDir' | 'configFiles' | 'applyConfigFiles' | 'data' | 'local' | 'emit' | 'log'>;

/** Builds the network link to the peer and both sides of replication over it, from the HA settings. */
export function replicationParts(d: Deps, hooks: ReplicationHooks): ReplicationParts {
  const ha = d.ha();
  const link = new NetLink({
    nodeId: ha.nodeId,
    listen: ha.listen,
    peer: () => d.ha().peer,
    psk: deriveKey(ha.sharedKey, 'psk'),
    silentMs: ha.deadMs,
    reconnectMs: Math.min(500, ha.heartbeatMs * 2),
    log: d.log,
  });
  const replicator = new Replicator({
    link,
    dataDir: d.dataDir,
    db: d.db,
    settings: () => d.ha(),
    data: d.data,
    local: d.local,
    configFiles: d.configFiles,
    epoch: hooks.epoch,
    onSync: hooks.onPeerSync,
    onMerged: (c) =>
      d.emit({ kind: 'ha.merged', severity: 'warning', text: `both boxes served alone for a while; the other box handed over ${c.taken ?? 0} message(s) only it had (offered: ${c.files ?? 0} mailbox files, ${c.spool ?? 0} unrouted, ${c.queue ?? 0} queued; the rest were already here)`, data: c }),
    log: d.log,
  });
  const { standby } = hooks;
  const applier = new Applier({
    link,
    dataDir: d.dataDir,
    db: d.db,
    data: d.data,
    group: d.group,
    dirs: d.dirs,
    applyConfigFiles: d.applyConfigFiles,
    onSnapshotBegin: () => standby.snapshotBegun(),
    onBroken: (reason) => standby.broken(reason),
    onJoinAnswer: (answer) => standby.joinAnswered(answer),
    onSynced: (gen) => standby.synced(gen),
    log: d.log,
  });
  return { link, replicator, applier };
}
