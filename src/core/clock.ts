/**
 * Time, injected. Components that wait or count take a Clock, so unit tests advance time
 * (test/helpers/clock.ts) instead of sleeping, and integration tests run on the system's.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(t: Timer | null | undefined): void;
  setInterval(fn: () => void, ms: number): Timer;
  clearInterval(t: Timer | null | undefined): void;
}

/** A timer handle; `unref` lets the process exit while it is pending (a no-op on a test clock). */
export interface Timer {
  unref(): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout | undefined),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (t) => clearInterval(t as NodeJS.Timeout | undefined),
};

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
