/**
 * The role state machine of one box in the pair, as a pure function of what the box
 * knows: its own saved state, when each link last heard the peer, and the peer's last
 * heartbeat. The HA node calls `decide` on every tick and acts on the answer, so every
 * rule here is unit-tested without sockets or clocks.
 */

export type Role = 'starting' | 'active' | 'standby' | 'syncing' | 'outdated' | 'fenced';

/** What a box says about itself every heartbeat, on both links. */
export interface Heartbeat {
  t: 'hb';
  node: string;
  role: Role;
  epoch: number;
  priority: number;
  /** Safe to serve from this box's data: it was active, or an in-sync standby, or has no history. */
  current: boolean;
  /** The active's view: is its standby in sync right now. */
  standbyInSync: boolean;
  /** Replication position: frames sent (active) or applied (standby). */
  pos: number;
  /** Hash of the replicated config, so a mismatch is visible in `ha status`. */
  cfg: string;
  /** This box's unacknowledged alarms (peer-alarms.ts); absent from a box before it, unchecked as received. */
  alarms?: unknown;
}

export interface SelfState {
  nodeId: string;
  priority: number;
  epoch: number;
  /** Last role this box held with data behind it ('none' for a new box). */
  lastRole: 'active' | 'standby' | 'none';
  /** For a standby: had every acknowledged message when it last heard the active. */
  inSync: boolean;
}

export interface RoleInputs {
  now: number;
  /** When the box started, or, for a fenced box, when its gateway came back. */
  bootAt: number;
  role: Role;
  self: SelfState;
  /** When each link last heard the peer (ms); null for never or a link not configured. */
  heardSerial: number | null;
  heardNet: number | null;
  serialConfigured: boolean;
  peer: Heartbeat | null;
  deadMs: number;
  initDeadMs: number;
  /** Own gateway reachable; null when no gateway check is configured. */
  gatewayOk: boolean | null;
}

export type Decision =
  | { kind: 'stay' }
  | { kind: 'promote'; reason: string }
  | { kind: 'join'; merge: boolean; reason: string }
  | { kind: 'demote'; merge: boolean; reason: string }
  | { kind: 'outdated'; reason: string }
  | { kind: 'fence'; reason: string };

export interface LinkView {
  serial: boolean;
  net: boolean;
  /** Any link heard the peer within deadMs. */
  peerAlive: boolean;
  /** One link alive, the other silent: a cable or network fault, not a dead peer. */
  fault: 'none' | 'serial' | 'network';
}

export function links(i: Pick<RoleInputs, 'now' | 'heardSerial' | 'heardNet' | 'serialConfigured' | 'deadMs'>): LinkView {
  const alive = (t: number | null) => t !== null && i.now - t < i.deadMs;
  const serial = alive(i.heardSerial);
  const net = alive(i.heardNet);
  const peerAlive = serial || net;
  let fault: LinkView['fault'] = 'none';
  if (peerAlive && i.serialConfigured && serial !== net) fault = serial ? 'network' : 'serial';
  return { serial, net, peerAlive, fault };
}

/** Whether this box's data can be served without losing acknowledged mail. */
export function isCurrent(s: SelfState): boolean {
  return s.lastRole === 'none' || s.lastRole === 'active' || s.inSync;
}

/**
 * Which of two boxes should be active: the later epoch (the most recent active), then
 * a current box over an outdated one, then priority, then node id (so there is always
 * exactly one winner).
 */
export function outranks(a: { epoch: number; current: boolean; priority: number; node: string }, b: typeof a): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch;
  if (a.current !== b.current) return a.current;
  if (a.priority !== b.priority) return a.priority > b.priority;
  return a.node > b.node;
}

export function decide(i: RoleInputs): Decision {
  const l = links(i);
  const me = { epoch: i.self.epoch, current: isCurrent(i.self), priority: i.self.priority, node: i.self.nodeId };
  const peer = l.peerAlive ? i.peer : null;
  const peerRank = peer ? { epoch: peer.epoch, current: peer.current, priority: peer.priority, node: peer.node } : null;

  switch (i.role) {
    case 'active': {
      if (peer?.role === 'active' && peerRank && outranks(peerRank, me)) {
        // Both served during a partition: the later epoch keeps the address, this box hands
        // over what only it accepted.
        return { kind: 'demote', merge: true, reason: `peer ${peer.node} is active at epoch ${peer.epoch}` };
      }
      if (!l.peerAlive && i.gatewayOk === false) return { kind: 'fence', reason: 'both links and the gateway are down: this box is the one cut off' };
      return { kind: 'stay' };
    }
    case 'standby':
    case 'syncing': {
      if (peer?.role === 'active') return { kind: 'stay' };
      if (!l.peerAlive) {
        if (i.gatewayOk === false) return { kind: 'fence', reason: 'peer silent and own gateway down' };
        // Only an in-sync standby has every acknowledged message: promoting an outdated
        // one would lose mail the active accepted alone.
        if (i.role === 'standby' && i.self.inSync) return { kind: 'promote', reason: 'peer dead on both links' };
        return { kind: 'outdated', reason: 'peer dead on both links while this box was not in sync' };
      }
      // The peer is up but not active (it stepped down, or both restarted).
      if (peer && peerRank && me.current && outranks(me, peerRank) && i.self.inSync) return { kind: 'promote', reason: `peer ${peer.node} is ${peer.role}` };
      return { kind: 'stay' };
    }
    case 'starting':
    case 'outdated':
    case 'fenced': {
      if (peer?.role === 'active') return { kind: 'join', merge: i.self.lastRole === 'active', reason: `peer ${peer.node} is active` };
      if (peer && peerRank) {
        if (me.current && outranks(me, peerRank)) return { kind: 'promote', reason: `both boxes up; this one ranks first over ${peer.node}` };
        return { kind: 'stay' };
      }
      if (i.gatewayOk === false) return i.role === 'fenced' ? { kind: 'stay' } : { kind: 'fence', reason: 'no peer and own gateway down' };
      // A fenced box waits as a booting one does (bootAt is when its gateway came back): the
      // peer's links may be coming back too, and it may have taken over meanwhile.
      const waited = i.role === 'starting' || i.role === 'fenced' ? i.now - i.bootAt >= i.initDeadMs : true;
      if (!waited) return { kind: 'stay' };
      if (i.role === 'outdated') return { kind: 'stay' };
      if (me.current) return { kind: 'promote', reason: i.role === 'fenced' ? 'gateway back, peer still silent' : 'no peer heard since boot' };
      return { kind: 'outdated', reason: 'no peer heard since boot, and this box was not in sync when it last saw it' };
    }
  }
}
