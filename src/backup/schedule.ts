/** The next time of day `at` (HH:MM, the box's local time) after `now`. */
export function nextDailyRun(now: number, at: string): number {
  const [h, m] = at.split(':').map(Number) as [number, number];
  const d = new Date(now);
  const t = new Date(d.getFullYear(), d.getMonth(), d.getDate(), h, m, 0, 0).getTime();
  return t > now ? t : new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1, h, m, 0, 0).getTime();
}

/** A day number (local days since the epoch): which share of the objects tonight's verify reads. */
export function dayNumber(now: number): number {
  const d = new Date(now);
  return Math.floor((now - d.getTimezoneOffset() * 60_000) / 86_400_000);
}
