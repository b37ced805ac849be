/**
 * Which engine for the archive's search index: SQLite FTS5 (better-sqlite3) or LevelDB
 * (`level`, already a dependency) with an inverted index of our own. Issue 14 asks to choose
 * by measurement; this is the measurement. Both engines get the same synthetic corpus and the
 * same tokens, and answer the same 50 queries; their answers are compared, so a faster engine
 * that finds less cannot win.
 *
 * The corpus (deterministic, seeded): mail-like documents in Traditional Chinese, English or
 * both, body size log-normal with a median of about 4 KiB and a long tail; words drawn with
 * Zipf frequencies (Chinese words made of a few thousand characters, English words with
 * plural and inflected forms); senders and recipients from a few hundred domains; an order
 * number per mail (a token found in one document only).
 *
 * Tokens, the same for both engines, as the real index keeps them: Chinese character bigrams,
 * lower-cased English words with a crude stem, addresses and domains, each HMAC-hashed to
 * 16 hex characters so the disk does not show the words. Deduplicated per document (neither
 * engine keeps positions: FTS5 runs with detail=none, the LevelDB index stores doc ids only).
 *
 *   node dist/test/bench/archive/index-choice.js
 *   INDEX_CHOICE_DOCS=200000   documents (default 200,000)
 *   INDEX_CHOICE_BATCH=1000    documents per ingest batch (one transaction / one LevelDB batch)
 *   INDEX_CHOICE_ROUNDS=1      rounds; the second one runs the engines in the other order
 *   INDEX_CHOICE_DIR=/path     where the indexes go (default: a temp folder, removed at the end)
 *   INDEX_CHOICE_ENGINES=sqlite,level   engines to run (sqlite | level | level-nomerge)
 *   INDEX_CHOICE_MERGE_DOCS=20000       level: documents in the fresh tier before a merge
 *
 * Measured 2026-12-05, 200,000 documents, batches of 1000, 2 cores shared (load ~5): FTS5
 * 933 docs/s, 1292 B/doc, warm search p50/p95/p99 0.20/0.39/3.8 ms; LevelDB blocks per batch
 * 659 docs/s, 2722 B/doc, 0.26/1.87/5.8 ms; LevelDB with merging 503 docs/s, 2999 B/doc and
 * 4.7/153/322 ms (the merge's deletes leave LevelDB a compaction backlog that searches then
 * wade through). All three gave the same answers to the 50 queries. Hence FTS5.
 */
import { createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';

const DOCS = Number(process.env.INDEX_CHOICE_DOCS ?? '200000');
const BATCH = Number(process.env.INDEX_CHOICE_BATCH ?? '1000');
const ROUNDS = Math.max(1, Number(process.env.INDEX_CHOICE_ROUNDS ?? '1'));
const ENGINE_NAMES = (process.env.INDEX_CHOICE_ENGINES ?? 'sqlite,level').split(',');
const PAGE = 20;
const SEED = 0x14_a7c4;

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

/** mulberry32: small, fast, good enough for a corpus; one stream per document. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Draws ranks 0..n-1 with probability proportional to 1/(rank+1)^s. */
function zipf(n: number, s: number): (r: () => number) => number {
  const cum = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cum[i] = sum += 1 / Math.pow(i + 1, s);
  return (r) => {
    const x = r() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

const pick = <T>(r: () => number, a: readonly T[]): T => a[Math.floor(r() * a.length)]!;

/** Standard normal (Box-Muller), for the log-normal body sizes. */
const normal = (r: () => number) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

// ---------------------------------------------------------------------------------------------
// Vocabularies

/** Common Traditional Chinese characters, most frequent first (roughly). */
const COMMON_HANZI =
  '的一是不了人我在有他這中大來上國個到說們為子和你地出道也時年得就那要下以生會自著去之過家學對可她裡後小麼心多天而能好都然沒日於起還發成事只作當想看文無開手十用主行方又如前所本見經頭面公同三已老從動兩長知民樣現分將外但身些與高意進把法此實回二理美點月明其種聲全工己話兒者向情部正名定女問力機給等幾很業最間新什打便位因重被走電四第門相次東政海口使教西再平真聽世氣信北少關並內加化由卻代軍產入先山五太水萬市眼體別處總才場師書比住員九笑性通目華報立馬命張活難神數件安表原車白應路期叫死常提感金何更反合放做系計或司利受光王果親界及今京務制解各任至清物臺象記邊共風戰干接它許八特覺望直服毛林題建南度統色字請交愛讓認算論百吃義科怎元社術結六功指思非流每青管夫連遠資隊跟帶花快條院變聯言權往展該領傳近留紅治決周保達辦運武半候七必城父強步完革深區即求品士轉量空甚眾技輕程告江語英基派滿式李息寫呢識極令黃德收臉錢黨倒未持取設始版雙歷越史商千片容研像找友孩站廣改議形委早房音火際則首單據導影失拿網香似斯專石若兵弟誰校讀志飛觀爭究包組造落視濟喜離壞響客費訂價貨款簽約郵檔確批准預採購庫存帳稅額倉備份歸密碼登錄測試網絡戶審核銷售廠供貨規格樣';

/** Business words in Traditional Chinese: the most frequent words, and the queries' words. */
const ZH_WORDS = [
  '公司', '報價', '會議', '客戶', '合約', '訂單', '發票', '付款', '確認', '附件', '專案', '時間', '問題', '資料', '產品', '價格',
  '出貨', '採購', '預算', '財務', '報告', '通知', '申請', '審核', '主管', '部門', '同事', '經理', '會計', '業務', '廠商', '供應商',
  '交期', '樣品', '規格', '數量', '金額', '帳款', '稅務', '年度', '季度', '計畫', '進度', '測試', '系統', '伺服器', '網路', '郵件',
  '密碼', '帳號', '登入', '備份', '歸檔', '保存', '法規', '稽核', '合規', '人事', '薪資', '請假', '加班', '出差', '會議室', '簡報',
  '客服', '維修', '保固', '退貨', '換貨', '庫存', '倉庫', '物流', '運費', '發貨', '收據', '報價單', '會議記錄', '電子郵件', '採購單',
  '請款單', '銷售', '行銷', '活動', '折扣',
];

const EN_WORDS = (
  'invoice payment meeting schedule order shipment delivery contract quote price customer account report project budget approval ' +
  'review update request attach file document team manager sales marketing product service support issue ticket server network ' +
  'password backup archive compliance audit policy deadline week month quarter year office client vendor supplier purchase receipt ' +
  'refund discount promotion event conference call agenda minute note draft final plan launch release test system data email ' +
  'message reply forward thank please regard confirm check send receive pay ship book travel hotel flight training employee salary ' +
  'leave holiday the and for with this that from have will your our are you not but all can about there would which their'
).split(' ');

const SYLLABLES = 'ka ri to mon sel ver an tu pro gra lin dex ter mo na vi co ra len fi bu sta quen dor pel tri ax om ul wen zo gal mer hin cal'.split(' ');
const TLDS = ['com.tw', 'com', 'tw', 'net', 'org.tw', 'co', 'io', 'hk'];

interface Vocab {
  zh: string[];
  en: string[];
  domains: string[];
  locals: string[];
  zhRank: (r: () => number) => number;
  enRank: (r: () => number) => number;
  hanziRank: (r: () => number) => number;
}

function vocabulary(): Vocab {
  const r = rng(SEED);
  // A few thousand characters: the common list, then a tail from the CJK block (rare names, terms).
  const hanzi = [...new Set([...COMMON_HANZI].filter((c) => /\p{Script=Han}/u.test(c)))];
  const seen = new Set(hanzi);
  while (hanzi.length < 3500) {
    const c = String.fromCodePoint(0x4e00 + Math.floor(r() * (0x9fa5 - 0x4e00)));
    if (!seen.has(c)) seen.add(c), hanzi.push(c);
  }
  const hanziRank = zipf(hanzi.length, 1.0);
  // Chinese words: the business words first (most frequent), then made-up words of 1 to 4
  // characters, mostly 2, from Zipf-drawn characters.
  const zh = [...ZH_WORDS];
  const zhSeen = new Set(zh);
  while (zh.length < 30_000) {
    const len = [1, 2, 2, 2, 2, 2, 3, 3, 4][Math.floor(r() * 9)]!;
    let w = '';
    for (let i = 0; i < len; i++) w += hanzi[hanziRank(r)];
    if (!zhSeen.has(w)) zhSeen.add(w), zh.push(w);
  }
  // English words: the real ones first, then made-up words of 2 to 4 syllables.
  const en = [...EN_WORDS];
  const enSeen = new Set(en);
  while (en.length < 20_000) {
    let w = '';
    const n = 2 + Math.floor(r() * 3);
    for (let i = 0; i < n; i++) w += pick(r, SYLLABLES);
    if (!enSeen.has(w)) enSeen.add(w), en.push(w);
  }
  const domains: string[] = [];
  for (let i = 0; i < 300; i++) domains.push(`${pick(r, SYLLABLES)}${pick(r, SYLLABLES)}${i}.${pick(r, TLDS)}`);
  const locals = en.slice(0, 2000);
  return { zh, en, domains, locals, zhRank: zipf(zh.length, 1.0), enRank: zipf(en.length, 1.0), hanziRank };
}

// ---------------------------------------------------------------------------------------------
// Documents

interface Doc {
  seq: number;
  from: string;
  to: string[];
  subject: string;
  body: string;
}

/** An English word as written: the base, or a plural or inflected form of it. */
function inflect(r: () => number, w: string): string {
  const x = r();
  if (w.length < 4 || x < 0.6) return w;
  const e = w.endsWith('e');
  if (x < 0.8) return w + 's';
  if (x < 0.9) return e ? w + 'd' : w + 'ed';
  return e ? w.slice(0, -1) + 'ing' : w + 'ing';
}

function zhSentence(r: () => number, v: Vocab): string {
  let s = '';
  const n = 4 + Math.floor(r() * 14);
  for (let i = 0; i < n; i++) {
    s += r() < 0.06 ? ` ${inflect(r, v.en[v.enRank(r)]!)} ` : v.zh[v.zhRank(r)];
    if (i < n - 1 && r() < 0.15) s += '，';
  }
  return s + '。';
}

function enSentence(r: () => number, v: Vocab): string {
  const n = 5 + Math.floor(r() * 16);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(r() < 0.02 ? v.zh[v.zhRank(r)]! : inflect(r, v.en[v.enRank(r)]!));
  return words.join(' ') + '. ';
}

/** Document `seq` of the corpus: the same for every call (its own random stream). */
function makeDoc(v: Vocab, seq: number): Doc {
  const r = rng(SEED ^ Math.imul(seq, 0x9e3779b1));
  const lang = r() < 0.35 ? 'zh' : r() < 0.55 ? 'en' : 'mixed';
  const sentence = (zhShare: number) => (r() < zhShare ? zhSentence(r, v) : enSentence(r, v));
  const zhShare = lang === 'zh' ? 0.92 : lang === 'en' ? 0.03 : 0.5;
  // Median about 4 KiB; 2 % are long threads or pasted reports (8x).
  const target = Math.min(256 * 1024, 4096 * Math.exp(0.6 * normal(r)) * (r() < 0.02 ? 8 : 1));
  const parts: string[] = [];
  let bytes = 0;
  const order = `po${String(seq).padStart(8, '0')}`;
  parts.push(`Order ${order}\n`);
  while (bytes < target) {
    let para = '';
    const n = 1 + Math.floor(r() * 5);
    for (let i = 0; i < n; i++) para += sentence(zhShare);
    parts.push(para + '\n\n');
    // Chinese characters are 3 bytes in UTF-8; counting exactly would cost more than it tells.
    bytes += Buffer.byteLength(para);
  }
  const subject = sentence(zhShare).slice(0, 60);
  const addr = () => `${v.locals[v.enRank(r) % v.locals.length]}@${v.domains[Math.floor(Math.pow(r(), 2) * v.domains.length)]}`;
  const to = Array.from({ length: 1 + Math.floor(Math.pow(r(), 3) * 5) }, addr);
  return { seq, from: addr(), to, subject, body: parts.join('') };
}

// ---------------------------------------------------------------------------------------------
// Tokens (identical for both engines)

const TOKEN_KEY = Buffer.from('index-choice bench token key');
const hashCache = new Map<string, string>();

/** The term as it is stored: 16 hex characters of HMAC-SHA256, so the disk does not show words. */
function hashTerm(t: string): string {
  let h = hashCache.get(t);
  if (h === undefined) {
    // A bounded cache; the real index would keep an LRU of the same kind.
    if (hashCache.size > 2_000_000) hashCache.clear();
    h = createHmac('sha256', TOKEN_KEY).update(t).digest('hex').slice(0, 16);
    hashCache.set(t, h);
  }
  return h;
}

/** Crude English stem: invoices, invoiced, invoicing and invoice all become 'invoic'. */
function stem(w: string): string {
  if (w.length > 5 && w.endsWith('ing')) w = w.slice(0, -3);
  else if (w.length > 4 && w.endsWith('ed')) w = w.slice(0, -2);
  else if (w.length > 4 && w.endsWith('es')) w = w.slice(0, -2);
  else if (w.length > 3 && w.endsWith('s') && !w.endsWith('ss')) w = w.slice(0, -1);
  if (w.length > 4 && w.endsWith('e')) w = w.slice(0, -1);
  return w;
}

const WORD = /(\p{Script=Han}+)|([\p{L}\p{N}]+)/gu;

/** Words of a text: Chinese runs as character bigrams (a lone character as itself), the rest by stem. */
function textTerms(text: string, out: Set<string>): void {
  for (const m of text.toLowerCase().matchAll(WORD)) {
    const han = m[1];
    if (han) {
      const cs = [...han];
      if (cs.length === 1) out.add(cs[0]!);
      for (let i = 0; i + 1 < cs.length; i++) out.add(cs[i]! + cs[i + 1]!);
    } else {
      out.add(stem(m[2]!));
    }
  }
}

function docTokens(d: Doc): string[] {
  const terms = new Set<string>();
  textTerms(d.subject, terms);
  textTerms(d.body, terms);
  for (const [field, addrs] of [['f', [d.from]], ['t', d.to]] as const)
    for (const a of addrs) terms.add(`${field}:${a}`), terms.add(`${field}@${a.slice(a.indexOf('@') + 1)}`);
  return [...terms].map(hashTerm);
}

function queryTokens(q: string): string[] {
  const terms = new Set<string>();
  textTerms(q, terms);
  return [...terms].map(hashTerm);
}

// ---------------------------------------------------------------------------------------------
// The engines

interface Engine {
  readonly name: string;
  add(batch: { seq: number; tokens: string[] }[]): Promise<void>;
  /** Seqs of documents holding every token, newest first, at most `limit`. */
  search(tokens: string[], limit: number): Promise<number[]>;
  close(): Promise<void>;
}

interface SqlStatement {
  run(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  pluck(): SqlStatement;
}
interface SqlDatabase {
  exec(sql: string): void;
  pragma(sql: string): unknown;
  prepare(sql: string): SqlStatement;
  transaction<A extends unknown[]>(fn: (...a: A) => void): (...a: A) => void;
  close(): void;
}
// No @types package needed: the few calls the bench makes are typed here.
const Sqlite = createRequire(import.meta.url)('better-sqlite3') as new (file: string) => SqlDatabase;

/**
 * Engine A: an FTS5 table without content (the store has the text), detail=none (doc ids
 * only, as engine B), contentless_delete so purge can remove rows. better-sqlite3 is
 * synchronous: the real adapter would run it in a worker thread to keep the event loop free.
 */
async function openSqlite(dir: string): Promise<Engine> {
  const db = new Sqlite(join(dir, 'index.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec("CREATE VIRTUAL TABLE IF NOT EXISTS idx USING fts5(t, content='', contentless_delete=1, detail=none, tokenize='ascii')");
  const insert = db.prepare('INSERT INTO idx(rowid, t) VALUES (?, ?)');
  const addAll = db.transaction((batch: { seq: number; tokens: string[] }[]) => {
    for (const d of batch) insert.run(d.seq, d.tokens.join(' '));
  });
  const find = db.prepare('SELECT rowid FROM idx WHERE idx MATCH ? ORDER BY rowid DESC LIMIT ?').pluck();
  return {
    name: 'sqlite-fts5',
    add: async (batch) => addAll(batch),
    search: async (tokens, limit) => find.all(tokens.map((t) => `"${t}"`).join(' AND '), limit) as number[],
    close: async () => db.close(),
  };
}

/**
 * Engine B: LevelDB with an inverted index of our own. Postings are kept in blocks:
 * key = tier (1 byte) + term (8 bytes) + (2^32-1 - lowest seq in the block), so a forward
 * iterator over a term walks its blocks newest first, and a seek to (2^32-1 - s) lands on the
 * block that holds s or the next older one; value = the block's seqs, newest first, as varint
 * deltas (the first relative to the lowest seq, which the key holds).
 * Each ingest batch writes one block per term into the fresh tier. Once the fresh tier holds
 * `mergeDocs` documents, a merge walks it in key order and rewrites each term's fresh blocks as
 * one block in the merged tier (puts and deletes of one term in the same batch, so a crash
 * leaves every term in one tier or the other). All fresh seqs are newer than all merged ones,
 * so a cursor walks the fresh tier, then the merged one. An AND intersects the terms' cursors
 * newest first, leapfrogging with seeks. mergeDocs 0: never merge (blocks per batch only).
 */
function levelEngine(mergeDocs: number) {
  return async (dir: string): Promise<Engine> => {
    const db = new Level<Buffer, Buffer>(join(dir, 'index.level'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    const MAX = 0xffffffff;
    const FRESH = 0;
    const MERGED = 1;
    const key = (tier: number, term: Buffer, seq: number) => {
      const k = Buffer.allocUnsafe(13);
      k[0] = tier;
      term.copy(k, 1);
      k.writeUInt32BE(MAX - seq, 9);
      return k;
    };
    const encode = (desc: number[]): Buffer => {
      const out = Buffer.allocUnsafe(desc.length * 5);
      let o = 0;
      const min = desc[desc.length - 1]!;
      let prev = min;
      for (let i = 0; i < desc.length; i++) {
        let d = i === 0 ? desc[0]! - min : prev - desc[i]!;
        prev = desc[i]!;
        while (d >= 0x80) (out[o++] = (d & 0x7f) | 0x80), (d >>>= 7);
        out[o++] = d;
      }
      return out.subarray(0, o);
    };
    const decode = (k: Buffer, v: Buffer, out: number[] = []): number[] => {
      const min = MAX - k.readUInt32BE(9);
      let cur = min;
      for (let o = 0, i = 0; o < v.length; i++) {
        let d = 0;
        let shift = 0;
        let b: number;
        do (b = v[o++]!), (d += (b & 0x7f) * 2 ** shift), (shift += 7);
        while (b & 0x80);
        cur = i === 0 ? min + d : cur - d;
        out.push(cur);
      }
      return out;
    };

    type It = { seek(target: Buffer): void; next(): Promise<[Buffer, Buffer] | undefined>; close(): Promise<void> };
    const range = (tier: number, term: Buffer) => db.iterator({ gte: key(tier, term, MAX), lte: key(tier, term, 0) }) as unknown as It;

    /** A term's seqs newest first; `atMost(s)` moves to the newest seq <= s (-1: none left). */
    class Cursor {
      private it: It;
      private tier = FRESH;
      private block: number[] = [];
      private pos = 0;
      private readonly opened: It[] = [];
      constructor(private readonly term: Buffer) {
        this.it = range(FRESH, term);
        this.opened.push(this.it);
      }
      async atMost(s: number): Promise<number> {
        for (;;) {
          while (this.pos < this.block.length && this.block[this.pos]! > s) this.pos++;
          if (this.pos < this.block.length) return this.block[this.pos]!;
          // Past this block: seek to the block that would hold s (it skips blocks in between).
          if (this.block.length > 0) this.it.seek(key(this.tier, this.term, s));
          const e = await this.it.next();
          if (!e) {
            if (this.tier === MERGED) return -1;
            this.tier = MERGED;
            this.it = range(MERGED, this.term);
            this.opened.push(this.it);
            this.it.seek(key(MERGED, this.term, s));
            this.block = [];
            continue;
          }
          this.block = decode(e[0], e[1]);
          this.pos = 0;
        }
      }
      close = () => Promise.all(this.opened.map((i) => i.close()));
    }

    let freshDocs = 0;
    /** Rewrites the fresh tier as one merged block per term. */
    const merge = async () => {
      const it = db.iterator({ gte: Buffer.from([FRESH]), lt: Buffer.from([FRESH + 1]) });
      let batch = db.batch();
      let ops = 0;
      let term: Buffer | null = null;
      let seqs: number[] = [];
      let dels: Buffer[] = [];
      const flush = () => {
        if (!term) return;
        // Blocks of at most 4096 seqs, so a query needing the newest 21 decodes little.
        for (let i = 0; i < seqs.length; i += 4096) {
          const part = seqs.slice(i, i + 4096);
          batch.put(key(MERGED, term, part[part.length - 1]!), encode(part));
          ops++;
        }
        for (const k of dels) batch.del(k);
        ops += dels.length;
        seqs = [];
        dels = [];
      };
      try {
        for (;;) {
          const entries = await it.nextv(1000);
          if (entries.length === 0) break;
          for (const [k, v] of entries) {
            const t = k.subarray(1, 9);
            if (!term || !t.equals(term)) {
              flush();
              if (ops > 20_000) await batch.write(), (batch = db.batch()), (ops = 0);
              term = Buffer.from(t);
            }
            decode(k, v, seqs);
            dels.push(k);
          }
        }
        flush();
        await batch.write();
      } finally {
        await it.close();
      }
      freshDocs = 0;
    };

    return {
      name: mergeDocs ? 'leveldb-own' : 'leveldb-nomerge',
      add: async (batch) => {
        const postings = new Map<string, number[]>();
        for (let i = batch.length - 1; i >= 0; i--) {
          const d = batch[i]!;
          for (const t of d.tokens) {
            const l = postings.get(t);
            if (l) l.push(d.seq);
            else postings.set(t, [d.seq]);
          }
        }
        const b = db.batch();
        for (const [t, desc] of postings) b.put(key(FRESH, Buffer.from(t, 'hex'), desc[desc.length - 1]!), encode(desc));
        await b.write();
        freshDocs += batch.length;
        if (mergeDocs && freshDocs >= mergeDocs) await merge();
      },
      search: async (tokens, limit) => {
        const cursors = tokens.map((t) => new Cursor(Buffer.from(t, 'hex')));
        const found: number[] = [];
        try {
          // Leapfrog: each cursor in turn moves to the newest seq <= target; when all agree, a hit.
          let target = MAX - 1;
          let agree = 0;
          for (let i = 0; found.length < limit && cursors.length > 0; i = (i + 1) % cursors.length) {
            const s = await cursors[i]!.atMost(target);
            if (s < 0) break;
            if (s === target) agree++;
            else (target = s), (agree = 1);
            if (agree === cursors.length) found.push(target), (target -= 1), (agree = 0);
          }
        } finally {
          await Promise.all(cursors.map((c) => c.close()));
        }
        return found;
      },
      close: () => db.close(),
    };
  };
}

/** Documents in the fresh tier before a merge (INDEX_CHOICE_MERGE_DOCS). */
const MERGE_DOCS = Number(process.env.INDEX_CHOICE_MERGE_DOCS ?? '20000');
const ENGINES: Record<string, (dir: string) => Promise<Engine>> = {
  sqlite: openSqlite,
  level: levelEngine(MERGE_DOCS),
  'level-nomerge': levelEngine(0),
};

// ---------------------------------------------------------------------------------------------
// The 50 queries

interface Query {
  kind: string;
  text: string;
}

function queries(v: Vocab): Query[] {
  const q: Query[] = [];
  const add = (kind: string, texts: string[]) => texts.forEach((text) => q.push({ kind, text }));
  add('zh common bigram', ['公司', '報價', '會議', '客戶', '合約', '訂單', '發票', '付款']);
  // Made-up two-character words far down the Zipf ranks: a few hundred documents or fewer.
  const rareZh = v.zh.slice(8000).filter((w) => [...w].length === 2);
  add('zh rare bigram', [0, 400, 900, 1500, 2500, 4000, 6000, 9000].map((i) => rareZh[i]!));
  add('zh word (2-3 bigrams)', ['報價單', '會議記錄', '電子郵件', '採購單', '請款單', '供應商', '伺服器', '會議室']);
  add('en two-word AND', [
    'invoice payment', 'meeting schedule', 'order shipment', 'contract review', 'customer support',
    'budget approval', 'server backup', 'password reset', 'invoices paid', 'quarterly report',
  ]);
  add('mixed zh+en', ['報價 invoice', '會議 agenda', 'contract 合約', '發票 payments', 'server 備份', '出貨 delivery', '訂單 orders', '客戶 refund', '預算 quarter', '稽核 audit']);
  add('rare word', [v.en[15_000]!, v.en[19_000]!, v.en[12_345]!, `po${String(Math.floor(DOCS / 3)).padStart(8, '0')}`, `po${String(DOCS - 5).padStart(8, '0')}`, `po${String(7).padStart(8, '0')}`]);
  if (q.length !== 50) throw new Error(`index-choice: ${q.length} queries, want 50`);
  return q;
}

// ---------------------------------------------------------------------------------------------
// Measuring

async function status(field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(await readFile('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
/** Resets the peak RSS (VmHWM), so each phase reports its own peak. */
const resetPeak = () => writeFile('/proc/self/clear_refs', '5').catch(() => undefined);

const duBytes = (path: string) => Number(execFileSync('du', ['-sk', path], { encoding: 'utf8' }).split('\t')[0]) * 1024;

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

interface Result {
  engine: string;
  round: number;
  docsPerSec: number;
  startRssMB: number;
  bytesPerDoc: number;
  ingestPeakMB: number;
  searchPeakMB: number;
  firstPass: number[];
  warmPass: number[];
  answers: number[][];
  byKind: Map<string, number[]>;
}

/**
 * Makes the corpus once and keeps its tokens in a file (per document: u32 count, then 8-byte
 * terms), so both engines ingest the same tokens and neither pays for, or carries the memory
 * of, the corpus generator. Returns the subject + body sizes in bytes.
 */
async function prepareCorpus(v: Vocab, file: string): Promise<number[]> {
  const fh = await open(file, 'w');
  const sizes: number[] = [];
  const t0 = performance.now();
  try {
    for (let start = 1; start <= DOCS; start += BATCH) {
      const chunks: Buffer[] = [];
      for (let seq = start; seq < Math.min(DOCS + 1, start + BATCH); seq++) {
        const d = makeDoc(v, seq);
        sizes.push(Buffer.byteLength(d.body) + Buffer.byteLength(d.subject));
        const tokens = docTokens(d);
        const b = Buffer.allocUnsafe(4 + tokens.length * 8);
        b.writeUInt32LE(tokens.length, 0);
        tokens.forEach((t, i) => b.write(t, 4 + i * 8, 'hex'));
        chunks.push(b);
      }
      await fh.write(Buffer.concat(chunks));
      if ((start - 1) % (BATCH * 50) === 0 && start > 1)
        process.stderr.write(`  corpus: ${start - 1} docs, ${((start - 1) / ((performance.now() - t0) / 1000)).toFixed(0)} docs/s\n`);
    }
  } finally {
    await fh.close();
  }
  hashCache.clear();
  return sizes;
}

/** Reads the token file back batch by batch, terms as the 16 hex characters the index stores. */
async function* tokenBatches(file: string): AsyncGenerator<{ seq: number; tokens: string[] }[]> {
  const fh = await open(file, 'r');
  try {
    let buf = Buffer.alloc(0);
    let seq = 1;
    let batch: { seq: number; tokens: string[] }[] = [];
    const chunk = Buffer.allocUnsafe(4 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(chunk, 0, chunk.length);
      if (bytesRead === 0) break;
      buf = buf.length ? Buffer.concat([buf, chunk.subarray(0, bytesRead)]) : Buffer.from(chunk.subarray(0, bytesRead));
      let o = 0;
      while (o + 4 <= buf.length) {
        const n = buf.readUInt32LE(o);
        if (o + 4 + n * 8 > buf.length) break;
        const tokens: string[] = [];
        for (let i = 0; i < n; i++) tokens.push(buf.toString('hex', o + 4 + i * 8, o + 12 + i * 8));
        batch.push({ seq: seq++, tokens });
        o += 4 + n * 8;
        if (batch.length === BATCH) yield batch, (batch = []);
      }
      buf = buf.subarray(o);
    }
    if (batch.length) yield batch;
  } finally {
    await fh.close();
  }
}

/** The folder of the engine being measured, removed if the run is interrupted. */
let engineDir: string | null = null;

async function measure(name: string, round: number, file: string, qs: Query[], base: string): Promise<Result> {
  const dir = await mkdtemp(join(base, `${name}-`));
  engineDir = dir;
  const startRssMB = await status('VmRSS');
  await resetPeak();
  const t0 = performance.now();
  let engine = await ENGINES[name]!(dir);
  let done = 0;
  for await (const batch of tokenBatches(file)) {
    await engine.add(batch);
    done += batch.length;
    if (done % (BATCH * 50) === 0)
      process.stderr.write(`  ${name}: ${done} docs, ${(done / ((performance.now() - t0) / 1000)).toFixed(0)} docs/s\n`);
  }
  // Closing is part of ingest: the SQLite WAL checkpoint, LevelDB's pending compactions.
  await engine.close();
  const ingestMs = performance.now() - t0;
  const ingestPeakMB = await status('VmHWM');
  const bytes = duBytes(dir);

  // Search on a reopened index, as the daemon would see it after a start (OS page cache warm).
  await resetPeak();
  engine = await ENGINES[name]!(dir);
  const tokens = qs.map((q) => queryTokens(q.text));
  const answers: number[][] = [];
  const timeOne = async (i: number) => {
    const s0 = performance.now();
    answers[i] = await engine.search(tokens[i]!, PAGE + 1);
    return performance.now() - s0;
  };
  const firstPass: number[] = [];
  for (let i = 0; i < qs.length; i++) firstPass.push(await timeOne(i));
  const warmPass: number[] = [];
  const byKind = new Map<string, number[]>();
  for (let rep = 0; rep < 3; rep++)
    for (let i = 0; i < qs.length; i++) {
      const ms = await timeOne(i);
      warmPass.push(ms);
      const k = byKind.get(qs[i]!.kind) ?? [];
      byKind.set(qs[i]!.kind, k);
      k.push(ms);
    }
  const searchPeakMB = await status('VmHWM');
  await engine.close();
  await rm(dir, { recursive: true, force: true });
  return {
    engine: name,
    round,
    docsPerSec: done / (ingestMs / 1000),
    startRssMB,
    bytesPerDoc: bytes / DOCS,
    ingestPeakMB,
    searchPeakMB,
    firstPass: firstPass.sort((a, b) => a - b),
    warmPass: warmPass.sort((a, b) => a - b),
    answers,
    byKind,
  };
}

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');

function printTable(results: Result[]): void {
  const cols = results.map((r) => `${r.engine}${ROUNDS > 1 ? ` #${r.round}` : ''}`);
  const rows: [string, (r: Result) => string][] = [
    ['ingest docs/s (tokens read from file; close included)', (r) => fmt(r.docsPerSec)],
    ['disk bytes per doc (du)', (r) => fmt(r.bytesPerDoc)],
    ['search p50 ms, first pass', (r) => fmt(pct(r.firstPass, 50), 2)],
    ['search p95 ms, first pass', (r) => fmt(pct(r.firstPass, 95), 2)],
    ['search p99 ms, first pass', (r) => fmt(pct(r.firstPass, 99), 2)],
    ['search p50 ms, 3 more passes', (r) => fmt(pct(r.warmPass, 50), 2)],
    ['search p95 ms, 3 more passes', (r) => fmt(pct(r.warmPass, 95), 2)],
    ['search p99 ms, 3 more passes', (r) => fmt(pct(r.warmPass, 99), 2)],
    ['RSS MB before opening the engine', (r) => fmt(r.startRssMB)],
    ['peak RSS MB, ingest', (r) => fmt(r.ingestPeakMB)],
    ['peak RSS MB, search', (r) => fmt(r.searchPeakMB)],
  ];
  const w0 = Math.max(...rows.map(([l]) => l.length));
  const w = Math.max(14, ...cols.map((c) => c.length));
  console.log('\n' + ''.padEnd(w0) + cols.map((c) => c.padStart(w + 2)).join(''));
  for (const [label, f] of rows) console.log(label.padEnd(w0) + results.map((r) => f(r).padStart(w + 2)).join(''));
  const kinds = [...results[0]!.byKind.keys()];
  console.log('\nwarm p50 / max ms by query kind:');
  for (const k of kinds)
    console.log(`  ${k.padEnd(w0 - 2)}` + results.map((r) => {
      const l = [...r.byKind.get(k)!].sort((a, b) => a - b);
      return `${fmt(pct(l, 50), 2)} / ${fmt(l[l.length - 1]!, 2)}`.padStart(w + 2);
    }).join(''));
}

async function main(): Promise<void> {
  console.log(`index-choice: ${DOCS} documents, batches of ${BATCH}, nproc ${availableParallelism()}, node ${process.version}`);
  const v = vocabulary();
  const qs = queries(v);
  const base = process.env.INDEX_CHOICE_DIR ?? (await mkdtemp(join(tmpdir(), 'index-choice-')));
  // Interrupted: remove the temp folder (a gigabyte or more) before exiting.
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      if (!process.env.INDEX_CHOICE_DIR) rmSync(base, { recursive: true, force: true });
      else if (engineDir) rmSync(engineDir, { recursive: true, force: true });
      process.exit(130);
    });
  const names = ENGINE_NAMES;
  for (const n of names) if (!ENGINES[n]) throw new Error(`unknown engine ${n} in INDEX_CHOICE_ENGINES (${Object.keys(ENGINES).join(', ')})`);
  const results: Result[] = [];
  // With INDEX_CHOICE_DIR the corpus stays there and later runs of the same size reuse it.
  const file = join(base, `corpus-${DOCS}.tokens`);
  try {
    const c0 = performance.now();
    const sizesFile = `${file}.sizes.json`;
    let sizes = await readFile(sizesFile, 'utf8').then((t) => JSON.parse(t) as number[], () => null);
    const reused = sizes !== null;
    if (!sizes) {
      sizes = await prepareCorpus(v, `${file}.part`);
      await rename(`${file}.part`, file);
      await writeFile(sizesFile, JSON.stringify(sizes));
    }
    const sorted = [...sizes].sort((a, b) => a - b);
    console.log(
      `corpus: ${reused ? `reused from ${file}` : `made and tokenized in ${fmt((performance.now() - c0) / 1000)} s`}; subject + body bytes per document: median ${fmt(pct(sorted, 50) / 1024, 1)} KiB, mean ${fmt(sorted.reduce((a, b) => a + b, 0) / sorted.length / 1024, 1)} KiB, p99 ${fmt(pct(sorted, 99) / 1024, 1)} KiB, max ${fmt(sorted[sorted.length - 1]! / 1024, 1)} KiB; token file ${fmt(duBytes(file) / DOCS)} bytes per document`,
    );
    for (let round = 1; round <= ROUNDS; round++)
      for (const name of round % 2 === 1 ? names : [...names].reverse()) {
        process.stderr.write(`round ${round}: ${name}\n`);
        const r = await measure(name, round, file, qs, base);
        results.push(r);
        // A line per engine as it finishes, so a long run that is cut short still tells something.
        console.log(
          `  ${name} #${round}: ${fmt(r.docsPerSec)} docs/s, ${fmt(r.bytesPerDoc)} B/doc, search p50/p95/p99 ms ${[50, 95, 99].map((p) => fmt(pct(r.warmPass, p), 2)).join('/')} (first pass ${[50, 95, 99].map((p) => fmt(pct(r.firstPass, p), 2)).join('/')}), peak RSS ingest ${fmt(r.ingestPeakMB)} MB, search ${fmt(r.searchPeakMB)} MB`,
        );
      }
  } finally {
    if (!process.env.INDEX_CHOICE_DIR) await rm(base, { recursive: true, force: true });
  }
  printTable(results);
  // Same tokens, same corpus: the engines must give the same answers, or the timings mean nothing.
  const ref = results[0]!;
  let same = 0;
  for (let i = 0; i < qs.length; i++) {
    const a = JSON.stringify(ref.answers[i]);
    if (results.every((r) => JSON.stringify(r.answers[i]) === a)) same++;
    else console.log(`  DIFFERENT answers for "${qs[i]!.text}": ${results.map((r) => `${r.engine} ${r.answers[i]!.length} hits`).join(', ')}`);
  }
  const hits = ref.answers.map((a) => a.length);
  console.log(`\nanswers identical across engines for ${same} of ${qs.length} queries; hits per query (of ${PAGE + 1} max): ${hits.filter((h) => h === PAGE + 1).length} full pages, ${hits.filter((h) => h > 0 && h <= PAGE).length} partial, ${hits.filter((h) => h === 0).length} empty`);
  if (same !== qs.length) process.exitCode = 1;
}

main().catch((err: Error) => {
  console.error(`index-choice: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
