import type { Clock } from '../core/clock.js';
import type { SavedHaState } from './state.js';
import { HA_WIRE_VERSION, type FrameHeader } from './wire.js';

/** What every signed serial line carries inside its HMAC, besides its own fields. */
export interface LineStamp {
  /** The HA wire version (absent in lines of boxes before it existed). */
  v: number;
  /** The sender's boot number: larger at every start of that box. */
  boot: number;
  /** The line's number within that boot: 1, 2, 3… */
  n: number;
}

export type LineVerdict =
  | 'ok'
  /** A line of a box from before the counter existed: it cannot be told from a replay. */
  | 'oldFormat'
  /** A line of a later wire version than this box speaks. */
  | 'newFormat'
  /** A line already seen, or older than one seen: recorded and played back. */
  | 'replay';

/**
 * Makes a signed serial line good once. The HMAC proves who wrote a line, not when: anyone
 * with a tap on the cable could record "take over" and play it back later. So each line
 * carries (boot, n) inside the HMAC, and the receiver takes only lines above the last it took.
 *
 * - boot is chosen at start above both the last saved boot and the clock in ms, and saved: a
 *   restart never goes back, even with a clock that is wrong (no RTC, no NTP yet).
 * - The receiver saves the highest boot it took from the peer (once per peer start, not per
 *   line), so lines recorded in an earlier boot of the peer stay refused across its own restarts.
 * - A takeover line names the receiver's boot (`to`): a takeover recorded before the receiver
 *   last restarted is refused even though the receiver forgot the counter it had reached.
 * - A box whose saved state was lost and whose clock is behind would be refused for ever: the
 *   peer says over the network link (TLS, not replayable) the highest boot of ours it has taken,
 *   and we start again above it.
 */
export class SerialReplayGuard {
  private boot = 0;
  private n = 0;
  /** The highest (boot, n) taken from the peer; n = 0: none of that boot yet. */
  private seen = { boot: 0, n: 0 };
  /** The peer's current boot, as its heartbeats say on either link (for a takeover's `to`). */
  private peerBoot = 0;

  constructor(
    private readonly state: SavedHaState,
    private readonly clock: Clock,
  ) {}

  /** At start, once the saved state is loaded. */
  async begin(): Promise<void> {
    const s = this.state.current;
    this.boot = Math.max(s.serialBoot + 1, Math.floor(this.clock.now()));
    this.n = 0;
    this.seen = { boot: s.peerSerialBoot, n: 0 };
    await this.state.save({ serialBoot: this.boot });
  }

  get ownBoot(): number {
    return this.boot;
  }

  /** The highest boot of the peer taken on the cable (sent in heartbeats as `serialSeen`). */
  get seenBoot(): number {
    return this.seen.boot;
  }

  /** The stamp of the next line this box writes. */
  stamp(): LineStamp {
    return { v: HA_WIRE_VERSION, boot: this.boot, n: ++this.n };
  }

  /** A takeover also names the boot of the box told to take over. */
  takeoverStamp(): LineStamp & { to: number } {
    return { ...this.stamp(), to: this.peerBoot };
  }

  /** A line whose HMAC is right: whether to act on it. A line taken moves the mark. */
  check(msg: FrameHeader): LineVerdict {
    const { v, boot, n } = msg as Partial<Record<keyof LineStamp, unknown>>;
    if (v === undefined) return 'oldFormat';
    if (!Number.isSafeInteger(v) || !Number.isSafeInteger(boot) || !Number.isSafeInteger(n) || (n as number) < 1) return 'oldFormat';
    if ((v as number) > HA_WIRE_VERSION) return 'newFormat';
    const b = boot as number;
    const k = n as number;
    if (b < this.seen.boot || (b === this.seen.boot && k <= this.seen.n)) return 'replay';
    if (msg.t === 'takeover' && msg.to !== this.boot) return 'replay';
    if (b > this.seen.boot) this.state.saveUnawaited({ peerSerialBoot: b });
    this.seen = { boot: b, n: k };
    if (b > this.peerBoot) this.peerBoot = b;
    return 'ok';
  }

  /**
   * A heartbeat heard on the network link (TLS-PSK: authentic and not replayable). It says
   * the peer's boot, and the highest boot of ours the peer has taken on the cable.
   */
  heardOnNetwork(hb: FrameHeader): void {
    if (Number.isSafeInteger(hb.serialBoot) && (hb.serialBoot as number) > this.peerBoot) this.peerBoot = hb.serialBoot as number;
    const seen = hb.serialSeen;
    if (this.boot > 0 && Number.isSafeInteger(seen) && (seen as number) > this.boot) {
      // The peer holds a later boot of ours than this one (our saved state was lost and the
      // clock is behind): every line of ours would be refused. Start above it.
      this.boot = (seen as number) + 1;
      this.n = 0;
      this.state.saveUnawaited({ serialBoot: this.boot });
    }
  }
}
