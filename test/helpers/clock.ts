import type { Clock, Timer } from '../../src/core/clock.js';

interface Pending {
  id: number;
  at: number;
  fn: () => void;
  every: number | null;
}

/**
 * A clock that moves only when the test says so. `advance(ms)` fires every timer that
 * falls due, in order, and lets the promises each one starts run before the next.
 */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, Pending>();

  constructor(start = Date.parse('2026-01-05T10:00:00Z')) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  private add(fn: () => void, ms: number, every: number | null): Timer {
    const id = ++this.seq;
    this.timers.set(id, { id, at: this.t + Math.max(0, ms), fn, every });
    const handle = { id, unref: () => handle };
    return handle;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, null);
  }

  setInterval(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, Math.max(1, ms));
  }

  clearTimeout(t: Timer | null | undefined): void {
    if (t) this.timers.delete((t as unknown as { id: number }).id);
  }

  clearInterval(t: Timer | null | undefined): void {
    this.clearTimeout(t);
  }

  /** Timers still waiting (a component that says it is idle has none it did not expect). */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward, firing what falls due on the way; settles promises between timers. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      let next: Pending | null = null;
      for (const p of this.timers.values()) if (p.at <= end && (!next || p.at < next.at || (p.at === next.at && p.id < next.id))) next = p;
      if (!next) break;
      this.t = Math.max(this.t, next.at);
      if (next.every === null) this.timers.delete(next.id);
      else next.at += next.every;
      next.fn();
    }
    this.t = end;
    await settle();
  }
}

/** Lets pending promise callbacks and I/O callbacks that are already due run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}
