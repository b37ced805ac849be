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
export class SlidingMinute {
  private readonly stamps = new Float64Array(60);
  private readonly counts = new Uint32Array(60);

  add(nowMs: number, n = 1): void {
    const sec = Math.floor(nowMs / 1000);
    const i = sec % 60;
    if (this.stamps[i] !== sec) {
      this.stamps[i] = sec;
      this.counts[i] = 0;
    }
    this.counts[i]! += n;
  }

  count(nowMs: number): number {
    const sec = Math.floor(nowMs / 1000);
    let sum = 0;
    for (let i = 0; i < 60; i++) if (this.stamps[i]! > sec - 60) sum += this.counts[i]!;
    return sum;
  }

  /** True when nothing in it counts any more (it can be dropped). */
  idle(nowMs: number): boolean {
    return this.count(nowMs) === 0;
  }
}

const dayFormats = new Map<string, Intl.DateTimeFormat>();

/** The local calendar day ("2026-11-30") of an instant in a timezone. */
export function localDay(nowMs: number, timeZone: string): string {
  let f = dayFormats.get(timeZone);
  if (!f) dayFormats.set(timeZone, (f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })));
  return f.format(nowMs);
}
