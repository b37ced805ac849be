import type { Logger } from '../log/logger.js';
import { sublevel, syncedDbWrite, type Db } from '../store/db.js';
import type { SelfState } from './roles.js';
import type { DataDecl } from '../store/data.js';

/** What a box remembers of its HA history across restarts. */
export interface SavedState {
  epoch: number;
  lastRole: SelfState['lastRole'];
  inSync: boolean;
  /** The active's sync generation this box was last in sync with. */
  syncGen: number;
  lastFailover: { at: string; role: string; reason: string } | null;
  /** This box's last serial boot number, and the highest of the peer's taken (serial-guard.ts). */
  serialBoot: number;
  peerSerialBoot: number;
  /** The peer's alarms this box raised as ha.peerAlarm (`node id`, newest last; peer-alarms.ts). */
  peerAlarmsRaised: string[];
}

const STATE_KEY = { sublevel: 'ha-state', key: 'self' };

/** Each box keeps its own HA state: its role, epoch and the sync generation it last had. */
export const HA_DATA: DataDecl = {
  owner: 'ha',
  sublevels: [{ name: STATE_KEY.sublevel, describe: "this box's HA role, epoch and sync generation", replicate: false }],
};

/**
 * The box's saved HA state in the database. `current` always holds the latest state
 * asked for; the writes behind it land in the order they were asked for, so a slow
 * earlier save never overwrites a later one.
 */
export class SavedHaState {
  current: SavedState = { epoch: 0, lastRole: 'none', inSync: false, syncGen: 0, lastFailover: null, serialBoot: 0, peerSerialBoot: 0, peerAlarmsRaised: [] };
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
  ) {}

  /** Reads what the last run saved; a box that never saved (or cannot read) starts new. */
  async load(): Promise<void> {
    const s = (await sublevel(this.db, STATE_KEY.sublevel).get(STATE_KEY.key).catch(() => undefined)) as SavedState | undefined;
    if (s) this.current = { ...this.current, ...s };
  }

  /** Saves are written in the order they are made, each with the state as it was then. */
  save(p: Partial<SavedState>): Promise<void> {
    this.current = { ...this.current, ...p };
    const state = this.current;
    // classic-level honours `sync` on a put; abstract-level's types do not list it.
    this.saving = this.saving.catch(() => undefined).then(() => syncedDbWrite(this.db, () => sublevel(this.db, STATE_KEY.sublevel).put(STATE_KEY.key, state, { sync: true } as object)));
    return this.saving;
  }

  /** A save nobody waits for (the state in memory is already right); a failure is logged. */
  saveUnawaited(p: Partial<SavedState>): void {
    void this.save(p).catch((err: Error) => this.log.error({ evt: 'ha.save.fail', err: err.message }, 'could not save HA state'));
  }
}
