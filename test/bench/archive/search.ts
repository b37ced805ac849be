/**
 * Search latency: the 50 fixed queries, each run several times (round after round, so no
 * query always runs right after itself), timed around Archiver.search with limit 20: the
 * index lookup, the chain records and every hit's snippet, which is what a user waits for.
 */
import type { Archiver } from '../../../src/archive/archiver.js';
import { benchQueries } from './queries.js';
import { fmt, now, pct, row } from './measure.js';

const LIMIT = 20;
export const SEARCH_TARGET_P95_MS = 200;

/** `brief`: the summary lines only (a checkpoint during the ingest). */
export async function searchLatency(archiver: Archiver, first: number, last: number, rounds: number, log: (s: string) => void, brief = false): Promise<{ p50: number; p95: number; p99: number }> {
  const queries = benchQueries(first, last);
  const times: number[][] = queries.map(() => []);
  const hits: number[] = [];
  const more: boolean[] = [];
  for (let r = 0; r < rounds; r++)
    for (const [i, { q }] of queries.entries()) {
      const t0 = now();
      const res = await archiver.search({ ...q, limit: LIMIT });
      times[i]!.push(now() - t0);
      hits[i] = res.hits.length;
      more[i] = res.more;
    }
  const widths = [36, 22, 7, 9, 9, 9];
  if (!brief) log(row(['query', 'text', 'hits', 'first ms', 'med ms', 'max ms'], widths));
  for (const [i, { label, q }] of brief ? [] : queries.entries()) {
    const t = [...times[i]!].sort((a, b) => a - b);
    const filters = [q.from && `from ${q.from}`, q.to && `to ${q.to}`, q.direction, q.since && 'since', q.until && 'until'].filter(Boolean).join(',');
    log(row([label, `${q.text}${filters ? ` [${filters.length > 12 ? `${filters.slice(0, 12)}…` : filters}]` : ''}`.slice(0, 22), `${hits[i]}${more[i] ? '+' : ''}`, fmt(times[i]![0]!, 1), fmt(pct(t, 50), 1), fmt(t.at(-1)!, 1)], widths));
  }
  const all = times.flat().sort((a, b) => a - b);
  const firstRound = times.map((t) => t[0]!).sort((a, b) => a - b);
  const p = { p50: pct(all, 50), p95: pct(all, 95), p99: pct(all, 99) };
  log(`search latency over ${all.length} searches (${queries.length} queries x ${rounds} rounds, limit ${LIMIT}, snippets included): p50 ${fmt(p.p50, 1)} ms, p95 ${fmt(p.p95, 1)} ms, p99 ${fmt(p.p99, 1)} ms, max ${fmt(all.at(-1)!, 1)} ms`);
  log(`first round only (each query's first run): p50 ${fmt(pct(firstRound, 50), 1)} ms, p95 ${fmt(pct(firstRound, 95), 1)} ms, p99 ${fmt(pct(firstRound, 99), 1)} ms`);
  log(`target p95 < ${SEARCH_TARGET_P95_MS} ms: ${p.p95 < SEARCH_TARGET_P95_MS ? 'MET' : 'MISSED'} (${fmt(p.p95, 1)} ms)`);
  return p;
}
