/** Small measuring tools of the archive bench: percentiles, disk use, memory, formatting. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../lib.js';

export const pct = (sorted: number[], p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);

export const fmt = (n: number, d = 0): string => (Number.isFinite(n) ? n.toFixed(d) : '-');

export const mib = (bytes: number): string => `${fmt(bytes / 1048576, 1)} MiB`;

export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Bytes a folder takes on the disk (du: allocated blocks, not apparent sizes). */
export async function diskBytes(path: string): Promise<number> {
  const r = await run('du', ['-s', '--block-size=1', path]);
  return r.code === 0 ? Number(r.out.split(/\s/)[0]) : NaN;
}

/** Every entry of a folder with its disk bytes, largest first. */
export async function diskByEntry(dir: string): Promise<{ name: string; bytes: number }[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out = await Promise.all(names.map(async (name) => ({ name, bytes: await diskBytes(join(dir, name)) })));
  return out.sort((a, b) => b.bytes - a.bytes);
}

/** A /proc/PID/status field in KiB (VmHWM: peak resident set; VmRSS: now). */
export async function procKiB(field: 'VmHWM' | 'VmRSS', pid: number | 'self' = 'self'): Promise<number> {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** A right-aligned table row. */
export function row(cols: string[], widths: number[]): string {
  return cols.map((c, i) => (i === 0 ? c.padEnd(widths[0]!) : c.padStart(widths[i] ?? 8))).join(' ');
}
