/**
 * Counting windows for the mail control thresholds, with the clock passed in.
 *
 * SlidingMinute: an event counts for the 60 seconds after it, to the second (60 one-
 * second buckets). Unlike a fixed minute that resets on the clock, a burst cannot slip
 * through by straddling a minute boundary; unlike Postfix's anvil, the window does not
 * start at the client's first event, so a steady sender is never cut off and let in
 * again in steps.
 *
 * LocalDay: counts reset at midnight of the box's local calendar day (config timezone).
 */
export class SlidingWindow {
  private readonly stamps: Float64Array;
  private readonly counts: Uint32Array;
  private readonly slotMs: number;

  /** A window of `spanMs` counted in `slots` buckets (its resolution is spanMs / slots). */
  constructor(spanMs: number, private readonly slots: number) {
    this.slotMs = spanMs / slots;
    this.stamps = new Float64Array(slots).fill(-Infinity);
    this.counts = new Uint32Array(slots);
  }

  add(nowMs: number, n = 1): void {
    const t = Math.floor(nowMs / this.slotMs);
    const i = t % this.slots;
    if (this.stamps[i] !== t) {
      this.stamps[i] = t;
      this.counts[i] = 0;
    }
    this.counts[i]! += n;
  }

  /** Takes back one event added at `atMs` (if its bucket is still the same one). */
  remove(atMs: number): void {
    const t = Math.floor(atMs / this.slotMs);
    const i = t % this.slots;
    if (this.stamps[i] === t && this.counts[i]! > 0) this.counts[i]! -= 1;
  }

  count(nowMs: number): number {
    const t = Math.floor(nowMs / this.slotMs);
    let sum = 0;
    for (let i = 0; i < this.slots; i++) if (this.stamps[i]! > t - this.slots) sum += this.counts[i]!;
    return sum;
  }

  /** Milliseconds until fewer than `limit` events are in the window (0 when already so). */
  waitBelow(nowMs: number, limit: number): number {
    let c = this.count(nowMs);
    if (c < limit) return 0;
    const t = Math.floor(nowMs / this.slotMs);
    for (let k = t - this.slots + 1; k <= t; k++) {
      const i = ((k % this.slots) + this.slots) % this.slots;
      if (this.stamps[i] === k) c -= this.counts[i]!;
      if (c < limit) return Math.max(0, (k + this.slots) * this.slotMs - nowMs);
    }
    return this.slots * this.slotMs;
  }

  /** True when nothing in it counts any more (it can be dropped). */
  idle(nowMs: number): boolean {
    return this.count(nowMs) === 0;
  }

  /** The buckets still in the window, as [slot, count] pairs, for saving. */
  snapshot(nowMs: number): [number, number][] {
    const t = Math.floor(nowMs / this.slotMs);
    const out: [number, number][] = [];
    for (let i = 0; i < this.slots; i++) if (this.stamps[i]! > t - this.slots && this.counts[i]! > 0) out.push([this.stamps[i]!, this.counts[i]!]);
    return out;
  }

  /** Puts saved buckets back (ones that fell out of the window meanwhile are ignored by count()). */
  restore(saved: [number, number][]): void {
    for (const [t, n] of saved) {
      if (!Number.isInteger(t) || !Number.isInteger(n) || n < 0) continue;
      const i = ((t % this.slots) + this.slots) % this.slots;
      this.stamps[i] = t;
      this.counts[i] = n;
    }
  }
}

export class SlidingMinute extends SlidingWindow {
  constructor() {
    super(60_000, 60);
  }
}

const dayFormats = new Map<string, Intl.DateTimeFormat>();

/** The local calendar day ("2026-11-30") of an instant in a timezone. */
export function localDay(nowMs: number, timeZone: string): string {
  let f = dayFormats.get(timeZone);
  if (!f) dayFormats.set(timeZone, (f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })));
  return f.format(nowMs);
}
