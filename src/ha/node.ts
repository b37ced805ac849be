import type { Logger } from '../log/logger.js';
import type { Config } from '../config/schema.js';
import type { EventInput } from '../events/events.js';
import { PeerAlarms, parseAlarmSummary, type AlarmSummary } from './peer-alarms.js';
import type { Db, GroupCommitter } from '../store/db.js';
import type { DirSyncer } from '../store/atomic.js';
import type { SerialLine } from '../hw/serial.js';
import { systemClock, type Clock, type Timer } from '../core/clock.js';
import type { NetLink } from './netlink.js';
import type { Replicator, PeerSync } from './replicator.js';
import type { Applier } from './applier.js';
import { replicationParts } from './replication.js';
import { decide, links, isCurrent, type Decision, type Heartbeat, type Role, type RoleInputs, type SelfState } from './roles.js';
import { deriveKey, type FrameHeader } from './wire.js';
import { SavedHaState } from './state.js';
import { Heartbeats, type SentHeartbeat } from './heartbeats.js';
import { SerialReplayGuard } from './serial-guard.js';
import { LinkWatch } from './linkwatch.js';
import { GatewayWatch } from './gateway.js';
import { JoinRequests } from './join.js';
import { StandbySync } from './standby.js';
import { RoleTransitions } from './transitions.js';
import { haStatus, type HaStatusInfo } from './status.js';
import type { DataRegistry } from '../store/data.js';
import type { Durability } from '../store/durability.js';

export type { HaStatusInfo } from './status.js';

type HaConfig = Config['ha'];

export interface HaNodeDeps {
  ha: () => HaConfig;
  db: Db;
  group: GroupCommitter;
  dirs: DirSyncer;
  dataDir: string;
  serial: SerialLine | null;
  /** Starts mail service on this box (binds the service address); stops it. */
  activate: () => Promise<void>;
  deactivate: () => Promise<void>;
  configFiles: () => Promise<Record<string, Buffer>>;
  applyConfigFiles: (files: Record<string, Buffer>) => Promise<void>;
  /** What the capabilities declared: what goes to the standby. */
  data: DataRegistry;
  /** This box's own writes, without mirroring (what the other box hands over is written through it). */
  local: Durability;
  /** A short hash of the shared config document, carried in heartbeats. */
  configVersion: () => string;
  emit: (ev: EventInput) => void;
  /** This box's unacknowledged alarms as its heartbeat carries them (null: not read yet). */
  alarms: () => AlarmSummary | null;
  log: Logger;
  /** Time for every decision and timer of the node (not the network link's own watchdog). */
  clock?: Clock;
}

/**
 * One box of the HA pair: sends heartbeats on both links, decides its role (roles.ts)
 * and carries the decision out: starting mail service on promotion, stopping it on
 * demotion or fencing, replicating while active, applying while standby. The parts
 * it coordinates each have their own file: heartbeats, link watch, role transitions,
 * standby sync, join requests, saved state, gateway watch, status document.
 */
export class HaNode {
  role: Role = 'starting';
  private peer: Heartbeat | null = null;
  /** The alarms in the peer's last heartbeat (null: it sent none, or a malformed one). */
  private peerAlarmSummary: AlarmSummary | null = null;
  /** When the box started, or, for a fenced box, when its gateway came back. */
  private bootAt = 0;
  private tickTimer: Timer | null = null;
  /** The situation last logged as `ha.decision`: a line is written only when it changes. */
  private lastDecision = '';
  readonly link: NetLink;
  readonly replicator: Replicator;
  readonly applier: Applier;
  private readonly clock: Clock;
  private readonly state: SavedHaState;
  private readonly heartbeats: Heartbeats;
  private readonly serialGuard: SerialReplayGuard;
  private readonly linkWatch: LinkWatch;
  private readonly joins: JoinRequests;
  private readonly standby: StandbySync;
  private readonly transitions: RoleTransitions;
  private gateway: GatewayWatch | null = null;
  private readonly peerAlarms: PeerAlarms;

  constructor(private readonly d: HaNodeDeps) {
    const clock = (this.clock = d.clock ?? systemClock);
    const ha = d.ha();
    this.state = new SavedHaState(d.db, d.log);
    this.joins = new JoinRequests((merge) => this.applier.join(merge), clock, d.log);
    this.standby = new StandbySync({ state: this.state, joins: this.joins, role: () => this.role, setRole: (r, reason) => this.setRole(r, reason), peerEpoch: () => this.peer?.epoch ?? 0 });
    ({ link: this.link, replicator: this.replicator, applier: this.applier } = replicationParts(d, {
      epoch: () => this.state.current.epoch,
      onPeerSync: (s, reason) => this.onPeerSync(s, reason),
      standby: this.standby,
    }));
    this.serialGuard = new SerialReplayGuard(this.state, clock);
    this.peerAlarms = new PeerAlarms({
      raised: () => this.state.current.peerAlarmsRaised,
      save: (peerAlarmsRaised) => this.state.saveUnawaited({ peerAlarmsRaised }),
      emit: d.emit,
      log: d.log,
    });
    this.heartbeats = new Heartbeats({
      link: this.link,
      serial: d.serial,
      key: deriveKey(ha.sharedKey, 'heartbeat'),
      guard: this.serialGuard,
      nodeId: () => this.d.ha().nodeId,
      heartbeatMs: () => this.d.ha().heartbeatMs,
      heartbeat: () => this.heartbeat(),
      onHeartbeat: (hb) => this.onHeartbeat(hb),
      onTakeover: (h) => this.onTakeover(h),
      clock,
      log: d.log,
    });
    this.linkWatch = new LinkWatch({ deadMs: () => this.d.ha().deadMs, role: () => this.role, peerNode: () => this.peer?.node ?? null, emit: d.emit, clock });
    this.transitions = new RoleTransitions({
      role: () => this.role,
      setRole: (r, reason) => this.setRole(r, reason),
      peer: () => this.peer,
      state: this.state,
      replicator: this.replicator,
      applier: this.applier,
      joins: this.joins,
      heartbeats: this.heartbeats,
      activate: d.activate,
      deactivate: d.deactivate,
      emit: d.emit,
      clock,
      log: d.log,
    });
  }

  async start(): Promise<void> {
    await this.state.load();
    await this.serialGuard.begin();
    this.bootAt = this.clock.now();
    const ha = this.d.ha();
    await this.link.start();
    this.heartbeats.start();
    this.tickTimer = this.clock.setInterval(() => void this.tick(), Math.max(20, Math.floor(ha.heartbeatMs / 2)));
    if (ha.gateway) {
      this.gateway = new GatewayWatch(ha.gateway, ha.deadMs, Math.max(250, ha.heartbeatMs * 2), this.clock, () => {
        // A fenced box waits initDeadMs from here, as a booting one does (roles.ts).
        if (this.role === 'fenced') this.bootAt = this.clock.now();
      });
      this.gateway.start();
    }
    const s = this.state.current;
    this.d.log.info({ evt: 'ha.start', node: ha.nodeId, epoch: s.epoch, lastRole: s.lastRole, inSync: s.inSync }, 'HA starting; listening for the peer');
  }

  async stop(): Promise<void> {
    this.heartbeats.stopSending();
    this.clock.clearInterval(this.tickTimer);
    this.gateway?.stop();
    this.replicator.stop('this box is stopping');
    await this.link.stop();
    await this.heartbeats.closeSerial();
  }

  private selfState(): SelfState {
    const ha = this.d.ha();
    const s = this.state.current;
    return { nodeId: ha.nodeId, priority: ha.priority, epoch: s.epoch, lastRole: s.lastRole, inSync: s.inSync };
  }

  private heartbeat(): SentHeartbeat {
    const ha = this.d.ha();
    const alarms = this.d.alarms();
    return {
      t: 'hb',
      node: ha.nodeId,
      role: this.role,
      epoch: this.state.current.epoch,
      priority: ha.priority,
      current: isCurrent(this.selfState()) && this.role !== 'outdated',
      standbyInSync: this.role === 'active' && this.replicator.inSync,
      pos: this.role === 'active' ? this.replicator.seq : this.applier.applied,
      cfg: this.d.configVersion(),
      gen: this.replicator.generation,
      ...(alarms ? { alarms } : {}),
    };
  }

  private onHeartbeat(hb: Heartbeat & { gen?: number }): void {
    if (hb.node === this.d.ha().nodeId) return;
    this.peer = hb;
    this.peerAlarmSummary = parseAlarmSummary(hb.alarms);
    // Only the serving box mails (its alerts run with its mail services); a peer that is
    // active too (a partition healing) mails its own.
    if (this.role === 'active' && hb.role !== 'active') this.peerAlarms.heard(hb.node, this.peerAlarmSummary);
    this.standby.activeHeard(hb);
  }

  private onTakeover(h: FrameHeader): void {
    if (h.node === this.d.ha().nodeId || this.role !== 'standby' || !this.state.current.inSync) return;
    // The active names its epoch; one older than ours is from a box that has since lost the service.
    if (typeof h.epoch !== 'number' || h.epoch < this.state.current.epoch) {
      this.d.log.warn({ evt: 'ha.takeover.stale', node: h.node, epoch: h.epoch, ours: this.state.current.epoch }, 'refused a takeover notice of an older epoch');
      return;
    }
    void this.transitions.run({ kind: 'promote', reason: `switchover requested by ${String(h.node)}` });
  }

  private onPeerSync(s: PeerSync, reason: string): void {
    this.d.log.info({ evt: 'ha.peerSync', state: s, reason }, `standby ${s}`);
    if (s === 'down' && this.role === 'active') {
      this.d.emit({ kind: 'ha.peerOutOfSync', severity: 'warning', text: `standby out of sync: ${reason}; ${this.d.ha().onPeerLost === 'accept' ? 'new mail is held on this disk only until it catches up' : 'new mail is refused with 451 until it catches up'}` });
      this.heartbeats.send();
    }
    if (s === 'inSync') this.d.emit({ kind: 'ha.inSync', severity: 'info', text: 'standby in sync: every new message is on both disks before 250' });
  }

  private setRole(r: Role, reason: string): void {
    if (this.role === r) return;
    this.d.log.info({ evt: 'ha.role', from: this.role, to: r, reason }, `HA role ${r}`);
    this.role = r;
    this.heartbeats.send();
  }

  private async tick(): Promise<void> {
    const ha = this.d.ha();
    const now = this.clock.now();
    const inputs: RoleInputs = {
      now,
      bootAt: this.bootAt,
      role: this.role,
      self: this.selfState(),
      heardSerial: this.heartbeats.heardSerial,
      heardNet: this.heartbeats.heardNet,
      serialConfigured: !!this.d.serial,
      peer: this.peer,
      deadMs: ha.deadMs,
      initDeadMs: ha.initDeadMs,
      gatewayOk: this.gateway?.ok ?? null,
    };
    const l = links(inputs);
    this.linkWatch.watch(l);
    if (this.transitions.busy) return;
    // A standby that is behind asks (again) for a snapshot once both connections are up.
    if (this.role === 'syncing' && this.peer?.role === 'active' && this.link.outboundUp) this.joins.askIfDue(now);
    const dec = decide(inputs);
    this.logDecision(dec, l.peerAlive);
    await this.transitions.run(dec);
  }

  /**
   * Logs what the box decided when its situation (role, link fault, decision) is new, so
   * a reader (or a test) sees that it weighed a change, e.g. a link fault, and what it chose;
   * the same decision tick after tick is not repeated.
   */
  private logDecision(dec: Decision, peerAlive: boolean): void {
    const fault = this.linkWatch.fault;
    const key = `${this.role}|${fault}|${dec.kind}`;
    if (key === this.lastDecision) return;
    this.lastDecision = key;
    const reason = dec.kind === 'stay' ? undefined : dec.reason;
    this.d.log.info({ evt: 'ha.decision', role: this.role, linkFault: fault, peerAlive, decision: dec.kind, reason }, `HA decision as ${this.role}: ${dec.kind}`);
  }

  /** `mlsd ha promote --force`: serve from this box even though it may lack mail. */
  forcePromote(): Promise<string> {
    return this.transitions.forcePromote();
  }

  /** At a graceful stop of the active box: the in-sync standby takes over at once. */
  handOver(): Promise<void> {
    return this.transitions.handOver();
  }

  /** `mlsd ha switchover`: hand the service to the in-sync standby, then follow it. */
  switchover(rejoin = true): Promise<string> {
    return this.transitions.switchover(rejoin);
  }

  status(): HaStatusInfo {
    return haStatus({
      ha: this.d.ha(),
      now: this.clock.now(),
      role: this.role,
      saved: this.state.current,
      peer: this.peer,
      heardSerial: this.heartbeats.heardSerial,
      heardNet: this.heartbeats.heardNet,
      serialConfigured: !!this.d.serial,
      fault: this.linkWatch.fault,
      replicator: this.replicator,
      configVersion: this.d.configVersion,
      peerAlarms: this.peerAlarmSummary,
    });
  }
}
