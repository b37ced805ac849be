import { CJK_RUN, TOKEN, normalize, textTerms, wordTerm } from './tokenize.js';

/**
 * Only the start of a long text is searched for the match: a snippet is a glance, cut for
 * every hit of a page (20), and scanning costs about a microsecond a character.
 */
const SCAN_MAX = 8_000;

/**
 * Offset (in UTF-16 units of `text`) of the first token that gives one of `terms`, or -1.
 * Chinese terms are looked for directly in the normalised text (a string search, some fifty
 * times faster than tokenizing it), when normalising kept every offset.
 */
function firstMatch(text: string, terms: Set<string>): number {
  const all = [...terms];
  if (all.every((t) => CJK_RUN.test(t))) {
    const norm = normalize(text);
    if (norm.length === text.length) {
      let best = -1;
      for (const t of all) {
        const at = norm.indexOf(t);
        if (at >= 0 && (best < 0 || at < best)) best = at;
      }
      return best;
    }
  }
  return scanMatch(text, terms);
}

/** The token-by-token search of firstMatch. */
function scanMatch(text: string, terms: Set<string>): number {
  for (const m of text.matchAll(TOKEN)) {
    const tok = m[0];
    if (CJK_RUN.test(tok)) {
      const chars = Array.from(tok);
      let off = m.index;
      for (let i = 0; i < chars.length; i++) {
        const one = normalize(chars[i]!);
        if (terms.has(one) || (i + 1 < chars.length && terms.has(one + normalize(chars[i + 1]!)))) return off;
        off += chars[i]!.length;
      }
    } else {
      const t = wordTerm(normalize(tok));
      if (t !== null && terms.has(t)) return m.index;
    }
  }
  return -1;
}

/**
 * A short excerpt of `text` (whitespace collapsed, at most `max` characters) around the
 * first place a term of `queryText` occurs (a CJK bigram or an English stem), with … where
 * it was cut; the start of the text when nothing matches (`matched` false). Never throws.
 */
export function snippetOf(text: string, queryText: string, max = 160): { snippet: string; matched: boolean } {
  try {
    if (typeof text !== 'string') return { snippet: '', matched: false };
    const limit = Number.isFinite(max) && max >= 8 ? Math.floor(max) : 160;
    const flat = text.slice(0, SCAN_MAX * 2).replace(/\s+/g, ' ').trim();
    const terms = new Set(typeof queryText === 'string' ? textTerms(queryText.slice(0, 10_000)) : []);
    const at = terms.size ? firstMatch(flat.slice(0, SCAN_MAX), terms) : -1;
    return { snippet: cut(Array.from(flat), at < 0 ? 0 : Array.from(flat.slice(0, at)).length, limit), matched: at >= 0 };
  } catch {
    return { snippet: '', matched: false };
  }
}

/** The excerpt alone (see snippetOf). */
export function snippet(text: string, queryText: string, max = 160): string {
  return snippetOf(text, queryText, max).snippet;
}

/** A window of `limit` code points holding position `at` about a quarter in, … at cut ends. */
function cut(chars: string[], at: number, limit: number): string {
  if (chars.length <= limit) return chars.join('');
  let start = Math.max(0, at - Math.floor(limit / 4));
  // Start at a word boundary when one is near (English); CJK has none and needs none.
  if (start > 0) {
    const space = chars.slice(start, at).indexOf(' ');
    if (space >= 0 && space < 20) start += space + 1;
  }
  const head = start > 0 ? '…' : '';
  let end = Math.min(chars.length, start + limit - head.length);
  if (end < chars.length) end -= 1; // room for the closing …
  const tail = end < chars.length ? '…' : '';
  return head + chars.slice(start, end).join('').trim() + tail;
}
