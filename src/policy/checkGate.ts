/**
 * A bound on concurrent password checks. Each check is an scrypt run on libuv's thread
 * pool, the same pool that runs the spool's writes and fsyncs: a login flood that ran every
 * guess at once would hold all its threads and slow every commit. At most `maxConcurrent`
 * checks run; up to `maxQueued` more wait their turn; past that a check is refused at once
 * (the caller answers a temporary failure, and no scrypt runs).
 */
export interface GateSettings {
  maxConcurrent: number;
  maxQueued: number;
}

export class CheckGate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly settings: () => GateSettings) {}

  /** Runs `check` when a slot is free; resolves `{ busy: true }` without running it when the queue is full. */
  async run<T>(check: () => Promise<T>): Promise<{ busy: true } | { busy: false; value: T }> {
    const { maxConcurrent, maxQueued } = this.settings();
    if (this.running >= maxConcurrent) {
      if (this.waiting.length >= maxQueued) return { busy: true };
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return { busy: false, value: await check() };
    } finally {
      // The slot passes straight to the next waiter (running stays counted), so a newcomer cannot overtake the queue.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  get load(): { running: number; queued: number } {
    return { running: this.running, queued: this.waiting.length };
  }
}
