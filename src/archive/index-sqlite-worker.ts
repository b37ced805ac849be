import { parentPort, workerData } from 'node:worker_threads';
import { lowerThreadPriority } from './thread-priority.js';
import Database from 'better-sqlite3';
import { TermHasher, queryTerms, termsOfDoc, tooManyTerms } from './tokenize.js';
import type { IndexDoc, SearchQuery, SearchResult } from './types.js';

/**
 * The archive index's database, in a worker thread of its own: better-sqlite3 is
 * synchronous, and tokenizing, hashing and inserting a batch of mail (or walking a long
 * posting list) would otherwise stall the daemon's event loop, which serves SMTP.
 * Requests come one at a time over the port and are answered in order.
 */

export type IndexRequest =
  | { id: number; op: 'add'; docs: IndexDoc[] }
  | { id: number; op: 'remove'; seqs: number[] }
  | { id: number; op: 'search'; q: SearchQuery }
  | { id: number; op: 'indexedUpTo' }
  | { id: number; op: 'clear' }
  | { id: number; op: 'close' };

export type IndexReply = { id: number; ok: true; result?: unknown } | { id: number; ok: false; error: string } | { ready: true } | { ready: false; error: string };

export interface IndexWorkerData {
  file: string;
  termKey: Uint8Array;
}

const SCHEMA = `
  -- The terms of a message, as hashed tokens (hex), space-separated; nothing readable.
  -- Contentless (the text lives in the store), rowid = chain seq; detail=none: the terms
  -- are a de-duplicated set, so positions and columns would be dead weight.
  CREATE VIRTUAL TABLE IF NOT EXISTS terms USING fts5(t, content='', contentless_delete=1, detail=none, tokenize='ascii');
  CREATE TABLE IF NOT EXISTS docs(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL);
  CREATE INDEX IF NOT EXISTS docs_time ON docs(time);
  CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);
`;

function open(file: string) {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode may lose the last transactions at a power cut, never corrupt the
  // file. The index is derived from the store: indexedUpTo() tells the archive where to
  // catch up from at start, so a lost tail costs a re-index of a few messages, not mail.
  db.pragma('synchronous = NORMAL');
  db.exec(SCHEMA);
  return db;
}

function serve(data: IndexWorkerData) {
  const port = parentPort!;
  let db: ReturnType<typeof open>;
  try {
    db = open(data.file);
  } catch (err) {
    port.postMessage({ ready: false, error: (err as Error).message } satisfies IndexReply);
    return;
  }
  const hasher = new TermHasher(Buffer.from(data.termKey));
  const st = {
    put: db.prepare('INSERT OR REPLACE INTO terms(rowid, t) VALUES (?, ?)'),
    putDoc: db.prepare('INSERT OR REPLACE INTO docs(seq, time) VALUES (?, ?)'),
    del: db.prepare('DELETE FROM terms WHERE rowid = ?'),
    delDoc: db.prepare('DELETE FROM docs WHERE seq = ?'),
    upTo: db.prepare("SELECT v FROM meta WHERE k = 'upTo'").pluck(),
    setUpTo: db.prepare("INSERT INTO meta(k, v) VALUES ('upTo', ?) ON CONFLICT(k) DO UPDATE SET v = max(v, excluded.v)"),
    // FTS5 walks its posting lists newest first and stops after LIMIT rows: the rowid
    // bound and the order are handled inside the virtual table, so nothing is sorted.
    // CROSS JOIN keeps the FTS table the outer loop when a time range needs docs.
    match: db.prepare('SELECT rowid FROM terms WHERE terms MATCH ? AND rowid < ? ORDER BY rowid DESC LIMIT ?').pluck(),
    matchTimed: db
      .prepare('SELECT terms.rowid FROM terms CROSS JOIN docs ON docs.seq = terms.rowid WHERE terms MATCH ? AND terms.rowid < ? AND docs.time BETWEEN ? AND ? ORDER BY terms.rowid DESC LIMIT ?')
      .pluck(),
    // The newest message at or before `until`, found from whichever end is nearer (see untilBound).
    lastUntilFromNewest: db.prepare('SELECT max(seq) FROM docs NOT INDEXED WHERE time <= ?').pluck(),
    lastUntilFromOldest: db.prepare('SELECT max(seq) FROM docs INDEXED BY docs_time WHERE time <= ?').pluck(),
    ends: db.prepare('SELECT (SELECT time FROM docs ORDER BY seq LIMIT 1) AS oldest, (SELECT time FROM docs ORDER BY seq DESC LIMIT 1) AS newest'),
    // NOT INDEXED: newest first down the primary key, stopping at LIMIT; with the time
    // index the planner took every row in the range and sorted them (95 ms at 200k).
    list: db.prepare('SELECT seq FROM docs NOT INDEXED WHERE seq < ? AND time BETWEEN ? AND ? ORDER BY seq DESC LIMIT ?').pluck(),
  };

  const add = db.transaction((docs: IndexDoc[]) => {
    let top = 0;
    for (const d of docs) {
      st.put.run(d.seq, hasher.tokens(termsOfDoc(d)).join(' '));
      st.putDoc.run(d.seq, d.time);
      top = Math.max(top, d.seq);
    }
    if (docs.length) st.setUpTo.run(top);
  });
  const remove = db.transaction((seqs: number[]) => {
    for (const s of seqs) {
      st.del.run(s);
      st.delDoc.run(s);
    }
  });
  const clear = db.transaction(() => {
    // 'delete-all' drops the FTS segments at once; a DELETE would tombstone every row.
    db.exec("INSERT INTO terms(terms) VALUES ('delete-all'); DELETE FROM docs; DELETE FROM meta WHERE k = 'upTo';");
  });

  /**
   * One more than the highest seq whose time is at or before `until`: FTS5 starts walking
   * its posting lists there, not at the newest match overall (a common word with an old
   * until walked 200,000 postings, 125 ms, at 200k messages). Exact even where arrival
   * times are not in seq order. Counted from the nearer end: walking seqs down from the
   * newest costs the messages after `until`, the time index costs those before it.
   */
  function untilBound(until: number): number {
    const { oldest, newest } = st.ends.get() as { oldest: number | null; newest: number | null };
    if (oldest === null || newest === null || until >= newest) return Number.MAX_SAFE_INTEGER;
    const fromNewest = until - oldest > (newest - oldest) / 2;
    const last = (fromNewest ? st.lastUntilFromNewest : st.lastUntilFromOldest).get(until) as number | null;
    return (last ?? 0) + 1;
  }

  function search(q: SearchQuery): SearchResult {
    if (!Number.isInteger(q.limit) || q.limit < 1) throw new Error(`search: limit must be a positive whole number, got ${q.limit}`);
    for (const k of ['before', 'since', 'until'] as const) {
      if (q[k] !== undefined && !Number.isFinite(q[k])) throw new Error(`search: ${k} must be a number, got ${q[k]}`);
    }
    let before = q.before ?? Number.MAX_SAFE_INTEGER;
    const since = q.since ?? Number.MIN_SAFE_INTEGER;
    const until = q.until ?? Number.MAX_SAFE_INTEGER;
    const { terms, matchesNothing } = queryTerms(q);
    if (matchesNothing) return { seqs: [], more: false };
    const tooMany = tooManyTerms(terms);
    if (tooMany) throw new Error(tooMany);
    let rows: number[];
    if (q.until !== undefined) before = Math.min(before, untilBound(q.until));
    if (terms.length === 0) rows = st.list.all(before, since, until, q.limit + 1) as number[];
    else {
      // Tokens are 16 hex characters from the hasher, quoted: no user text reaches the
      // FTS5 query language, so quotes, NEAR(, OR, *, ^ or - in a query are plain words.
      const match = hasher.tokens(terms).map((t) => `"${t}"`).join(' ');
      rows = (q.since === undefined && q.until === undefined ? st.match.all(match, before, q.limit + 1) : st.matchTimed.all(match, before, since, until, q.limit + 1)) as number[];
    }
    const more = rows.length > q.limit;
    return { seqs: more ? rows.slice(0, q.limit) : rows, more };
  }

  port.on('message', (req: IndexRequest) => {
    try {
      let result: unknown;
      if (req.op === 'add') add(req.docs);
      else if (req.op === 'remove') remove(req.seqs);
      else if (req.op === 'search') result = search(req.q);
      else if (req.op === 'indexedUpTo') result = (st.upTo.get() as number | undefined) ?? 0;
      else if (req.op === 'clear') clear();
      else if (req.op === 'close') {
        db.close();
        port.postMessage({ id: req.id, ok: true } satisfies IndexReply);
        port.close();
        return;
      }
      port.postMessage({ id: req.id, ok: true, result } satisfies IndexReply);
    } catch (err) {
      port.postMessage({ id: req.id, ok: false, error: (err as Error).message } satisfies IndexReply);
    }
  });
  port.postMessage({ ready: true } satisfies IndexReply);
}

// Searching and indexing give way to the thread serving SMTP (thread-priority.ts).
lowerThreadPriority();
serve(workerData as IndexWorkerData);
