import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TermHasher, filterTerm, queryTerms, termsOfDoc, textTerms } from '../../src/archive/tokenize.js';
import type { IndexDoc } from '../../src/archive/types.js';

const doc = (d: Partial<IndexDoc> = {}): IndexDoc => ({
  seq: 1,
  time: Date.parse('2026-03-01T10:00:00Z'),
  direction: 'in',
  from: [],
  to: [],
  subject: '',
  body: '',
  attachmentNames: [],
  attachmentText: '',
  ...d,
});

test('a CJK run becomes overlapping bigrams; a run of one character is that character', () => {
  assert.deepEqual(textTerms('報價單'), ['報價', '價單']);
  assert.deepEqual(textTerms('請看報價。'), ['請看', '看報', '報價']);
  assert.deepEqual(textTerms('單'), ['單']);
  // Simplified, kana and hangul runs the same way; punctuation splits runs.
  assert.deepEqual(textTerms('报价单'), ['报价', '价单']);
  assert.deepEqual(textTerms('カタカナ'), ['カタ', 'タカ', 'カナ']);
  assert.deepEqual(textTerms('한국어'), ['한국', '국어']);
  assert.deepEqual(textTerms('報，價'), ['報', '價']);
});

test('the two-character word is a term of every text that contains it', () => {
  for (const t of ['報價', '報價單', '請看報價。', '這是報價單（草稿）', 'RE: 報價 invoice']) assert.ok(textTerms(t).includes('報價'), t);
});

test('CJK next to Latin splits into a CJK run and a word', () => {
  assert.deepEqual(textTerms('報價invoice2024'), ['報價', 'invoice2024']);
  assert.deepEqual(textTerms('報價 invoices'), ['報價', 'invoic']);
});

test('English words are stemmed: invoice, invoices and invoiced give one term', () => {
  const [a, b, c] = [textTerms('invoice'), textTerms('Invoices'), textTerms('INVOICED')];
  assert.deepEqual(a, b);
  assert.deepEqual(a, c);
  assert.equal(a.length, 1);
});

test('NFKC: full-width letters and digits are the ASCII ones', () => {
  assert.deepEqual(textTerms('ＩＮＶＯＩＣＥ　２０２４'), textTerms('invoice 2024'));
});

test('numbers are kept, one-character words dropped, huge words cut', () => {
  assert.deepEqual(textTerms('a 7 2024 i 12.50'), ['2024', '12', '50']);
  const long = 'x'.repeat(300);
  const [t] = textTerms(long);
  assert.equal(t, 'x'.repeat(40));
  assert.deepEqual(textTerms(long), textTerms(`${long}yz`));
});

test('an address in free text gives itself, its domain and its words', () => {
  const t = textTerms('mail 請寄到Bob.Lee@Mail.Example.test. now');
  for (const x of ['bob.lee@mail.example.test', 'mail.example.test', 'bob', 'lee', 'exampl', 'test']) assert.ok(t.includes(x), x);
  // The CJK before the address is not part of it.
  assert.ok(!t.some((x) => x.includes('到bob')));
});

test('from/to give field-tagged address and domain terms, direction a dir: term', () => {
  const terms = termsOfDoc(doc({ direction: 'out', from: ['Alice Wong <Alice@Corp.test>'], to: ['bob@x.test', 'carol@sub.x.test'] }));
  for (const x of ['dir:out', 'from:alice@corp.test', 'from:@corp.test', 'to:bob@x.test', 'to:@x.test', 'to:@sub.x.test', 'alice@corp.test', 'wong'])
    assert.ok(terms.includes(x), x);
  assert.ok(!terms.includes('from:@x.test'));
  assert.equal(new Set(terms).size, terms.length, 'de-duplicated');
});

test('a filter value is an address or a domain (with or without @)', () => {
  assert.equal(filterTerm('from', 'Bob@X.test'), 'from:bob@x.test');
  assert.equal(filterTerm('from', 'x.test'), 'from:@x.test');
  assert.equal(filterTerm('to', '@X.test'), 'to:@x.test');
  assert.equal(filterTerm('to', '<bob@x.test>'), 'to:bob@x.test');
});

test('the subject, body, attachment names and attachment text are all terms', () => {
  const terms = termsOfDoc(doc({ subject: '報價', body: 'invoices', attachmentNames: ['合約.pdf'], attachmentText: 'quarterly' }));
  for (const x of ['報價', 'invoic', '合約', 'pdf', 'quarterli']) assert.ok(terms.includes(x), x);
});

test('query terms: text terms plus filters; text with nothing searchable matches nothing', () => {
  assert.deepEqual(queryTerms({ text: '"報價單" invoices', from: 'x.test', direction: 'in' }).terms, ['報價', '價單', 'invoic', 'from:@x.test', 'dir:in']);
  assert.deepEqual(queryTerms({ text: '' }), { terms: [], matchesNothing: false });
  assert.deepEqual(queryTerms({ text: '  ' }), { terms: [], matchesNothing: false });
  assert.deepEqual(queryTerms({ text: '!!! ... "' }), { terms: [], matchesNothing: true });
  assert.equal(queryTerms({ text: '?!', from: 'a@b.test' }).matchesNothing, true);
});

test('TermHasher: 16 hex characters, keyed, stable, no readable word', () => {
  const h = new TermHasher(Buffer.alloc(32, 1));
  const t = h.token('invoic');
  assert.match(t, /^[0-9a-f]{16}$/);
  assert.equal(h.token('invoic'), t);
  assert.equal(new TermHasher(Buffer.alloc(32, 1)).token('invoic'), t);
  assert.notEqual(new TermHasher(Buffer.alloc(32, 2)).token('invoic'), t, 'another key gives other tokens');
  assert.notEqual(h.token('報價'), h.token('價單'));
  assert.throws(() => new TermHasher(Buffer.alloc(16)), /term key: expected 32 bytes, got 16/);
});

test('the tokenizer never throws on hostile text, and a 100 KB word takes no time', { timeout: 10_000 }, () => {
  const hostile = ['x'.repeat(100_000), `${'a.'.repeat(50_000)}@`, `@${'b.'.repeat(50_000)}`, 'a@'.repeat(50_000), '\u0000', '\uD800', '\uDFFF\uD800', '"'.repeat(1000), 'NEAR(a b)', '*^-', '\u200B\u200D', '@@@.@', 'a@', '@b', `${'報'.repeat(50_000)}`];
  for (const s of hostile) assert.doesNotThrow(() => textTerms(s), JSON.stringify(s.slice(0, 20)));
  assert.equal(textTerms('報'.repeat(50_000)).length, 49_999);
});

test('a message is indexed by its single CJK characters too; a query only by its bigrams', () => {
  const terms = termsOfDoc(doc({ subject: '王小明的報價單' }));
  for (const x of ['王', '小', '明', '王小', '報價', '價單']) assert.ok(terms.includes(x), x);
  assert.deepEqual(queryTerms({ text: '王小明' }).terms, ['王小', '小明']);
  assert.deepEqual(queryTerms({ text: '王' }).terms, ['王']);
});
