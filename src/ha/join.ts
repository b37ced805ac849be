import type { Clock } from '../core/clock.js';
import type { Logger } from '../log/logger.js';

/** A standby that asked waits this long for an answer before it asks again. */
const ASK_AGAIN_MS = 3000;

/**
 * When a standby that is behind asks the active for a snapshot (join), and whether it
 * first hands over the mail it accepted alone (merge). The answers and failures of the
 * applier move the next ask; the node's tick asks when it is due.
 */
export class JoinRequests {
  private nextAt = 0;
  private merge = false;

  constructor(
    /** Sends the join to the active (the applier's). */
    private readonly join: (merge: boolean) => Promise<void>,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Ask at the next chance; `merge` says whether to hand over mail first (unchanged if not given). */
  askSoon(merge?: boolean): void {
    if (merge !== undefined) this.merge = merge;
    this.nextAt = 0;
  }

  /** Do not ask again before `ms` from now. */
  holdFor(ms: number): void {
    this.nextAt = this.clock.now() + ms;
  }

  /** Asks if one is due; `now` is the time of the tick that calls. */
  askIfDue(now: number): void {
    if (now < this.nextAt) return;
    this.nextAt = now + ASK_AGAIN_MS;
    void this.join(this.merge).catch((err: Error) => this.log.warn({ evt: 'ha.join.fail', err: err.message }, 'could not ask for a snapshot; retrying'));
  }
}
