import { DIRECTIONS, type Direction, type IndexDoc, type SearchQuery } from './types.js';
import { queryTerms, termsOfDoc, tooManyTerms, type TermQuery } from './tokenize.js';

const DAY_MS = 86_400_000;

/**
 * A whole day in UTC: `since` is its first millisecond, `until` its last (until is
 * inclusive to the end of the day). Throws one line naming the bad value.
 */
export function parseDay(value: string, bound: 'since' | 'until'): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  const start = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : NaN;
  // Date.UTC rolls 2024-02-30 over to March: a day that does not round-trip does not exist.
  if (!m || Number.isNaN(start) || new Date(start).toISOString().slice(0, 10) !== value) {
    throw new Error(`${bound}: bad date "${value}" (expected YYYY-MM-DD)`);
  }
  return bound === 'since' ? start : start + DAY_MS - 1;
}

export function parseDirection(value: string): Direction {
  const d = value.toLowerCase();
  if (!(DIRECTIONS as readonly string[]).includes(d)) throw new Error(`direction: unknown direction "${value}" (in, out or internal)`);
  return d as Direction;
}

/** Splits a query into words and "quoted phrases" (an unclosed quote runs to the end). */
function pieces(s: string): { text: string; quoted: boolean }[] {
  const out: { text: string; quoted: boolean }[] = [];
  const re = /"([^"]*)"?|[^\s"]+/g;
  for (const m of s.matchAll(re)) {
    if (m[1] !== undefined) {
      const phrase = m[1].replace(/\s+/g, ' ').trim();
      if (phrase) out.push({ text: phrase, quoted: true });
    } else out.push({ text: m[0], quoted: false });
  }
  return out;
}

const FILTERS = ['from', 'to', 'since', 'until', 'direction'] as const;
type Filter = (typeof FILTERS)[number];

/**
 * A search or hold query as typed: words and "quoted phrases" plus inline
 * from:A to:A since:YYYY-MM-DD until:YYYY-MM-DD direction:in|out|internal.
 * A phrase is kept quoted in `text`; it is matched as all its terms (the index keeps a set
 * of terms per message, not their positions). A word such as `re:` or `http://x` whose
 * prefix is not a filter stays text.
 */
export function parseQuery(s: string): Omit<SearchQuery, 'limit'> {
  const q: Omit<SearchQuery, 'limit'> = { text: '' };
  const text: string[] = [];
  const seen = new Set<Filter>();
  for (const p of pieces(s)) {
    const m = p.quoted ? null : /^([a-z]+):(.*)$/i.exec(p.text);
    const key = m?.[1]!.toLowerCase() as Filter | undefined;
    if (!m || !key || !(FILTERS as readonly string[]).includes(key)) {
      text.push(p.quoted ? `"${p.text}"` : p.text);
      continue;
    }
    const value = m[2]!;
    if (!value) throw new Error(`${key}: needs a value ("${p.text}")`);
    if (seen.has(key)) throw new Error(`${key}: given twice`);
    seen.add(key);
    if (key === 'from' || key === 'to') q[key] = value;
    else if (key === 'since' || key === 'until') q[key] = parseDay(value, key);
    else q.direction = parseDirection(value);
  }
  if (q.since !== undefined && q.until !== undefined && q.since > q.until) throw new Error('since: is after until:');
  q.text = text.join(' ');
  const tooMany = tooManyTerms(queryTerms(q).terms);
  if (tooMany) throw new Error(tooMany);
  return q;
}

/**
 * Whether a message matches a query, in memory, with the index's semantics: every term
 * present (AND), time within since/until. Legal holds are checked with this at purge time.
 */
export function docMatches(doc: IndexDoc, q: TermQuery): boolean {
  if (q.since !== undefined && doc.time < q.since) return false;
  if (q.until !== undefined && doc.time > q.until) return false;
  const { terms, matchesNothing } = queryTerms(q);
  if (matchesNothing) return false;
  if (terms.length === 0) return true;
  const have = new Set(termsOfDoc(doc));
  return terms.every((t) => have.has(t));
}
