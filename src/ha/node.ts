import { connect } from 'node:net';
import type { Logger } from '../log/logger.js';
import type { Config } from '../config/schema.js';
import type { EventInput } from '../events/events.js';
import { sublevel, type Db, type GroupCommitter } from '../store/db.js';
import type { DirSyncer } from '../store/atomic.js';
import type { SerialLine } from '../hw/serial.js';
import { NetLink } from './netlink.js';
import { Replicator, type PeerSync } from './replicator.js';
import type { DataRegistry } from '../store/data.js';
import type { Durability } from '../store/durability.js';
import { Applier } from './applier.js';
import { decide, links, isCurrent, type Heartbeat, type Role, type SelfState, type Decision } from './roles.js';
import { deriveKey, signLine, verifyLine, type FrameHeader } from './wire.js';

type HaConfig = Config['ha'];

interface SavedState {
  epoch: number;
  lastRole: SelfState['lastRole'];
  inSync: boolean;
  /** The active's sync generation this box was last in sync with. */
  syncGen: number;
  lastFailover: { at: string; role: string; reason: string } | null;
}

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
  /** What the capabilities declared: what goes to the standby. */
  data: DataRegistry;
  /** This box's own writes, without mirroring (what the other box hands over is written through it). */
  local: Durability;
  configFiles: () => Promise<Record<string, Buffer>>;
  applyConfigFiles: (files: Record<string, Buffer>) => Promise<void>;
  /** A short hash of the shared config document, carried in heartbeats. */
  configVersion: () => string;
  emit: (ev: EventInput) => void;
  log: Logger;
  now?: () => number;
}

const STATE_KEY = { sublevel: 'ha-state', key: 'self' };

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
  };
  linkFault: 'none' | 'serial' | 'network';
  replication: string;
  oneDiskOnly: number;
  onPeerLost: 'accept' | 'tempfail';
  lastFailover: SavedState['lastFailover'];
}

/**
 * One box of the HA pair: sends heartbeats on both links, decides its role (roles.ts)
 * and carries the decision out: starting mail service on promotion, stopping it on
 * demotion or fencing, replicating while active, applying while standby.
 */
export class HaNode {
  role: Role = 'starting';
  private saved: SavedState = { epoch: 0, lastRole: 'none', inSync: false, syncGen: 0, lastFailover: null };
  private peer: Heartbeat | null = null;
  private heardSerial: number | null = null;
  private heardNet: number | null = null;
  private bootAt = 0;
  private busy = false;
  private tickTimer: NodeJS.Timeout | null = null;
  private hbTimer: NodeJS.Timeout | null = null;
  private gwTimer: NodeJS.Timeout | null = null;
  private gatewayOk: boolean | null = null;
  private serialBuf = '';
  private fault: 'none' | 'serial' | 'network' = 'none';
  private peerWasAlive = false;
  /** When a standby that is behind may next ask the active for a snapshot. */
  private nextJoinAt = 0;
  private joinMerge = false;
  private lastBadFrameLog = 0;
  readonly link: NetLink;
  readonly replicator: Replicator;
  readonly applier: Applier;
  private readonly now: () => number;
  private readonly hbKey: Buffer;

  constructor(private readonly d: HaNodeDeps) {
    this.now = d.now ?? Date.now;
    const ha = d.ha();
    this.hbKey = deriveKey(ha.sharedKey, 'heartbeat');
    this.link = new NetLink({
      nodeId: ha.nodeId,
      listen: ha.listen,
      peer: () => this.d.ha().peer,
      psk: deriveKey(ha.sharedKey, 'psk'),
      silentMs: ha.deadMs,
      reconnectMs: Math.min(500, ha.heartbeatMs * 2),
      log: d.log,
    });
    this.replicator = new Replicator({
      link: this.link,
      dataDir: d.dataDir,
      db: d.db,
      data: d.data,
      local: d.local,
      settings: () => this.d.ha(),
      configFiles: d.configFiles,
      epoch: () => this.saved.epoch,
      onSync: (s, reason) => this.onPeerSync(s, reason),
      onMerged: (c) =>
        this.d.emit({ kind: 'ha.merged', severity: 'warning', text: `both boxes served alone for a while; the other box handed over ${c.taken ?? 0} message(s) only it had (offered: ${c.files ?? 0} mailbox files, ${c.spool ?? 0} unrouted, ${c.queue ?? 0} queued; the rest were already here)`, data: c }),
      log: d.log,
    });
    this.applier = new Applier({
      link: this.link,
      dataDir: d.dataDir,
      db: d.db,
      data: d.data,
      group: d.group,
      dirs: d.dirs,
      applyConfigFiles: d.applyConfigFiles,
      onSnapshotBegin: () => {
        this.nextJoinAt = this.now() + 10_000; // the active answered; ask again only if this stalls
        if (this.saved.inSync) void this.save({ inSync: false }).catch((err: Error) => this.d.log.error({ evt: 'ha.save.fail', err: err.message }, 'could not save HA state'));
      },
      onBroken: (reason) => {
        void this.save({ inSync: false }).catch((err: Error) => this.d.log.error({ evt: 'ha.save.fail', err: err.message }, 'could not save HA state'));
        this.setRole(this.role === 'standby' ? 'syncing' : this.role, reason);
        this.nextJoinAt = this.now() + 1000;
      },
      onJoinAnswer: (answer) => (this.nextJoinAt = this.now() + (answer === 'later' ? 500 : 10_000)),
      onSynced: async (gen) => {
        await this.save({ inSync: true, syncGen: gen, lastRole: 'standby', epoch: Math.max(this.saved.epoch, this.peer?.epoch ?? 0) });
        if (this.role === 'syncing') this.setRole('standby', 'in sync with the active box');
      },
      log: d.log,
    });
    this.link.onHeard(() => (this.heardNet = this.now()));
    this.link.onFrame((f) => {
      if (f.header.t === 'hb') this.onHeartbeat(f.header as unknown as Heartbeat);
      if (f.header.t === 'takeover') this.onTakeover(f.header);
    });
  }

  async start(): Promise<void> {
    const s = (await sublevel(this.d.db, STATE_KEY.sublevel).get(STATE_KEY.key).catch(() => undefined)) as SavedState | undefined;
    if (s) this.saved = { ...this.saved, ...s };
    this.bootAt = this.now();
    const ha = this.d.ha();
    await this.link.start();
    const serial = this.d.serial;
    if (serial) {
      serial.onData((chunk) => this.onSerial(chunk));
      serial.start();
    }
    this.hbTimer = setInterval(() => this.sendHeartbeat(), ha.heartbeatMs);
    this.tickTimer = setInterval(() => void this.tick(), Math.max(20, Math.floor(ha.heartbeatMs / 2)));
    if (ha.gateway) {
      const probe = () =>
        void probeGateway(ha.gateway, ha.deadMs).then((ok) => {
          if (ok && this.gatewayOk === false && this.role === 'fenced') this.bootAt = this.now();
          this.gatewayOk = ok;
        });
      probe();
      this.gwTimer = setInterval(probe, Math.max(250, ha.heartbeatMs * 2));
    }
    this.d.log.info({ evt: 'ha.start', node: ha.nodeId, epoch: this.saved.epoch, lastRole: this.saved.lastRole, inSync: this.saved.inSync }, 'HA starting; listening for the peer');
  }

  async stop(): Promise<void> {
    for (const t of [this.hbTimer, this.tickTimer, this.gwTimer]) if (t) clearInterval(t);
    this.replicator.stop('this box is stopping');
    await this.link.stop();
    await this.d.serial?.stop();
  }

  private saving: Promise<void> = Promise.resolve();

  /** Saves are written in the order they are made, each with the state as it was then. */
  private save(p: Partial<SavedState>): Promise<void> {
    this.saved = { ...this.saved, ...p };
    const state = this.saved;
    // classic-level honours `sync` on a put; abstract-level's types do not list it.
    this.saving = this.saving.catch(() => undefined).then(() => sublevel(this.d.db, STATE_KEY.sublevel).put(STATE_KEY.key, state, { sync: true } as object));
    return this.saving;
  }

  private selfState(): SelfState {
    const ha = this.d.ha();
    return { nodeId: ha.nodeId, priority: ha.priority, epoch: this.saved.epoch, lastRole: this.saved.lastRole, inSync: this.saved.inSync };
  }

  private heartbeat(): Heartbeat & { gen: number } {
    const ha = this.d.ha();
    return {
      t: 'hb',
      node: ha.nodeId,
      role: this.role,
      epoch: this.saved.epoch,
      priority: ha.priority,
      current: isCurrent(this.selfState()) && this.role !== 'outdated',
      standbyInSync: this.role === 'active' && this.replicator.inSync,
      pos: this.role === 'active' ? this.replicator.seq : this.applier.applied,
      cfg: this.d.configVersion(),
      gen: this.replicator.generation,
    };
  }

  private sendHeartbeat(): void {
    const hb = this.heartbeat();
    this.link.heartbeat(hb as unknown as FrameHeader);
    const serial = this.d.serial;
    if (serial?.isOpen) {
      // A write that blocks is a cable fault: the line closes and reopens by itself.
      serial.write(signLine(hb, this.hbKey), this.d.ha().heartbeatMs * 2).catch(() => undefined);
    }
  }

  private onSerial(chunk: Buffer): void {
    this.serialBuf += chunk.toString('latin1');
    if (this.serialBuf.length > 65536) this.serialBuf = this.serialBuf.slice(-4096);
    let nl: number;
    while ((nl = this.serialBuf.indexOf('\n')) >= 0) {
      const line = this.serialBuf.slice(0, nl);
      this.serialBuf = this.serialBuf.slice(nl + 1);
      if (!line.trim()) continue;
      const msg = verifyLine(line, this.hbKey);
      if (!msg) {
        // Line noise, a cable to some other device, or a box with another key.
        if (this.now() - this.lastBadFrameLog > 10_000) {
          this.lastBadFrameLog = this.now();
          this.d.log.warn({ evt: 'ha.serial.badFrame', sample: line.slice(0, 60) }, 'dropped an unauthenticated frame on the heartbeat cable');
        }
        continue;
      }
      if (msg.t === 'hb') {
        if ((msg as unknown as Heartbeat).node === this.d.ha().nodeId) continue; // our own echo
        this.heardSerial = this.now();
        this.onHeartbeat(msg as unknown as Heartbeat);
      } else if (msg.t === 'takeover') this.onTakeover(msg);
    }
  }

  private onHeartbeat(hb: Heartbeat & { gen?: number }): void {
    if (hb.node === this.d.ha().nodeId) return;
    this.peer = hb;
    // The active says which sync generation its standby is in; a newer one than ours
    // means it lost us since (a missed commit, a broken stream): we are behind.
    if ((this.role === 'standby' || this.role === 'syncing') && hb.role === 'active' && hb.gen !== undefined) {
      if (this.saved.inSync && hb.gen > this.saved.syncGen) {
        void this.save({ inSync: false }).catch((err: Error) => this.d.log.error({ evt: 'ha.save.fail', err: err.message }, 'could not save HA state'));
        this.setRole('syncing', 'the active box no longer counts this box in sync');
        this.nextJoinAt = 0;
      }
    }
  }

  private onTakeover(h: FrameHeader): void {
    if (h.node === this.d.ha().nodeId || this.role !== 'standby' || !this.saved.inSync) return;
    void this.run({ kind: 'promote', reason: `switchover requested by ${String(h.node)}` });
  }

  private onPeerSync(s: PeerSync, reason: string): void {
    this.d.log.info({ evt: 'ha.peerSync', state: s, reason }, `standby ${s}`);
    if (s === 'down' && this.role === 'active') {
      this.d.emit({ kind: 'ha.peerOutOfSync', severity: 'warning', text: `standby out of sync: ${reason}; ${this.d.ha().onPeerLost === 'accept' ? 'new mail is held on this disk only until it catches up' : 'new mail is refused with 451 until it catches up'}` });
      this.sendHeartbeat();
    }
    if (s === 'inSync') this.d.emit({ kind: 'ha.inSync', severity: 'info', text: 'standby in sync: every new message is on both disks before 250' });
  }

  private setRole(r: Role, reason: string): void {
    if (this.role === r) return;
    this.d.log.info({ evt: 'ha.role', from: this.role, to: r, reason }, `HA role ${r}`);
    this.role = r;
    this.sendHeartbeat();
  }

  private async tick(): Promise<void> {
    const ha = this.d.ha();
    const now = this.now();
    const inputs = {
      now,
      bootAt: this.bootAt,
      role: this.role,
      self: this.selfState(),
      heardSerial: this.heardSerial,
      heardNet: this.heardNet,
      serialConfigured: !!this.d.serial,
      peer: this.peer,
      deadMs: ha.deadMs,
      initDeadMs: ha.initDeadMs,
      gatewayOk: this.gatewayOk,
    };
    this.watchLinks(links(inputs));
    if (this.busy) return;
    // A standby that is behind asks (again) for a snapshot once both connections are up.
    if (this.role === 'syncing' && this.peer?.role === 'active' && this.link.outboundUp && now >= this.nextJoinAt) {
      this.nextJoinAt = now + 3000;
      void this.applier.join(this.joinMerge).catch((err: Error) => this.d.log.warn({ evt: 'ha.join.fail', err: err.message }, 'could not ask for a snapshot; retrying'));
    }
    await this.run(decide(inputs));
  }

  private faultSeen: { fault: 'serial' | 'network'; since: number } | null = null;

  private watchLinks(l: ReturnType<typeof links>): void {
    if (l.peerAlive !== this.peerWasAlive) {
      this.peerWasAlive = l.peerAlive;
      if (!l.peerAlive) this.d.emit({ kind: 'ha.peerLost', severity: 'critical', text: `HA peer silent on both links for ${this.d.ha().deadMs} ms (this box: ${this.role})` });
      else this.d.emit({ kind: 'ha.peerSeen', severity: 'info', text: `HA peer ${this.peer?.node ?? ''} heard (this box: ${this.role})` });
    }
    // A fault must last another deadMs before it is one: at a peer's death one link falls
    // silent a heartbeat before the other, and at a start one link is heard first.
    let fault = l.fault;
    if (fault !== 'none' && fault !== this.fault) {
      if (this.faultSeen?.fault !== fault) this.faultSeen = { fault, since: this.now() };
      if (this.now() - this.faultSeen.since < this.d.ha().deadMs) fault = this.fault;
    } else if (fault === 'none') this.faultSeen = null;
    if (fault !== this.fault) {
      const was = this.fault;
      this.fault = fault;
      if (fault !== 'none') {
        const what = fault === 'serial' ? 'the serial heartbeat cable is silent while the network link works' : 'the network link is silent while the serial heartbeat cable works';
        this.d.emit({ kind: 'ha.linkFault', severity: 'critical', text: `HA link fault: ${what}; no takeover (the peer is alive). Check the ${fault === 'serial' ? 'cable' : 'network'}.`, data: { link: fault } });
      } else if (was !== 'none') this.d.emit({ kind: 'ha.linkRestored', severity: 'info', text: `HA ${was} link restored`, data: { link: was } });
    }
  }

  private async run(dec: Decision): Promise<void> {
    if (dec.kind === 'stay' || this.busy) return;
    this.busy = true;
    try {
      switch (dec.kind) {
        case 'promote':
          return await this.promote(dec.reason, false);
        case 'join':
          this.joinMerge = dec.merge;
          this.nextJoinAt = 0;
          this.applier.enabled = true;
          this.setRole('syncing', dec.reason);
          return;
        case 'demote':
          this.replicator.stop(dec.reason);
          this.setRole('syncing', dec.reason);
          await this.d.deactivate();
          this.d.emit({ kind: 'ha.demoted', severity: 'critical', text: `this box stepped down: ${dec.reason}; handing over what it accepted alone` });
          this.joinMerge = dec.merge;
          this.nextJoinAt = 0;
          this.applier.enabled = true;
          await this.save({ lastRole: 'active', inSync: false });
          return;
        case 'outdated':
          this.applier.enabled = true;
          if (this.saved.inSync) await this.save({ inSync: false });
          this.setRole('outdated', dec.reason);
          this.d.emit({ kind: 'ha.outdated', severity: 'critical', text: `this box is outdated and will not take over by itself: ${dec.reason}. \`mlsd ha promote --force\` makes it serve anyway.` });
          return;
        case 'fence':
          if (this.role === 'active') {
            this.replicator.stop(dec.reason);
            await this.d.deactivate();
          }
          this.setRole('fenced', dec.reason);
          this.d.emit({ kind: 'ha.fenced', severity: 'critical', text: `this box stopped serving: ${dec.reason}` });
          return;
      }
    } catch (err) {
      this.d.log.error({ evt: 'ha.transition.fail', kind: dec.kind, err: (err as Error).message }, 'HA role change failed; will try again');
    } finally {
      this.busy = false;
    }
  }

  private async promote(reason: string, forced: boolean): Promise<void> {
    const from = this.role;
    this.applier.enabled = false;
    // Everything the old active sent must be in the database before services read it.
    await Promise.race([this.applier.drain(), new Promise((r) => setTimeout(r, 5000))]);
    const before = { epoch: this.saved.epoch, lastRole: this.saved.lastRole, lastFailover: this.saved.lastFailover };
    const epoch = Math.max(this.saved.epoch, this.peer?.epoch ?? 0) + 1;
    const failover = from === 'standby' || from === 'outdated' || from === 'syncing';
    await this.save({ epoch, lastRole: 'active', inSync: false, ...(failover || forced ? { lastFailover: { at: new Date(this.now()).toISOString(), role: from, reason } } : {}) });
    const t0 = this.now();
    try {
      await this.d.activate();
    } catch (err) {
      // Not active after all: this box stays what it was (an in-sync standby may try again).
      await this.save(before);
      this.applier.enabled = true;
      throw err;
    }
    this.setRole('active', reason);
    this.d.log.info({ evt: 'ha.promoted', epoch, from, reason, ms: this.now() - t0 }, 'this box is now active');
    this.d.emit({ kind: failover || forced ? 'ha.failover' : 'ha.active', severity: failover || forced ? 'critical' : 'info', text: `this box is now active (epoch ${epoch}, was ${from}): ${reason}` });
  }

  /** `mlsd ha promote --force`: serve from this box even though it may lack mail. */
  async forcePromote(): Promise<string> {
    if (this.role === 'active') return 'already active';
    if (this.busy) throw new Error('ha: a role change is under way; try again');
    this.busy = true;
    try {
      await this.promote('forced by the operator', true);
    } finally {
      this.busy = false;
    }
    return `active at epoch ${this.saved.epoch}`;
  }

  /**
   * At a graceful stop of the active box: its services stop while replication still runs,
   * then the in-sync standby is told to take over (instead of finding it dead 1.5 s later,
   * or worse, finding itself out of sync and staying down).
   */
  async handOver(): Promise<void> {
    if (this.role !== 'active' || !this.replicator.inSync || this.busy) return;
    await this.switchover(false).catch((err: Error) => this.d.log.warn({ evt: 'ha.handover.fail', err: err.message }, 'could not hand over at stop; the standby will find this box gone'));
  }

  /** `mlsd ha switchover`: hand the service to the in-sync standby, then follow it. */
  async switchover(rejoin = true): Promise<string> {
    if (this.role !== 'active') throw new Error(`ha: switchover runs on the active box (this one is ${this.role})`);
    if (!this.replicator.inSync) throw new Error('ha: the standby is not in sync; a switchover now would lose mail');
    if (this.busy) throw new Error('ha: a role change is under way; try again');
    this.busy = true;
    try {
      const gen = this.replicator.generation;
      await this.d.deactivate();
      // Everything the stopped services wrote must reach the standby before it takes over,
      // and it must still be in the same sync (a lost sync also empties the in-flight count).
      const until = this.now() + 10_000;
      while (this.replicator.behind > 0 && this.now() < until) await new Promise((r) => setTimeout(r, 20));
      if (this.replicator.behind > 0 || !this.replicator.inSync || this.replicator.generation !== gen) {
        if (rejoin) await this.d.activate();
        throw new Error('ha: the standby did not confirm the last changes; switchover called off');
      }
      const ha = this.d.ha();
      const notice = { t: 'takeover', node: ha.nodeId, epoch: this.saved.epoch };
      this.link.heartbeat(notice);
      this.d.serial?.write(signLine(notice, this.hbKey), ha.heartbeatMs * 2).catch(() => undefined);
      this.replicator.stop('switchover');
      await this.save({ lastRole: 'standby', inSync: false });
      this.joinMerge = false;
      this.nextJoinAt = 0;
      this.applier.enabled = true;
      this.setRole('syncing', 'switchover: the peer takes over');
      this.d.emit({ kind: 'ha.switchover', severity: 'info', text: `switchover: ${this.peer?.node ?? 'the peer'} takes over; this box becomes the standby` });
    } finally {
      this.busy = false;
    }
    return 'the peer is taking over; this box joins as standby';
  }

  status(): HaStatusInfo {
    const ha = this.d.ha();
    const now = this.now();
    const l = links({ now, heardSerial: this.heardSerial, heardNet: this.heardNet, serialConfigured: !!this.d.serial, deadMs: ha.deadMs });
    const r = this.replicator;
    let replication: string;
    if (this.role === 'active') replication = r.inSync ? (r.behind > 0 ? `in sync (${r.behind} frame(s) in flight)` : 'in sync') : r.state === 'down' ? 'standby out of sync' : `standby ${r.state}`;
    else if (this.role === 'standby') replication = this.saved.inSync ? 'in sync' : 'behind';
    else replication = this.saved.inSync ? 'in sync' : 'outdated';
    return {
      nodeId: ha.nodeId,
      role: this.role,
      epoch: this.saved.epoch,
      priority: ha.priority,
      peer: {
        node: this.peer?.node ?? null,
        role: l.peerAlive ? (this.peer?.role ?? null) : 'unreachable',
        epoch: this.peer?.epoch ?? null,
        configMatches: this.peer ? this.peer.cfg === this.d.configVersion() : null,
        links: {
          serial: this.d.serial ? (l.serial ? 'up' : 'down') : 'not configured',
          network: l.net ? 'up' : 'down',
        },
        lastHeardMs: this.heardNet === null && this.heardSerial === null ? null : now - Math.max(this.heardNet ?? 0, this.heardSerial ?? 0),
      },
      linkFault: this.fault,
      replication,
      oneDiskOnly: this.role === 'active' ? r.oneDiskOnly : 0,
      onPeerLost: ha.onPeerLost,
      lastFailover: this.saved.lastFailover,
    };
  }
}

/** Reachable when a TCP connection to host:port opens within the time given. */
function probeGateway(spec: string, timeoutMs: number): Promise<boolean> {
  const i = spec.lastIndexOf(':');
  const host = spec.slice(0, i);
  const port = Number(spec.slice(i + 1));
  return new Promise((resolve) => {
    let s: ReturnType<typeof connect>;
    try {
      s = connect({ host, port });
    } catch {
      return resolve(false); // a malformed ha.gateway never reaches anything
    }
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
