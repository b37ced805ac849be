import type { Clock, Timer } from '../core/clock.js';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import type { Applier } from './applier.js';
import type { Heartbeats } from './heartbeats.js';
import type { JoinRequests } from './join.js';
import type { Replicator } from './replicator.js';
import type { Decision, Heartbeat, Role } from './roles.js';
import type { SavedHaState } from './state.js';

export interface TransitionDeps {
  role: () => Role;
  setRole: (r: Role, reason: string) => void;
  /** The peer's last heartbeat. */
  peer: () => Heartbeat | null;
  state: SavedHaState;
  replicator: Replicator;
  applier: Applier;
  joins: JoinRequests;
  heartbeats: Heartbeats;
  /** Starts mail service on this box (binds the service address); stops it. */
  activate: () => Promise<void>;
  deactivate: () => Promise<void>;
  emit: (ev: EventInput) => void;
  clock: Clock;
  log: Logger;
}

/** How long a promotion waits for replicated frames to be applied before it serves anyway. */
const DRAIN_MS = 5000;
/** How long a switchover waits for the standby to confirm the last changes. */
const CONFIRM_MS = 10_000;
/** How often a switchover looks whether the standby has confirmed them. */
const CONFIRM_POLL_MS = 20;

/**
 * Carries out role changes, one at a time: the decisions of roles.ts (promote, join,
 * demote, outdated, fence) and the operator's (forced promotion, switchover, the hand-over
 * at a graceful stop). `busy` is set while one runs; any other waits for the next tick
 * or is refused.
 */
export class RoleTransitions {
  busy = false;

  constructor(private readonly d: TransitionDeps) {}

  async run(dec: Decision): Promise<void> {
    if (dec.kind === 'stay' || this.busy) return;
    const d = this.d;
    this.busy = true;
    try {
      switch (dec.kind) {
        case 'promote':
          return await this.promote(dec.reason, false);
        case 'join':
          d.joins.askSoon(dec.merge);
          d.applier.enabled = true;
          d.setRole('syncing', dec.reason);
          return;
        case 'demote':
          d.replicator.stop(dec.reason);
          d.setRole('syncing', dec.reason);
          await d.deactivate();
          d.emit({ kind: 'ha.demoted', severity: 'critical', text: `this box stepped down: ${dec.reason}; handing over what it accepted alone` });
          d.joins.askSoon(dec.merge);
          d.applier.enabled = true;
          await d.state.save({ lastRole: 'active', inSync: false });
          return;
        case 'outdated':
          d.applier.enabled = true;
          if (d.state.current.inSync) await d.state.save({ inSync: false });
          d.setRole('outdated', dec.reason);
          d.emit({ kind: 'ha.outdated', severity: 'critical', text: `this box is outdated and will not take over by itself: ${dec.reason}. \`mlsd ha promote --force\` makes it serve anyway.` });
          return;
        case 'fence':
          if (d.role() === 'active') {
            d.replicator.stop(dec.reason);
            await d.deactivate();
          }
          d.setRole('fenced', dec.reason);
          d.emit({ kind: 'ha.fenced', severity: 'critical', text: `this box stopped serving: ${dec.reason}` });
          return;
      }
    } catch (err) {
      d.log.error({ evt: 'ha.transition.fail', kind: dec.kind, err: (err as Error).message }, 'HA role change failed; will try again');
    } finally {
      this.busy = false;
    }
  }

  private async promote(reason: string, forced: boolean): Promise<void> {
    const d = this.d;
    const from = d.role();
    d.applier.enabled = false;
    // Everything the old active sent must be in the database before services read it.
    await this.within(DRAIN_MS, d.applier.drain());
    const saved = d.state.current;
    const before = { epoch: saved.epoch, lastRole: saved.lastRole, lastFailover: saved.lastFailover };
    const epoch = Math.max(saved.epoch, d.peer()?.epoch ?? 0) + 1;
    const failover = from === 'standby' || from === 'outdated' || from === 'syncing';
    await d.state.save({ epoch, lastRole: 'active', inSync: false, ...(failover || forced ? { lastFailover: { at: new Date(d.clock.now()).toISOString(), role: from, reason } } : {}) });
    const t0 = d.clock.now();
    try {
      await d.activate();
    } catch (err) {
      // Not active after all: this box stays what it was (an in-sync standby may try again).
      await d.state.save(before);
      d.applier.enabled = true;
      throw err;
    }
    d.setRole('active', reason);
    d.log.info({ evt: 'ha.promoted', epoch, from, reason, ms: d.clock.now() - t0 }, 'this box is now active');
    d.emit({ kind: failover || forced ? 'ha.failover' : 'ha.active', severity: failover || forced ? 'critical' : 'info', text: `this box is now active (epoch ${epoch}, was ${from}): ${reason}` });
  }

  /** `mlsd ha promote --force`: serve from this box even though it may lack mail. */
  async forcePromote(): Promise<string> {
    if (this.d.role() === 'active') return 'already active';
    if (this.busy) throw new Error('ha: a role change is under way; try again');
    this.busy = true;
    try {
      await this.promote('forced by the operator', true);
    } finally {
      this.busy = false;
    }
    return `active at epoch ${this.d.state.current.epoch}`;
  }

  /**
   * At a graceful stop of the active box: its services stop while replication still runs,
   * then the in-sync standby is told to take over (instead of finding it dead 1.5 s later,
   * or worse, finding itself out of sync and staying down).
   */
  async handOver(): Promise<void> {
    if (this.d.role() !== 'active' || !this.d.replicator.inSync || this.busy) return;
    await this.switchover(false).catch((err: Error) => this.d.log.warn({ evt: 'ha.handover.fail', err: err.message }, 'could not hand over at stop; the standby will find this box gone'));
  }

  /** `mlsd ha switchover`: hand the service to the in-sync standby, then follow it. */
  async switchover(rejoin = true): Promise<string> {
    const d = this.d;
    const r = d.replicator;
    if (d.role() !== 'active') throw new Error(`ha: switchover runs on the active box (this one is ${d.role()})`);
    if (!r.inSync) throw new Error('ha: the standby is not in sync; a switchover now would lose mail');
    if (this.busy) throw new Error('ha: a role change is under way; try again');
    this.busy = true;
    try {
      const gen = r.generation;
      await d.deactivate();
      // Everything the stopped services wrote must reach the standby before it takes over,
      // and it must still be in the same sync (a lost sync also empties the in-flight count).
      const until = d.clock.now() + CONFIRM_MS;
      while (r.behind > 0 && d.clock.now() < until) await this.pause(CONFIRM_POLL_MS);
      if (r.behind > 0 || !r.inSync || r.generation !== gen) {
        if (rejoin) await d.activate();
        throw new Error('ha: the standby did not confirm the last changes; switchover called off');
      }
      d.heartbeats.sendTakeover(d.state.current.epoch);
      r.stop('switchover');
      await d.state.save({ lastRole: 'standby', inSync: false });
      d.joins.askSoon(false);
      d.applier.enabled = true;
      d.setRole('syncing', 'switchover: the peer takes over');
      d.emit({ kind: 'ha.switchover', severity: 'info', text: `switchover: ${d.peer()?.node ?? 'the peer'} takes over; this box becomes the standby` });
    } finally {
      this.busy = false;
    }
    return 'the peer is taking over; this box joins as standby';
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => this.d.clock.setTimeout(resolve, ms));
  }

  /** Waits for `p`, or `ms` at most (then goes on without it). */
  private async within(ms: number, p: Promise<unknown>): Promise<void> {
    let timer: Timer | null = null;
    try {
      await Promise.race([p, new Promise<void>((resolve) => (timer = this.d.clock.setTimeout(resolve, ms)))]);
    } finally {
      this.d.clock.clearTimeout(timer);
    }
  }
}
