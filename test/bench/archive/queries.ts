/**
 * The fixed set of 50 search queries: Chinese words, English words (inflected forms, so
 * stemming is exercised), both mixed, names from the rare tail, terms found nowhere, and
 * the command's filters (--from, --to, --direction, --since/--until, filters alone). Words
 * are named by their Zipf rank, so "common" and "rare" mean what the corpus makes them.
 */
import type { SearchQuery } from '../../../src/archive/types.js';
import { Corpus } from './corpus.js';
import { EN_COMMON, ZH_COMMON } from './vocab.js';

export interface BenchQuery {
  label: string;
  q: Omit<SearchQuery, 'limit'>;
}

const DAY = 24 * 3600 * 1000;

/** `first`/`last`: arrival times (ms) of the corpus's first and last message. */
export function benchQueries(first: number, last: number): BenchQuery[] {
  const c = new Corpus({ count: 0, ruleset: '' });
  const lex = c.lex;
  const zh = (r: number) => ZH_COMMON[r]!;
  const en = (r: number, form = 0) => EN_COMMON[r]![form] ?? EN_COMMON[r]![0]!;
  const busyLocal = c.local[0]!.address;
  const busyExternal = c.external[0]!.address;
  const someLocal = c.local[7]!.address;
  const extDomain = c.external[2]!.address.split('@')[1]!;
  const mid = first + (last - first) / 2;
  const out: BenchQuery[] = [];
  const add = (label: string, q: Omit<SearchQuery, 'limit'>) => out.push({ label, q });
  // Chinese words from the most common to rare ones.
  for (const r of [0, 1, 2, 3, 4, 5, 50, 100, 200]) add(`zh rank ${r}`, { text: zh(r) });
  add('zh rank 334 (rarest common)', { text: zh(ZH_COMMON.length - 1) });
  // Chinese names from the tail: in thousands of messages down to a handful.
  for (const r of [0, 100, 5000, 60000]) add(`zh name, tail rank ${r}`, { text: lex.zhTailWord(r) });
  // English: an inflected form finds the others (stemming).
  add('en rank 0, plural', { text: en(0, 1) });
  add('en rank 1, past tense', { text: en(1, 2) });
  for (const r of [10, 40, 100, 140]) add(`en rank ${r}`, { text: en(r) });
  for (const r of [0, 500, 20000, 90000]) add(`en name, tail rank ${r}`, { text: lex.enTailWord(r) });
  // Several words: every one must be there.
  add('zh+en common', { text: `${zh(0)} ${en(0)}` });
  add('zh+en', { text: `${zh(2)} ${en(5)}` });
  add('zh+en rare', { text: `${zh(150)} ${en(120)}` });
  add('zh+zh common', { text: `${zh(0)} ${zh(1)}` });
  add('zh+zh', { text: `${zh(5)} ${zh(60)}` });
  add('zh x3', { text: `${zh(0)} ${zh(4)} ${zh(1)}` });
  add('en+en', { text: `${en(4)} ${en(30)}` });
  add('en+en rare', { text: `${en(60)} ${en(130)}` });
  add('attachment name only', { text: 'PackingList' });
  // Filters.
  add('zh + from busy address', { text: zh(0), from: busyLocal });
  add('en + from domain', { text: en(0), from: extDomain });
  add('zh + to address', { text: zh(2), to: someLocal });
  add('zh + direction in', { text: zh(1), direction: 'in' });
  add('en + direction out', { text: en(5, 1), direction: 'out' });
  add('zh + direction internal', { text: zh(3), direction: 'internal' });
  add('zh + since 30 days', { text: zh(0), since: last - 30 * DAY });
  add('en + out + since 7 days', { text: en(0), direction: 'out', since: last - 7 * DAY });
  add('zh + one month mid-corpus', { text: zh(4), since: mid, until: mid + 30 * DAY });
  add('rare zh name + in', { text: lex.zhTailWord(3000), direction: 'in' });
  add('en + from external + since 90 days', { text: en(2), from: busyExternal, since: last - 90 * DAY });
  add('filters only: from address', { text: '', from: busyExternal });
  add('filters only: internal, 30 days', { text: '', direction: 'internal', since: last - 30 * DAY });
  add('filters only: to domain', { text: '', to: 'ft-tech.test' });
  // Found nowhere.
  add('no match en', { text: 'Zyxwvq' });
  add('no match zh', { text: '鑫淼' });
  add('no match zh+en', { text: `${zh(0)} Zyxwvq` });
  if (out.length !== 50) throw new Error(`the bench's query set has ${out.length} queries, not 50`);
  return out;
}
