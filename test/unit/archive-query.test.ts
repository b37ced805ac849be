import { test } from 'node:test';
import assert from 'node:assert/strict';
import { docMatches, parseDay, parseQuery } from '../../src/archive/query.js';
import { snippet } from '../../src/archive/snippet.js';
import type { IndexDoc } from '../../src/archive/types.js';

const doc = (d: Partial<IndexDoc> = {}): IndexDoc => ({
  seq: 1,
  time: Date.parse('2026-03-01T10:00:00Z'),
  direction: 'in',
  from: ['alice@corp.test'],
  to: ['bob@x.test'],
  subject: '',
  body: '',
  attachmentNames: [],
  attachmentText: '',
  ...d,
});

test('parseQuery: words, phrases and inline filters', () => {
  assert.deepEqual(parseQuery('invoice "報價 單" from:alice@corp.test to:@x.test since:2026-03-01 until:2026-03-01 direction:OUT'), {
    text: 'invoice "報價 單"',
    from: 'alice@corp.test',
    to: '@x.test',
    since: Date.parse('2026-03-01T00:00:00.000Z'),
    until: Date.parse('2026-03-01T23:59:59.999Z'),
    direction: 'out',
  });
  assert.deepEqual(parseQuery(''), { text: '' });
  assert.deepEqual(parseQuery('from:x.test'), { text: '', from: 'x.test' });
});

test('parseQuery: a filter in quotes, or an unknown prefix, is text', () => {
  assert.deepEqual(parseQuery('"from:bob" re:報價 http://x.test'), { text: '"from:bob" re:報價 http://x.test' });
  // An unclosed quote runs to the end; an empty phrase is nothing.
  assert.deepEqual(parseQuery('a "b c'), { text: 'a "b c"' });
  assert.deepEqual(parseQuery('"" x'), { text: 'x' });
});

test('parseQuery: one clear line naming the bad part', () => {
  const cases: [string, RegExp][] = [
    ['since:2026-13-01', /^since: bad date "2026-13-01" \(expected YYYY-MM-DD\)$/],
    ['until:2026-02-30', /^until: bad date "2026-02-30"/],
    ['since:yesterday', /^since: bad date "yesterday"/],
    ['since:2026-3-1', /^since: bad date "2026-3-1"/],
    ['direction:sideways', /^direction: unknown direction "sideways" \(in, out or internal\)$/],
    ['from:', /^from: needs a value/],
    ['from:a@b.test from:c@d.test', /^from: given twice$/],
    ['since:2026-03-02 until:2026-03-01', /^since: is after until:$/],
    [Array.from({ length: 300 }, (_, i) => `w${i}`).join(' '), /^query: too many words \(300 search terms; at most 256\)$/],
  ];
  for (const [q, re] of cases) assert.throws(() => parseQuery(q), { message: re }, q);
});

test('parseDay: whole UTC days, until inclusive to the last millisecond', () => {
  assert.equal(parseDay('2024-02-29', 'since'), Date.UTC(2024, 1, 29));
  assert.equal(parseDay('2024-02-29', 'until'), Date.UTC(2024, 2, 1) - 1);
  assert.throws(() => parseDay('2023-02-29', 'since'), /bad date/);
});

test('docMatches: every term must be present (AND), in any field', () => {
  const d = doc({ subject: 'Quarterly 報價單', body: 'the invoices are attached', attachmentNames: ['合約.pdf'] });
  for (const q of ['報價', '價單', 'invoice', 'invoiced quarterly', '合約', 'pdf', 'alice', 'corp.test', 'bob@x.test']) assert.ok(docMatches(d, parseQuery(q)), q);
  for (const q of ['報價 receipt', '價格', 'invoice 合同', '!!!']) assert.ok(!docMatches(d, parseQuery(q)), q);
});

test('docMatches: from/to filters take an address or an exact domain', () => {
  const d = doc({ from: ['Alice <alice@corp.test>'], to: ['bob@x.test', 'carol@sub.y.test'] });
  const yes = ['from:alice@corp.test', 'from:corp.test', 'from:@corp.test', 'to:bob@x.test', 'to:x.test', 'to:sub.y.test', 'to:CAROL@SUB.Y.TEST'];
  const no = ['from:bob@x.test', 'from:x.test', 'to:alice@corp.test', 'to:y.test', 'from:corp', 'to:bob@corp.test'];
  for (const q of yes) assert.ok(docMatches(d, parseQuery(q)), q);
  for (const q of no) assert.ok(!docMatches(d, parseQuery(q)), q);
});

test('docMatches: direction and the since/until days', () => {
  const d = doc({ direction: 'internal', time: Date.parse('2026-03-01T23:59:59.999Z') });
  assert.ok(docMatches(d, parseQuery('direction:internal')));
  assert.ok(!docMatches(d, parseQuery('direction:in')));
  assert.ok(docMatches(d, parseQuery('since:2026-03-01 until:2026-03-01')));
  assert.ok(!docMatches(d, parseQuery('since:2026-03-02')));
  assert.ok(!docMatches(d, parseQuery('until:2026-02-28')));
  assert.ok(docMatches({ ...d, time: Date.parse('2026-03-02T00:00:00Z') }, parseQuery('since:2026-03-02')));
  assert.ok(docMatches(d, parseQuery('')), 'no condition at all matches everything');
});

test('snippet: around the first match, whitespace collapsed, … at cut ends', () => {
  const text = `${'lorem ipsum\n\n '.repeat(40)}請看報價單  ${'dolor sit '.repeat(40)}`;
  const s = snippet(text, '報價', 80);
  assert.ok(s.includes('報價單'), s);
  assert.ok(s.startsWith('…') && s.endsWith('…'), s);
  assert.ok(Array.from(s).length <= 80, `${Array.from(s).length}`);
  assert.ok(!/\s\s|\n/.test(s));
  const e = snippet(`${'filler words here '.repeat(30)}We sent the INVOICES yesterday.`, 'invoice', 60);
  assert.ok(e.includes('INVOICES'), e);
  assert.ok(e.startsWith('…') && !e.endsWith('…'), e);
});

test('snippet: the start of the text when nothing matches, or when there is no query', () => {
  const text = `first words ${'x y '.repeat(200)}`;
  assert.equal(snippet(text, '報價', 20), 'first words x y x y…');
  assert.equal(snippet(text, '', 20), snippet(text, '報價', 20));
  assert.equal(snippet('short text', 'short'), 'short text');
  assert.equal(snippet('', 'x'), '');
});

test('snippet never throws on any input', () => {
  const inputs: unknown[] = [null, undefined, 42, {}, '\uD800\uDC00\uD800', '\u0000'.repeat(10), '報'.repeat(300_000)];
  for (const t of inputs) for (const q of [null, '', '報', '"NEAR(*', '\uDFFF'] as unknown[]) for (const max of [0, -1, NaN, 1, 160, Infinity]) {
    assert.doesNotThrow(() => snippet(t as string, q as string, max));
  }
  assert.equal(typeof snippet(null as unknown as string, 'x'), 'string');
});
