import type { JoinRequests } from './join.js';
import type { Heartbeat, Role } from './roles.js';
import type { SavedHaState } from './state.js';

export interface StandbySyncDeps {
  state: SavedHaState;
  joins: JoinRequests;
  role: () => Role;
  setRole: (r: Role, reason: string) => void;
  /** The epoch of the peer's last heartbeat (0 if none). */
  peerEpoch: () => number;
}

/**
 * Whether this standby has every acknowledged message. The applier's news (a snapshot
 * begun, finished or broken, the active's answer to a join) and the active's heartbeats
 * move it between standby (in sync, may take over) and syncing (behind, asks to join).
 */
export class StandbySync {
  constructor(private readonly d: StandbySyncDeps) {}

  /** The active answered the join with a snapshot. */
  snapshotBegun(): void {
    this.d.joins.holdFor(10_000); // the active answered; ask again only if this stalls
    if (this.d.state.current.inSync) this.d.state.saveUnawaited({ inSync: false });
  }

  /** The snapshot and everything before it is applied. */
  async synced(gen: number): Promise<void> {
    const { state } = this.d;
    await state.save({ inSync: true, syncGen: gen, lastRole: 'standby', epoch: Math.max(state.current.epoch, this.d.peerEpoch()) });
    if (this.d.role() === 'syncing') this.d.setRole('standby', 'in sync with the active box');
  }

  /** A replicated frame could not be applied: behind until the next snapshot. */
  broken(reason: string): void {
    this.d.state.saveUnawaited({ inSync: false });
    const role = this.d.role();
    this.d.setRole(role === 'standby' ? 'syncing' : role, reason);
    this.d.joins.holdFor(1000);
  }

  joinAnswered(answer: 'later' | 'pull'): void {
    this.d.joins.holdFor(answer === 'later' ? 500 : 10_000);
  }

  /**
   * The active says in its heartbeat which sync generation its standby is in; a newer one
   * than ours means it lost us since (a missed commit, a broken stream): we are behind.
   */
  activeHeard(hb: Heartbeat & { gen?: number }): void {
    const role = this.d.role();
    if ((role !== 'standby' && role !== 'syncing') || hb.role !== 'active' || hb.gen === undefined) return;
    const { state } = this.d;
    if (state.current.inSync && hb.gen > state.current.syncGen) {
      state.saveUnawaited({ inSync: false });
      this.d.setRole('syncing', 'the active box no longer counts this box in sync');
      this.d.joins.askSoon();
    }
  }
}
