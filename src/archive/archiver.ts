import { sublevel, type BatchOp, type Db } from '../store/db.js';
import type { SublevelDecl } from '../store/data.js';
import type { Durability } from '../store/durability.js';
import type { Logger } from '../log/logger.js';
import type { Clock } from '../core/clock.js';
import type { EventInput } from '../events/events.js';
import { decide, retainUntil, type RuleSet } from './rules.js';
import { extract } from './extract.js';
import { queryTerms } from './tokenize.js';
import type { Preparer } from './prepare.js';
import type { TextParts } from './prepare-core.js';
import type { ArchiveIndex, ArchivedMeta, BlobStore, ChainHead, ChainRecord, IndexDoc, IntakeRecord, PurgeBody, SearchQuery } from './types.js';

/** Keyed content addresses, and opening sealed blobs (the prepare worker seals them). */
export interface Sealing {
  address(bytes: Buffer): string;
  open(address: string, sealed: Buffer): Promise<Buffer>;
}

/** The hash chain, as the archiver uses it (src/archive/chain.ts). */
export interface ChainLog {
  head(): ChainHead;
  append(kind: 'message' | 'purge', body: object): { record: ChainRecord; ops: BatchOp[] };
  /** Forgets appends whose batch was not written. */
  reset(): Promise<void>;
  get(seq: number): Promise<ChainRecord | null>;
  /** The sealed body of a record, opened (and checked). */
  body(rec: ChainRecord): unknown;
  tombstoneOps(records: ChainRecord[], purgeSeq: number): BatchOp[];
  /** Records with seq in [from, to], ascending. */
  iterate(from: number, to: number): AsyncIterable<ChainRecord>;
}

export const IDS = 'archive-ids';
export const REFS = 'archive-refs';
export const EXPIRY = 'archive-expiry';
export const HOLDS = 'archive-holds';
export const RULESETS = 'archive-rulesets';

/** The archiver's own records (the chain's and the packs' are declared by chain.ts and packs.ts). */
export const ARCHIVER_SUBLEVELS: SublevelDecl[] = [
  { name: IDS, describe: 'archived message ids to their chain record', replicate: true },
  { name: REFS, describe: 'how many archived records name each stored blob (identical messages are stored once)', replicate: true },
  { name: EXPIRY, describe: 'the retention schedule: end of retention and record', replicate: true },
  { name: HOLDS, describe: 'legal holds: queries whose matches purge never deletes', replicate: true },
  { name: RULESETS, describe: 'archive rule sets in force at each commit, by hash', replicate: true },
];

export interface Hold {
  id: string;
  query: string;
  created: string;
}

export interface SearchHit {
  id: string;
  seq: number;
  received: string;
  direction: string;
  from: string;
  to: string[];
  subject: string;
  snippet: string;
}

/** The search tools the archiver needs (src/archive/query.ts, snippet.ts). */
export interface SearchTools {
  parseQuery(s: string): Omit<SearchQuery, 'limit'>;
  docMatches(doc: IndexDoc, q: Omit<SearchQuery, 'limit' | 'before'>): boolean;
  snippetOf(text: string, queryText: string, max?: number): { snippet: string; matched: boolean };
}

export interface ArchiverDeps {
  db: Db;
  durability: Durability;
  sealing: Sealing;
  preparer: Preparer;
  /** archive.encrypt (read at start: a restart-only key). */
  encrypt: () => boolean;
  blobs: BlobStore;
  chain: ChainLog;
  index: ArchiveIndex;
  tools: SearchTools;
  clock: Clock;
  log: Logger;
  emit: (ev: EventInput) => void;
}

export interface IngestResult {
  archived: number;
  skipped: number;
  duplicates: number;
}

export interface PurgeReport {
  due: number;
  held: number;
  purged: number;
  ids: string[];
  heldIds: string[];
}

const seqKey = (seq: number) => String(seq).padStart(12, '0');
const PURGE_CHUNK = 1000;

function docOf(seq: number, meta: ArchivedMeta, x: TextParts): IndexDoc {
  return {
    seq,
    time: Date.parse(meta.envelope.received),
    direction: meta.envelope.direction,
    from: [...new Set([meta.envelope.from, ...meta.headerFrom].filter(Boolean).map((a) => a.toLowerCase()))],
    to: [...new Set([...meta.envelope.rcpt, ...meta.headerTo].map((a) => a.toLowerCase()))],
    subject: meta.subject,
    body: x.body,
    attachmentNames: meta.attachments.map((a) => a.name).filter(Boolean),
    attachmentText: x.attachmentText,
  };
}

/**
 * The archive itself: takes messages in by the rules, seals them into the blob store,
 * links them into the hash chain, indexes them, finds them again, and purges what is past
 * retention and not on hold. Every write is one synced batch through the durability seam
 * (HA mirrors it). Calls that change the chain run one at a time (`serial`).
 */
export class Archiver {
  private lane: Promise<unknown> = Promise.resolve();
  private readonly rulesets = new Map<string, RuleSet>();

  constructor(private readonly d: ArchiverDeps) {}

  /** Runs `fn` after every earlier chain-changing call has finished. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.lane.then(fn, fn);
    this.lane = p.catch(() => undefined);
    return p;
  }

  async ruleset(hash: string): Promise<RuleSet> {
    let set = this.rulesets.get(hash);
    if (!set) {
      set = (await sublevel(this.d.db, RULESETS).get(hash)) as RuleSet | undefined;
      if (!set) throw new Error(`archive: rule set ${hash} is not recorded`);
      this.rulesets.set(hash, set);
    }
    return set;
  }

  /** Records a rule set (before the first commit that names it). */
  async recordRuleset(hash: string, set: RuleSet): Promise<void> {
    if (this.rulesets.has(hash)) return;
    await this.d.durability.write([{ type: 'put', sublevel: RULESETS, key: hash, value: set }]);
    this.rulesets.set(hash, set);
  }

  /**
   * Takes messages in: the rules decide, the bytes (and the extracted text) are sealed and
   * stored once per content, each archived message gets a chain record; `extraOps` (the
   * intake letting go) go into the same synced batch. Ids already archived are skipped, so
   * an intake replayed after a crash archives nothing twice.
   */
  ingest(items: { rec: IntakeRecord; bytes: Buffer }[], extraOps: BatchOp[] = []): Promise<IngestResult> {
    return this.serial(() => this.ingestNow(items, extraOps));
  }

  private async ingestNow(items: { rec: IntakeRecord; bytes: Buffer }[], extraOps: BatchOp[]): Promise<IngestResult> {
    const { blobs, chain, db } = this.d;
    const res: IngestResult = { archived: 0, skipped: 0, duplicates: 0 };
    // An id already archived (an intake replayed after a crash) is not archived again.
    const known = await sublevel(db, IDS).getMany(items.map((i) => i.rec.id));
    const fresh: { rec: IntakeRecord; bytes: Buffer }[] = [];
    const seen = new Set<string>();
    items.forEach((it, i) => {
      if (known[i] !== undefined || seen.has(it.rec.id)) return;
      seen.add(it.rec.id);
      fresh.push(it);
    });
    const prepared = fresh.length ? await this.d.preparer.prepare(fresh.map((f) => ({ id: f.rec.id, bytes: f.bytes })), this.d.encrypt()) : [];
    const ops: BatchOp[] = [];
    const docs: IndexDoc[] = [];
    const now = new Date(this.d.clock.now());
    const kept: { meta: ArchivedMeta; p: (typeof prepared)[number] }[] = [];
    for (const [i, { rec }] of fresh.entries()) {
      const p = prepared[i]!;
      const x = p.extracted;
      const decision = decide(await this.ruleset(rec.ruleset), { direction: rec.direction, from: rec.from, rcpt: rec.rcpt, subject: x.subject, size: p.content.size, hasAttachments: x.attachments.length > 0, verdict: rec.verdict });
      if (decision.action === 'skip') {
        res.skipped++;
        this.d.log.info({ evt: 'archive.skip', id: rec.id, rule: decision.rule, verdict: rec.verdict }, 'not archived by the rules');
        continue;
      }
      const { ruleset: _r, ...envelope } = rec;
      kept.push({
        p,
        meta: {
          id: rec.id,
          content: p.content.address,
          text: p.text.address,
          trace: p.trace,
          size: p.content.size,
          envelope,
          subject: x.subject,
          headerFrom: x.headerFrom,
          headerTo: x.headerTo,
          date: x.date,
          messageId: x.messageId,
          attachments: x.attachments,
          archived: now.toISOString(),
          retainUntil: retainUntil(now.getTime(), decision.retentionYears),
          rule: decision.rule,
        },
      });
    }
    // Blobs are counted, and stored once: the store skips what it already holds.
    const refDelta = new Map<string, number>();
    const toStore = new Map<string, Buffer>();
    for (const { p } of kept) {
      for (const b of [p.content, p.text]) {
        refDelta.set(b.address, (refDelta.get(b.address) ?? 0) + 1);
        if (!toStore.has(b.address)) toStore.set(b.address, b.sealed);
      }
    }
    const addresses = [...refDelta.keys()];
    const slot = new Map(addresses.map((a, i) => [a, i]));
    const counts = addresses.length ? ((await sublevel(db, REFS).getMany(addresses)) as (number | undefined)[]) : [];
    const seenContent = new Set<string>();
    for (const { meta, p } of kept) {
      if ((counts[slot.get(meta.content)!] ?? 0) > 0 || seenContent.has(meta.content)) res.duplicates++;
      seenContent.add(meta.content);
      const { record, ops: chainOps } = chain.append('message', meta);
      ops.push(...chainOps);
      ops.push({ type: 'put', sublevel: IDS, key: meta.id, value: record.seq });
      ops.push({ type: 'put', sublevel: EXPIRY, key: `${meta.retainUntil}!${seqKey(record.seq)}`, value: record.seq });
      docs.push(docOf(record.seq, meta, p.extracted));
      res.archived++;
    }
    addresses.forEach((a, i) => ops.push({ type: 'put', sublevel: REFS, key: a, value: (counts[i] ?? 0) + refDelta.get(a)! }));
    try {
      const blobOps = toStore.size ? await blobs.put([...toStore].map(([address, sealed]) => ({ address, sealed }))) : [];
      if (ops.length || extraOps.length) await this.d.durability.write([...blobOps, ...ops, ...extraOps]);
    } catch (err) {
      await chain.reset();
      blobs.reset?.();
      throw err;
    }
    // The index follows the store, beside the next batch; a crash before it has them is caught up at the next start.
    // While the index catches up, it reads these from the store itself.
    if (docs.length && !this.catchingUp) await this.toIndex(() => this.d.index.add(docs));
    return res;
  }

  private indexLane: Promise<unknown> = Promise.resolve();
  private catchingUp = false;
  private stopping = false;

  /** Ends a catch-up or reindex under way at its next batch (the daemon is stopping). */
  stop(): void {
    this.stopping = true;
  }
  private indexBacklog = 0;

  /**
   * Index changes run in order, beside the intake: the next batch is sealed and written
   * while this one is indexed. At most two wait (each holds its batch's text).
   */
  private async toIndex(fn: () => Promise<void>): Promise<void> {
    this.indexBacklog++;
    // After a failed update, the ones queued behind it are left to the catch-up: were they
    // done, the index's high mark would pass the failed batch, which no catch-up would then see.
    const p = this.indexLane
      .then(() => (this.indexBroken ? undefined : fn()))
      .catch((err: Error) => {
        this.d.log.error({ evt: 'archive.index.fail', err: err.message }, 'could not update the archive index; it catches up from the store');
        this.indexBehind();
      });
    this.indexLane = p.finally(() => this.indexBacklog--);
    if (this.indexBacklog > 2) await p;
  }

  private indexBroken = false;
  private onIndexBehind: (() => void) | null = null;

  /** Told when an index update failed: the index lags the store until a catch-up runs. */
  whenIndexBehind(fn: (() => void) | null): void {
    this.onIndexBehind = fn;
  }

  private indexBehind(): void {
    this.indexBroken = true;
    this.catchingUp = true;
    this.onIndexBehind?.();
  }

  indexedUpTo(): Promise<number> {
    return this.d.index.indexedUpTo();
  }

  /** Resolves once every index change queued so far is done. */
  indexIdle(): Promise<void> {
    return this.indexLane.then(() => undefined);
  }

  /** The sealed metadata of a message record. */
  meta(rec: ChainRecord): ArchivedMeta {
    return this.d.chain.body(rec) as ArchivedMeta;
  }

  async text(meta: ArchivedMeta): Promise<TextParts> {
    const sealed = await this.d.blobs.get(meta.text);
    return sealed ? (JSON.parse((await this.d.sealing.open(meta.text, sealed)).toString('utf8')) as TextParts) : { body: '', attachmentText: '' };
  }

  /** A record by the box's message id; an error naming the id when there is none. */
  async recordOf(id: string): Promise<ChainRecord> {
    if (!/^[0-9A-Za-z._-]{1,128}$/.test(id)) throw new Error(`archive: no message ${id.slice(0, 80)}`);
    const seq = (await sublevel(this.d.db, IDS).get(id)) as number | undefined;
    const rec = seq === undefined ? undefined : await this.d.chain.get(seq);
    if (!rec) throw new Error(`archive: no message ${id}`);
    if (rec.kind === 'tombstone') throw new Error(`archive: ${id} was purged (past its retention) by chain record ${rec.purgedBy}`);
    return rec;
  }

  /** The message as the box accepted it: our Received line, then the client's bytes. */
  async export(id: string): Promise<Buffer> {
    const meta = this.meta(await this.recordOf(id));
    const sealed = await this.d.blobs.get(meta.content);
    if (!sealed) throw new Error(`archive: the content of ${id} is missing from the store (run archive verify)`);
    return Buffer.concat([Buffer.from(meta.trace, 'latin1'), await this.d.sealing.open(meta.content, sealed)]);
  }

  async show(id: string): Promise<{ meta: ArchivedMeta; headers: string; text: string }> {
    const meta = this.meta(await this.recordOf(id));
    const bytes = await this.export(id);
    const end = bytes.indexOf('\r\n\r\n');
    const end2 = bytes.indexOf('\n\n');
    const cut = end >= 0 && (end2 < 0 || end < end2) ? end : end2 >= 0 ? end2 : bytes.length;
    const x = await extract(bytes);
    return { meta, headers: bytes.subarray(0, cut).toString('utf8'), text: x.body };
  }

  /** Newest first, one page; each hit with a snippet cut from its text. */
  async search(q: SearchQuery): Promise<{ hits: SearchHit[]; more: boolean }> {
    const r = await this.d.index.search(q);
    // The page's records and texts are read side by side (their reads overlap).
    const hits = await Promise.all(
      r.seqs.map(async (seq): Promise<SearchHit | null> => {
        const rec = await this.d.chain.get(seq);
        if (!rec || rec.kind !== 'message') return null;
        const meta = this.meta(rec);
        return {
          id: meta.id,
          seq,
          received: meta.envelope.received,
          direction: meta.envelope.direction,
          from: meta.envelope.from,
          to: meta.envelope.rcpt,
          subject: meta.subject,
          snippet: await this.snippetOf(meta, q.text),
        };
      }),
    );
    return { hits: hits.filter((h): h is SearchHit => h !== null), more: r.more };
  }

  private async snippetOf(meta: ArchivedMeta, query: string): Promise<string> {
    const t = await this.text(meta);
    const inBody = this.d.tools.snippetOf(t.body, query);
    if (inBody.matched || !query.trim()) return inBody.snippet;
    // A word found only in an attachment's name or text: the snippet comes from there.
    const attached = this.d.tools.snippetOf(`${meta.attachments.map((a) => a.name).join(' ')} ${t.attachmentText}`, query);
    return attached.matched ? attached.snippet : inBody.snippet;
  }

  async holds(): Promise<Hold[]> {
    const out: Hold[] = [];
    for await (const v of sublevel(this.d.db, HOLDS).values()) out.push(v as Hold);
    return out;
  }

  async addHold(query: string, id: string): Promise<Hold> {
    const parsed = this.d.tools.parseQuery(query);
    if (!query.trim()) throw new Error('archive hold: an empty query would hold everything; name what to hold');
    // A query with text but no searchable word (one letter, punctuation) matches nothing: as a
    // hold it would protect nothing while looking like it did.
    if (queryTerms(parsed).matchesNothing) throw new Error(`archive hold: "${query.slice(0, 80)}" has no word the archive searches by (words of two letters or more, Chinese characters, addresses); it would hold nothing`);
    const prior = (await this.holds()).find((h) => h.query === query);
    if (prior) return prior;
    const hold: Hold = { id, query, created: new Date(this.d.clock.now()).toISOString() };
    await this.d.durability.write([{ type: 'put', sublevel: HOLDS, key: id, value: hold }]);
    return hold;
  }

  async removeHold(queryOrId: string): Promise<Hold> {
    const h = (await this.holds()).find((x) => x.id === queryOrId || x.query === queryOrId);
    if (!h) throw new Error(`archive hold: no hold ${queryOrId}`);
    await this.d.durability.write([{ type: 'del', sublevel: HOLDS, key: h.id }]);
    return h;
  }

  /**
   * Deletes what is past retention and under no hold: each purged record becomes a
   * tombstone, listed with its mac in a purge record appended to the chain, so the chain
   * still verifies and shows that (and when) something was removed. A blob goes when no
   * record names it any longer.
   */
  purge(dryRun: boolean): Promise<PurgeReport> {
    return this.serial(() => this.purgeNow(dryRun));
  }

  private async purgeNow(dryRun: boolean): Promise<PurgeReport> {
    const { db, chain, tools } = this.d;
    const now = new Date(this.d.clock.now());
    const holds = (await this.holds()).map((h) => tools.parseQuery(h.query));
    const report: PurgeReport = { due: 0, held: 0, purged: 0, ids: [], heldIds: [] };
    const due: { key: string; rec: ChainRecord; meta: ArchivedMeta }[] = [];
    // The schedule is only an index into the chain: what is due is decided by the sealed
    // retainUntil, and each record once (a forged or doubled schedule entry would otherwise
    // purge early, or count a shared blob's reference twice and drop it from under another record).
    const seen = new Set<number>();
    for await (const [key, seq] of sublevel(db, EXPIRY).iterator({ lt: `${now.toISOString()}!` })) {
      const rec = await chain.get(seq as number);
      if (!rec || rec.kind !== 'message' || seen.has(rec.seq)) continue;
      const meta = this.meta(rec);
      if (key !== `${meta.retainUntil}!${seqKey(rec.seq)}`) {
        this.d.log.warn({ evt: 'archive.purge.schedule_mismatch', key, seq: rec.seq, retainUntil: meta.retainUntil }, 'a retention schedule entry does not match its sealed record; ignored');
        continue;
      }
      if (Date.parse(meta.retainUntil) >= now.getTime()) continue;
      seen.add(rec.seq);
      report.due++;
      if (holds.length) {
        const doc = docOf(rec.seq, meta, await this.text(meta));
        if (holds.some((q) => tools.docMatches(doc, q))) {
          report.held++;
          report.heldIds.push(meta.id);
          continue;
        }
      }
      due.push({ key, rec, meta });
    }
    if (dryRun) {
      report.ids = due.map((x) => x.meta.id);
      return report;
    }
    for (let i = 0; i < due.length; i += PURGE_CHUNK) {
      const chunk = due.slice(i, i + PURGE_CHUNK);
      const body: PurgeBody = { at: now.toISOString(), purged: chunk.map((x) => ({ seq: x.rec.seq, mac: x.rec.mac, id: x.meta.id })) };
      const { record: purgeRec, ops } = chain.append('purge', body);
      ops.push(...chain.tombstoneOps(chunk.map((x) => x.rec), purgeRec.seq));
      ops.push(...chunk.map((x) => ({ type: 'del' as const, sublevel: EXPIRY, key: x.key })));
      const delta = new Map<string, number>();
      for (const x of chunk) for (const a of [x.meta.content, x.meta.text]) delta.set(a, (delta.get(a) ?? 0) + 1);
      const gone: string[] = [];
      for (const [address, n] of delta) {
        const left = (((await sublevel(db, REFS).get(address)) as number | undefined) ?? 0) - n;
        if (left > 0) ops.push({ type: 'put', sublevel: REFS, key: address, value: left });
        else {
          ops.push({ type: 'del', sublevel: REFS, key: address });
          gone.push(address);
        }
      }
      try {
        const dropped = await this.d.blobs.drop(gone);
        await this.d.durability.write([...ops, ...dropped.ops]);
        await dropped.after();
      } catch (err) {
        await chain.reset();
        throw err;
      }
      const seqs = chunk.map((x) => x.rec.seq);
      await this.toIndex(() => this.d.index.remove(seqs));
      report.purged += chunk.length;
      report.ids.push(...chunk.map((x) => x.meta.id));
      this.d.log.info({ evt: 'archive.purge', records: chunk.length, purgeSeq: purgeRec.seq, blobs: gone.length }, 'archived mail past retention purged');
    }
    return report;
  }

  /**
   * Brings the index up to the chain's head (at start, after a takeover, after a reindex's
   * clear). Intake goes on meanwhile without indexing; the loop then reads what it took in
   * from the store. It ends, under the intake's lane, only when nothing is left, so no batch
   * is indexed twice or skipped.
   */
  async catchUp(progress?: (seq: number) => void): Promise<number> {
    this.catchingUp = true;
    let n = 0;
    // Records that are no message (purges, tombstones) are never in the index: what was read counts.
    let scanned = 0;
    try {
      await this.indexIdle();
      // Updates skipped after a failure are all behind us: this catch-up reads them from the store.
      this.indexBroken = false;
      for (;;) {
        await this.indexIdle();
        const from = Math.max(await this.d.index.indexedUpTo(), scanned) + 1;
        const done = await this.serial(async () => {
          if (from <= this.d.chain.head().seq) return false;
          this.catchingUp = false;
          return true;
        });
        if (done || this.stopping) return n;
        const r = await this.indexFrom(from, progress);
        n += r.indexed;
        scanned = r.to;
      }
    } catch (err) {
      this.indexBehind();
      throw err;
    } finally {
      // A catch-up that failed leaves the intake not indexing: the next catch-up covers it.
      if (!this.indexBroken) this.catchingUp = false;
    }
  }

  /** Rebuilds the index from the store. */
  async reindex(progress?: (seq: number) => void): Promise<number> {
    this.catchingUp = true;
    await this.indexIdle();
    await this.d.index.clear();
    return this.catchUp(progress);
  }

  /** Indexes every message record from `from` to the head as it is now. */
  private async indexFrom(from: number, progress?: (seq: number) => void): Promise<{ indexed: number; to: number }> {
    const head = this.d.chain.head().seq;
    let n = 0;
    let docs: IndexDoc[] = [];
    for await (const rec of this.d.chain.iterate(from, head)) {
      if (this.stopping) return { indexed: n, to: 0 };
      if (rec.kind === 'message') {
        const meta = this.meta(rec);
        docs.push(docOf(rec.seq, meta, await this.text(meta)));
      }
      if (docs.length >= 500) {
        await this.d.index.add(docs);
        n += docs.length;
        docs = [];
        progress?.(rec.seq);
      }
    }
    if (docs.length) await this.d.index.add(docs);
    return { indexed: n + docs.length, to: head };
  }

}
