import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteIndex, type SqliteArchiveIndex } from '../../src/archive/index-sqlite.js';
import { docMatches, parseQuery } from '../../src/archive/query.js';
import type { Direction, IndexDoc, SearchQuery } from '../../src/archive/types.js';

const KEY = Buffer.alloc(32, 0x5a);
const T0 = Date.parse('2026-03-01T00:00:00Z');
const HOUR = 3_600_000;

const doc = (seq: number, d: Partial<IndexDoc> = {}): IndexDoc => ({
  seq,
  time: T0 + seq * HOUR,
  direction: 'in',
  from: ['someone@elsewhere.test'],
  to: ['staff@corp.test'],
  subject: 'hello',
  body: 'nothing much',
  attachmentNames: [],
  attachmentText: '',
  ...d,
});

async function withIndex(fn: (idx: SqliteArchiveIndex, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'archive-index-'));
  const idx = await openSqliteIndex(join(dir, 'archive-index'), KEY);
  try {
    await fn(idx, join(dir, 'archive-index'));
  } finally {
    await idx.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const all = async (idx: SqliteArchiveIndex, q: Omit<SearchQuery, 'limit'>) => (await idx.search({ limit: 1000, ...q })).seqs;

test('報價 is found in the subject, the body and an attachment name; invoice finds invoices', () =>
  withIndex(async (idx) => {
    await idx.add([
      doc(1, { subject: '報價單 第二版' }),
      doc(2, { body: '請看報價。謝謝' }),
      doc(3, { attachmentNames: ['2026報價.xlsx'] }),
      doc(4, { subject: '價格', body: '報告 價單' }),
      doc(5, { body: 'Two invoices attached' }),
      doc(6, { attachmentText: 'this was invoiced last week' }),
      doc(7, { subject: 'voice mail' }),
    ]);
    assert.deepEqual(await all(idx, { text: '報價' }), [3, 2, 1]);
    assert.deepEqual(await all(idx, { text: 'invoice' }), [6, 5]);
    assert.deepEqual(await all(idx, { text: 'INVOICES 報價' }), []);
    assert.deepEqual(await all(idx, { text: '報價單' }), [1]);
    // One character finds it anywhere in a run.
    assert.deepEqual(await all(idx, { text: '價' }), [4, 3, 2, 1]);
  }));

test('from, to, direction, since and until filter, alone and with words', () =>
  withIndex(async (idx) => {
    const dirs: Direction[] = ['in', 'out', 'internal'];
    await idx.add(
      Array.from({ length: 12 }, (_, i) =>
        doc(i + 1, {
          direction: dirs[i % 3]!,
          from: [i % 2 ? 'Alice <alice@corp.test>' : 'bob@x.test'],
          to: [i % 4 === 0 ? 'carol@sub.x.test' : 'dave@corp.test'],
          subject: i % 3 === 0 ? 'quarterly report' : 'lunch',
        }),
      ),
    );
    assert.deepEqual(await all(idx, { text: '', from: 'alice@corp.test' }), [12, 10, 8, 6, 4, 2]);
    assert.deepEqual(await all(idx, { text: '', from: '@x.test' }), [11, 9, 7, 5, 3, 1]);
    assert.deepEqual(await all(idx, { text: '', to: 'x.test' }), [], 'a sub-domain is not the domain');
    assert.deepEqual(await all(idx, { text: '', to: 'sub.x.test' }), [9, 5, 1]);
    assert.deepEqual(await all(idx, { text: '', direction: 'out' }), [11, 8, 5, 2]);
    assert.deepEqual(await all(idx, { text: 'report', direction: 'in' }), [10, 7, 4, 1]);
    assert.deepEqual(await all(idx, { text: 'report', from: 'corp.test' }), [10, 4]);
    // Times are T0 + seq hours.
    assert.deepEqual(await all(idx, { text: '', since: T0 + 10 * HOUR }), [12, 11, 10]);
    assert.deepEqual(await all(idx, { text: '', until: T0 + 2 * HOUR }), [2, 1]);
    assert.deepEqual(await all(idx, { text: 'report', since: T0 + 4 * HOUR, until: T0 + 9 * HOUR }), [7, 4]);
    assert.deepEqual(await all(idx, { text: 'lunch', direction: 'internal', until: T0 + 6 * HOUR }), [6, 3]);
  }));

test('paging: newest first, `before` as the cursor, `more` until the last page', () =>
  withIndex(async (idx) => {
    await idx.add(Array.from({ length: 25 }, (_, i) => doc(i + 1, { subject: i % 2 ? 'invoice' : 'memo' })));
    const pages: number[][] = [];
    let before: number | undefined;
    for (;;) {
      const r = await idx.search({ text: 'invoices', limit: 5, before });
      pages.push(r.seqs);
      if (!r.more) break;
      before = r.seqs.at(-1);
    }
    assert.deepEqual(pages, [[24, 22, 20, 18, 16], [14, 12, 10, 8, 6], [4, 2]]);
    const everything = await idx.search({ text: '', limit: 10, before: 20 });
    assert.deepEqual(everything, { seqs: [19, 18, 17, 16, 15, 14, 13, 12, 11, 10], more: true });
    assert.deepEqual(await idx.search({ text: '', limit: 30 }), { seqs: Array.from({ length: 25 }, (_, i) => 25 - i), more: false });
    await assert.rejects(idx.search({ text: '', limit: 0 }), /limit must be a positive whole number/);
  }));

test('remove, re-add, clear and indexedUpTo', () =>
  withIndex(async (idx) => {
    assert.equal(await idx.indexedUpTo(), 0);
    await idx.add([doc(1, { subject: 'invoice' }), doc(2, { subject: 'invoice' }), doc(3, { subject: 'invoice' })]);
    assert.equal(await idx.indexedUpTo(), 3);
    await idx.remove([3, 1, 99]);
    assert.deepEqual(await all(idx, { text: 'invoice' }), [2]);
    assert.deepEqual(await all(idx, { text: '' }), [2]);
    assert.equal(await idx.indexedUpTo(), 3, 'a purged newest message does not move the catch-up point back');
    // Indexing a seq again replaces its terms.
    await idx.add([doc(2, { subject: 'receipt' })]);
    assert.deepEqual(await all(idx, { text: 'invoice' }), []);
    assert.deepEqual(await all(idx, { text: 'receipt' }), [2]);
    await idx.clear();
    assert.equal(await idx.indexedUpTo(), 0);
    assert.deepEqual(await all(idx, { text: '' }), []);
    assert.deepEqual(await all(idx, { text: 'receipt' }), []);
    await idx.add([doc(4, { subject: 'receipt' })]);
    assert.deepEqual(await all(idx, { text: 'receipt' }), [4]);
  }));

test('reopening keeps the data; a wrong-length key is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'archive-index-'));
  try {
    const a = await openSqliteIndex(dir, KEY);
    await a.add([doc(1, { subject: '報價' }), doc(2, { subject: 'invoice' })]);
    await a.close();
    const b = await openSqliteIndex(dir, KEY);
    assert.deepEqual(await all(b, { text: '報價' }), [1]);
    assert.deepEqual(await all(b, { text: 'invoices' }), [2]);
    assert.equal(await b.indexedUpTo(), 2);
    await b.close();
    // Another key makes other tokens: the same files find nothing (the key is the index's).
    const c = await openSqliteIndex(dir, Buffer.alloc(32, 1));
    assert.deepEqual(await all(c, { text: '報價' }), []);
    await c.close();
    await assert.rejects(openSqliteIndex(dir, Buffer.alloc(31)), /term key: expected 32 bytes, got 31/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a folder that cannot hold the database is refused with its path named', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'archive-index-'));
  try {
    // A folder where the database file should be.
    const bad = join(dir, 'idx');
    await openSqliteIndex(join(bad, 'index.sqlite'), KEY).then((i) => i.close());
    await assert.rejects(openSqliteIndex(bad, KEY), (err: Error) => err.message.includes(bad) && /cannot open/.test(err.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hostile queries neither raise an SQL error nor match wrongly', () =>
  withIndex(async (idx) => {
    await idx.add([
      doc(1, { subject: 'near or not', body: 'a * b ^ c - d' }),
      doc(2, { subject: 'invoice' }),
      doc(3, { subject: '報價' }),
    ]);
    const hostile = [
      '"',
      '"""',
      'invoice"',
      '*',
      'invoice*',
      'NEAR(',
      'NEAR(invoice 報價)',
      'invoice OR 報價',
      'invoice AND NOT 報價',
      '-invoice',
      '^invoice',
      'invoice NOT',
      '\u0000',
      'invoice\u0000',
      '(((',
      ')',
      '{t}: invoice',
      't:invoice',
      'invoice:',
      '!!! ??? ...',
      '\uD800',
      `${'invoice '.repeat(12_500)}`, // 100 KB
      'x'.repeat(100_000),
      '報'.repeat(30_000),
    ];
    for (const text of hostile) {
      const r = await idx.search({ text, limit: 10 });
      // The index answers what the in-memory matcher answers, whatever the text.
      const want = [3, 2, 1].filter((s) => docMatches(doc(s, s === 1 ? { subject: 'near or not', body: 'a * b ^ c - d' } : { subject: s === 2 ? 'invoice' : '報價' }), { text }));
      assert.deepEqual(r.seqs, want, JSON.stringify(text.slice(0, 30)));
    }
    // Thousands of different words: a clear refusal, not an SQL error nor a worker held for seconds.
    const many = Array.from({ length: 5000 }, (_, i) => `w${i.toString(36)}`).join(' ');
    await assert.rejects(idx.search({ text: many, limit: 10 }), { message: /^archive index: query: too many words \(\d+ search terms; at most 256\)$/ });
    await assert.rejects(idx.search({ text: 'x', limit: 10, before: Number.NaN }), { message: 'archive index: search: before must be a number, got NaN' });
    // Spelled-out operators are words: "or" and "near" are in doc 1 only.
    assert.deepEqual(await all(idx, { text: 'invoice OR 報價' }), []);
    assert.deepEqual(await all(idx, { text: 'NEAR or' }), [1]);
    assert.deepEqual(await all(idx, { text: 'invoice"' }), [2]);
    assert.deepEqual(await all(idx, { text: '', from: '" OR *' }), []);
  }));

test('the index agrees with the in-memory matcher (holds) over a mixed corpus', () =>
  withIndex(async (idx) => {
    const words = ['invoice', 'invoices', 'report', 'meeting', '報價單', '合約', '會議', '發票', 'shipment', '2026'];
    const people = ['alice@corp.test', 'bob@x.test', 'carol@sub.x.test', 'Dan <dan@corp.test>'];
    const dirs: Direction[] = ['in', 'out', 'internal'];
    let r = 7;
    const rnd = (n: number) => ((r = (r * 1103515245 + 12345) % 2147483648), r % n);
    const docs = Array.from({ length: 300 }, (_, i) =>
      doc(i + 1, {
        direction: dirs[rnd(3)]!,
        from: [people[rnd(4)]!],
        to: [people[rnd(4)]!, people[rnd(4)]!],
        subject: `${words[rnd(10)]} ${words[rnd(10)]}`,
        body: `${words[rnd(10)]}，${words[rnd(10)]}`,
        attachmentNames: rnd(5) === 0 ? [`${words[rnd(10)]}.pdf`] : [],
      }),
    );
    await idx.add(docs);
    const queries = ['invoice', '報價', '價單 合約', '會', '王', 'report from:corp.test', 'to:bob@x.test 會議', 'direction:out pdf', 'since:2026-03-05 until:2026-03-08', 'shipment to:sub.x.test direction:internal', '發票 2026', ''];
    let found = 0;
    for (const s of queries) {
      const q = parseQuery(s);
      const want = docs.filter((d) => docMatches(d, q)).map((d) => d.seq).reverse();
      if (want.length) found++;
      assert.deepEqual(await all(idx, q), want, s);
    }
    assert.ok(found >= 8, `most queries have matches in the corpus (${found})`);
  }));

test('the files of the index hold no word of the mail (encrypted at rest means the index too)', () =>
  withIndex(async (idx, dir) => {
    await idx.add(
      Array.from({ length: 50 }, (_, i) =>
        doc(i + 1, { subject: `invoice 報價 ${i}`, body: 'Please find the invoices: 請看報價。', from: ['secretive@hidden-domain.test'], attachmentNames: ['報價.xlsx'] }),
      ),
    );
    assert.deepEqual((await all(idx, { text: 'invoice 報價', from: 'hidden-domain.test' })).length, 50);
    // Read the files while open (WAL too) and after a checkpoint at close.
    const check = (when: string) => {
      const files = readdirSync(dir);
      assert.ok(files.length > 0);
      for (const f of files) {
        const bytes = readFileSync(join(dir, f));
        for (const word of ['invoice', 'invoic', 'secretive', 'hidden-domain', 'xlsx', '報價']) assert.equal(bytes.indexOf(Buffer.from(word, 'utf8')), -1, `${word} in ${f} (${when})`);
      }
    };
    check('open');
    await idx.add([doc(51, { subject: 'invoice' })]);
    check('open, more');
  }));

test('the event loop turns while a batch is indexed (SQLite runs in the worker)', () =>
  withIndex(async (idx) => {
    const batch = Array.from({ length: 3000 }, (_, i) => doc(i + 1, { body: `invoice ${'報價單據 lorem ipsum dolor '.repeat(40)} ${i}` }));
    let turned = false;
    setImmediate(() => (turned = true));
    const added = idx.add(batch).then(() => turned);
    assert.equal(await added, true, 'a timer ran before the batch was indexed');
    assert.equal((await idx.search({ text: 'invoice', limit: 1 })).seqs[0], 3000);
  }));
