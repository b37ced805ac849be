import { createHmac } from 'node:crypto';
import { stemmer } from 'stemmer';
import type { IndexDoc, SearchQuery } from './types.js';

/**
 * The one tokenizer of the archive: what a message is indexed by, what a query looks for
 * and what a legal hold matches at purge time all come from here, so the three agree.
 *
 * - Text is NFKC-normalised (full-width letters and digits become ASCII) and lower-cased.
 * - A run of CJK characters (Han, kana, hangul) becomes overlapping bigrams: 報價單 gives
 *   報價 and 價單, so the two-character word 報價 is found inside it without a segmenter.
 *   A run of one character is that character; a message is indexed by its single
 *   characters too, so a one-character query finds it.
 * - Other words (letters and digits) are Porter-stemmed when plain a-z (invoice, invoices
 *   and invoiced all give "invoic"); words of one character are dropped (noise with huge
 *   posting lists); words longer than MAX_WORD are cut to it.
 * - An e-mail address gives itself and its domain as terms, besides its words.
 * - Filter terms carry their field: from:a@b.test, from:@b.test, to:..., dir:in.
 */

const CJK = String.raw`\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\u30FC\u3005`;
/** A CJK run, or a word of other letters/digits (marks kept inside a word). */
export const TOKEN = new RegExp(String.raw`[${CJK}]+|(?:(?![${CJK}])[\p{L}\p{N}\p{M}])+`, 'gu');
export const CJK_RUN = new RegExp(String.raw`^[${CJK}]`, 'u');
/** Characters of an address's local part and of its domain inside free text; no CJK (請寄到bob@x.test is bob@x.test). */
const LOCAL_CHAR = new RegExp(String.raw`^(?![${CJK}])[\p{L}\p{N}._%+\-]$`, 'u');
const DOMAIN_CHAR = new RegExp(String.raw`^(?![${CJK}])[\p{L}\p{N}.\-]$`, 'u');
const PLAIN_WORD = /^[a-z]+$/;
const MIN_WORD = 2;
const MAX_WORD = 40;

export function normalize(s: string): string {
  return s.normalize('NFKC').toLowerCase();
}

/**
 * Pushes the terms of one CJK run: overlapping bigrams, or the character itself. A message
 * also gets every single character (`unigrams`), so a one-character query (a surname such
 * as 王) finds 王小明; a longer query looks only for its bigrams, which imply them.
 */
function cjkTerms(run: string, out: string[], unigrams: boolean): void {
  const chars = Array.from(run);
  if (chars.length === 1 || unigrams) out.push(...chars);
  for (let i = 0; i + 1 < chars.length; i++) out.push(chars[i]! + chars[i + 1]!);
}

/** The term of one non-CJK word, or null for a word too short to be worth indexing. */
export function wordTerm(word: string): string | null {
  const chars = Array.from(word);
  if (chars.length < MIN_WORD) return null;
  const w = chars.length > MAX_WORD ? chars.slice(0, MAX_WORD).join('') : word;
  return PLAIN_WORD.test(w) && w.length > 2 ? stem(w) : w;
}

/**
 * Porter stems, remembered: stemming was a third of the cost of indexing a message, and
 * word frequencies are Zipfian, so a bounded memo (emptied when full) spares nearly all of
 * it. The function is pure, so sharing the memo across callers is safe.
 */
const stems = new Map<string, string>();
const STEMS_MAX = 100_000;
function stem(w: string): string {
  let s = stems.get(w);
  if (s === undefined) {
    s = stemmer(w);
    if (stems.size >= STEMS_MAX) stems.clear();
    stems.set(w, s);
  }
  return s;
}

/** Terms of already-normalised text, in order, with repeats. */
function termsOfNormalized(text: string, out: string[], unigrams = false): void {
  for (const m of text.matchAll(TOKEN)) {
    const tok = m[0];
    if (CJK_RUN.test(tok)) cjkTerms(tok, out, unigrams);
    else {
      const t = wordTerm(tok);
      if (t !== null) out.push(t);
    }
  }
  addressesIn(text, out);
}

/**
 * Pushes each address in free text and its domain. Grown outwards from each '@' rather than
 * matched by a regular expression, which backtracks quadratically over a long word with no
 * '@' (100 KB of letters took 30 s).
 */
function addressesIn(text: string, out: string[]): void {
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
    let start = at;
    while (start > 0 && LOCAL_CHAR.test(text[start - 1]!)) start--;
    let end = at + 1;
    while (end < text.length && DOMAIN_CHAR.test(text[end]!)) end++;
    const local = text.slice(start, at).replace(/^[.\-]+/, '');
    const domain = text.slice(at + 1, end).replace(/^[.\-]+|[.\-]+$/g, '');
    if (local && /[^.]\.[^.]/.test(domain)) out.push(`${local}@${domain}`, domain);
  }
}

/** Words, CJK bigrams and addresses of free text (with repeats, in text order). */
export function textTerms(text: string): string[] {
  const out: string[] = [];
  termsOfNormalized(normalize(text), out);
  return out;
}

/** A header or envelope address as one canonical string: `Name <A@B.test>` -> a@b.test. */
export function normAddress(s: string): string {
  const n = normalize(s).trim();
  const angle = /<([^<>]*)>/.exec(n);
  return (angle ? angle[1]! : n).trim().replace(/\.+$/, '');
}

function domainOf(address: string): string | null {
  const at = address.lastIndexOf('@');
  return at >= 0 && at < address.length - 1 ? address.slice(at + 1) : null;
}

/** from:/to: terms of the addresses of a field: the address, and its domain. */
function fieldTerms(field: 'from' | 'to', addresses: string[], out: string[]): void {
  for (const raw of addresses) {
    const a = normAddress(raw);
    if (!a) continue;
    const domain = domainOf(a);
    if (domain) out.push(`${field}:@${domain}`);
    if (a.indexOf('@') > 0) out.push(`${field}:${a}`);
    // The field is searched as text too: a display name's words, the address and its domain.
    termsOfNormalized(normalize(raw), out);
  }
}

/** Every plain term of a message, de-duplicated. */
export function termsOfDoc(doc: IndexDoc): string[] {
  const out: string[] = [`dir:${doc.direction}`];
  fieldTerms('from', doc.from, out);
  fieldTerms('to', doc.to, out);
  for (const text of [doc.subject, doc.body, ...doc.attachmentNames, doc.attachmentText]) termsOfNormalized(normalize(text), out, true);
  return [...new Set(out)];
}

/**
 * The term a --from/--to filter looks for: an address (a@b.test) matches that address;
 * a domain (b.test or @b.test) matches addresses at that domain exactly (not sub-domains).
 */
export function filterTerm(field: 'from' | 'to', value: string): string {
  const a = normAddress(value);
  if (a.startsWith('@')) return `${field}:${a}`;
  return a.includes('@') ? `${field}:${a}` : `${field}:@${a}`;
}

export type TermQuery = Omit<SearchQuery, 'limit' | 'before'>;

/**
 * The most terms a query may look for. FTS5 takes any number, but each costs a posting
 * lookup: 15,000 took seconds of the index worker, which a search must not hold so long.
 */
export const MAX_QUERY_TERMS = 256;

/** The one-line refusal of a query with more terms than MAX_QUERY_TERMS, or null. */
export function tooManyTerms(terms: string[]): string | null {
  return terms.length > MAX_QUERY_TERMS ? `query: too many words (${terms.length} search terms; at most ${MAX_QUERY_TERMS})` : null;
}

export interface QueryTerms {
  /** Plain terms that must all be present (AND), de-duplicated. */
  terms: string[];
  /** The text had something in it but no searchable term (only punctuation, say): nothing matches. */
  matchesNothing: boolean;
}

/** The terms a query looks for: its text's terms and its from/to/direction filters. */
export function queryTerms(q: TermQuery): QueryTerms {
  const text = textTerms(q.text.replace(/"/g, ' '));
  const out = [...text];
  if (q.from !== undefined && q.from.trim()) out.push(filterTerm('from', q.from));
  if (q.to !== undefined && q.to.trim()) out.push(filterTerm('to', q.to));
  if (q.direction) out.push(`dir:${q.direction}`);
  return { terms: [...new Set(out)], matchesNothing: text.length === 0 && q.text.trim() !== '' };
}

const TERM_KEY_BYTES = 32;
const CACHE_MAX = 200_000;

/**
 * Turns a term into an opaque token: HMAC-SHA256 under the archive's term key, first 8 bytes
 * as 16 hex characters. The index file holds only these, so a copied data disk does not
 * show which words the archived mail contains (a dictionary attack needs the key). 64 bits
 * make a collision (a false hit) negligible at any archive size the box can hold.
 */
export class TermHasher {
  private readonly cache = new Map<string, string>();
  constructor(private readonly key: Buffer) {
    if (key.length !== TERM_KEY_BYTES) throw new Error(`archive term key: expected ${TERM_KEY_BYTES} bytes, got ${key.length}`);
  }

  token(term: string): string {
    let t = this.cache.get(term);
    if (t === undefined) {
      t = createHmac('sha256', this.key).update(term, 'utf8').digest('hex').slice(0, 16);
      // Word frequencies are Zipfian: a bounded cache spares most HMACs; emptied when full.
      if (this.cache.size >= CACHE_MAX) this.cache.clear();
      this.cache.set(term, t);
    }
    return t;
  }

  tokens(terms: string[]): string[] {
    return terms.map((t) => this.token(t));
  }
}
