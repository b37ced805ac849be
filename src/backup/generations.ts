import { generationTime } from './manifest.js';

export interface KeepPolicy {
  daily: number;
  weekly: number;
  monthly: number;
}

/** Monday of the ISO week a time falls in, as a day number (for grouping). */
function weekOf(ms: number): number {
  const day = Math.floor(ms / 86_400_000);
  // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday.
  return day - ((day + 3) % 7);
}

/**
 * Grandfather-father-son retention: the newest generation of each of the last `daily`
 * days, of each of the last `weekly` weeks and of the last `monthly` months is kept.
 * The newest generation is always kept. Returns the generations to delete.
 */
export function generationsToDrop(generations: readonly string[], keep: KeepPolicy): string[] {
  const sorted = [...generations].filter((g) => !Number.isNaN(generationTime(g))).sort().reverse();
  const kept = new Set<string>(sorted.slice(0, 1));
  const newestPer = (bucket: (ms: number) => number, n: number) => {
    const seen = new Set<number>();
    for (const g of sorted) {
      const b = bucket(generationTime(g));
      if (seen.has(b)) continue;
      if (seen.size >= n) break;
      seen.add(b);
      kept.add(g);
    }
  };
  newestPer((ms) => Math.floor(ms / 86_400_000), keep.daily);
  newestPer(weekOf, keep.weekly);
  newestPer((ms) => new Date(ms).getUTCFullYear() * 12 + new Date(ms).getUTCMonth(), keep.monthly);
  return sorted.filter((g) => !kept.has(g)).reverse();
}
