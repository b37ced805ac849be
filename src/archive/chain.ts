import { createHmac } from 'node:crypto';
import { sublevel, type BatchOp, type Db } from '../store/db.js';
import type { SublevelDecl } from '../store/data.js';
import type { ArchiveKeys } from './keys.js';
import type { BlobStore, ChainHead, ChainRecord, PurgeBody } from './types.js';
import { isAddress, open, openJson, sealJson } from './seal.js';

const CHAIN = 'archive';
const STATE = 'archive-state';
const HEAD_KEY = 'head';

export const CHAIN_DATA_SUBLEVELS: SublevelDecl[] = [
  { name: CHAIN, describe: 'archive hash chain: one sealed record per archived message or purge, in arrival order', replicate: true },
  { name: STATE, describe: "archive chain head (the newest link's seq and mac)", replicate: true },
];

/** The `prev` of the first record. */
export const GENESIS = '0'.repeat(64);
const SEQ_KEY = /^\d{12}$/;
const MAC = /^[0-9a-f]{64}$/;
const KINDS = new Set(['message', 'purge', 'tombstone']);

export const seqKey = (seq: number): string => String(seq).padStart(12, '0');

/**
 * The mac of a chain record: HMAC-SHA256 under the chain key over a canonical encoding.
 * No field can contain a newline (a decimal, a kind name, hex, base64), so the encoding
 * is unambiguous.
 */
export function chainMac(keys: ArchiveKeys, seq: number, kind: 'message' | 'purge', prev: string, sealed: string): string {
  return createHmac('sha256', keys.chain).update(`mlsd-archive-chain-v1\n${seq}\n${kind}\n${prev}\n${sealed}`).digest('hex');
}

export class ChainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChainError';
  }
}

export type ProblemKind = 'altered' | 'missing' | 'inserted';

export interface VerifyProblem {
  /** The record's key in the `archive` sublevel, or 'head', or 'anchor:<seq>'. */
  key: string;
  seq?: number;
  kind: ProblemKind;
  detail: string;
}

export interface VerifyReport {
  records: number;
  messages: number;
  tombstones: number;
  purges: number;
  problems: VerifyProblem[];
}

export interface VerifyOptions {
  blobs: BlobStore;
  keys: ArchiveKeys;
  /** The blob addresses of a message body (the capability may check the whole ArchivedMeta); default: its content and text fields. */
  openMeta?: (body: unknown, seq: number) => { content: string; text: string };
  /** Heads logged earlier (the daily event, backups): each must still be in the chain as it was. */
  anchors?: ChainHead[];
  onProgress?: (p: { records: number }) => void;
}

/** A record as read back; null fields where the stored value was not a record at all. */
function parseRecord(v: unknown): ChainRecord | null {
  const r = v as Partial<ChainRecord> | null;
  if (r === null || typeof r !== 'object') return null;
  if (!Number.isSafeInteger(r.seq) || r.seq! < 1 || !KINDS.has(r.kind as string)) return null;
  if (typeof r.prev !== 'string' || typeof r.mac !== 'string' || !MAC.test(r.mac)) return null;
  if (r.kind === 'tombstone' ? !Number.isSafeInteger(r.purgedBy) : typeof r.sealed !== 'string') return null;
  return r as ChainRecord;
}

/**
 * The hash chain over arrival order: sublevel `archive` (key: seq, 12 digits) and the
 * head in `archive-state`. Appends only compute: they return the ops, which the caller
 * writes in its own synced batch (with the intake or purge they belong to); several
 * appends may go into one batch. When that batch fails, `reset()` reloads the head.
 */
export class Chain {
  private h: ChainHead = { seq: 0, mac: GENESIS };

  constructor(
    private readonly db: Db,
    private readonly keys: ArchiveKeys,
    /** `archive.encrypt`, read at each append (a config reload may change it). */
    private readonly encrypt: () => boolean,
  ) {}

  private async storedHead(): Promise<ChainHead | null> {
    const v = (await sublevel(this.db, STATE).get(HEAD_KEY)) as ChainHead | undefined;
    if (v === undefined) return null;
    if (!Number.isSafeInteger(v?.seq) || v.seq < 0 || typeof v.mac !== 'string') throw new ChainError(`archive: the chain head is malformed: ${JSON.stringify(v).slice(0, 120)}`);
    return { seq: v.seq, mac: v.mac };
  }

  /**
   * Reads the head. Refuses to go on when records lie beyond it (or there is none but
   * records exist): appending would overwrite them, destroying what `verify` must show.
   */
  async open(): Promise<void> {
    await this.reset();
    for await (const key of sublevel(this.db, CHAIN).keys({ reverse: true, limit: 1 })) {
      if (SEQ_KEY.test(key) && Number(key) > this.h.seq) {
        throw new ChainError(`archive: chain record ${Number(key)} lies beyond the head (${this.h.seq}); run 'mlsd archive verify'`);
      }
    }
  }

  /** Reloads the head from the database (the caller's batch with the last appends failed). */
  async reset(): Promise<void> {
    this.h = (await this.storedHead()) ?? { seq: 0, mac: GENESIS };
  }

  head(): ChainHead {
    return { ...this.h };
  }

  append(kind: 'message' | 'purge', body: object): { record: ChainRecord; ops: BatchOp[] } {
    const seq = this.h.seq + 1;
    const prev = this.h.mac;
    const sealed = sealJson(this.keys, seq, body, this.encrypt());
    const record: ChainRecord = { seq, kind, prev, mac: chainMac(this.keys, seq, kind, prev, sealed), sealed };
    this.h = { seq, mac: record.mac };
    return {
      record,
      ops: [
        { type: 'put', sublevel: CHAIN, key: seqKey(seq), value: record },
        { type: 'put', sublevel: STATE, key: HEAD_KEY, value: this.head() },
      ],
    };
  }

  /** Replaces purged message records by tombstones: seq, prev and mac stay, so the chain still links. */
  tombstoneOps(records: ChainRecord[], purgeSeq: number): BatchOp[] {
    return records.map((r) => {
      if (r.kind !== 'message') throw new ChainError(`archive: chain record ${r.seq} is a ${r.kind}, not a message to purge`);
      const t: ChainRecord = { seq: r.seq, kind: 'tombstone', prev: r.prev, mac: r.mac, purgedBy: purgeSeq };
      return { type: 'put', sublevel: CHAIN, key: seqKey(r.seq), value: t };
    });
  }

  async get(seq: number): Promise<ChainRecord | null> {
    if (!Number.isSafeInteger(seq) || seq < 1) return null;
    const v = (await sublevel(this.db, CHAIN).get(seqKey(seq))) as unknown;
    return v === undefined ? null : parseRecord(v);
  }

  /** Records from `from` to `to` inclusive, oldest first (malformed ones skipped: verify names them). */
  async *iterate(from = 1, to = Number.MAX_SAFE_INTEGER): AsyncGenerator<ChainRecord> {
    const range = { gte: seqKey(Math.max(1, from)), lte: seqKey(Math.min(to, 999_999_999_999)) };
    for await (const v of sublevel(this.db, CHAIN).values(range)) {
      const r = parseRecord(v);
      if (r) yield r;
    }
  }

  /** The opened body of a message or purge record (ArchivedMeta or PurgeBody). */
  body(r: ChainRecord): unknown {
    if (r.sealed === undefined) throw new ChainError(`archive: chain record ${r.seq} is a ${r.kind} and has no body`);
    return openJson(this.keys, r.seq, r.sealed);
  }

  verify(o: VerifyOptions): Promise<VerifyReport> {
    return new ChainVerifier(this.db, o, () => this.storedHead()).run();
  }
}

/** A record under check: its key, and the record when it parsed. */
interface Entry {
  key: string;
  rec: ChainRecord;
}

const BLOB_CHECKS_IN_FLIGHT = 16;
const PURGE_CACHE = 4;

/**
 * One pass over the chain in key order, holding only a window of two records, the anchors
 * and a few purge bodies. Each record is judged once its successor is known, since whether
 * a record whose mac fails was altered (the next one still links to it) or inserted (none
 * does) depends on it.
 */
class ChainVerifier {
  private readonly problems: VerifyProblem[] = [];
  private readonly report = { records: 0, messages: 0, tombstones: 0, purges: 0 };
  /** The last record accepted into the chain (its stored mac; null when it was unreadable). */
  private kept: { seq: number; mac: string | null } = { seq: 0, mac: GENESIS };
  private head: ChainHead = { seq: 0, mac: GENESIS };
  private readonly anchors = new Map<number, string>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly purges = new Map<number, Set<string> | null>();
  private shifted = false;

  constructor(
    private readonly db: Db,
    private readonly o: VerifyOptions,
    private readonly readHead: () => Promise<ChainHead | null>,
  ) {
    for (const a of o.anchors ?? []) this.anchors.set(a.seq, a.mac);
  }

  private problem(key: string, seq: number | undefined, kind: ProblemKind, detail: string): void {
    this.problems.push(seq === undefined ? { key, kind, detail } : { key, seq, kind, detail });
  }

  private macOk(r: ChainRecord): boolean {
    return r.kind === 'tombstone' || chainMac(this.o.keys, r.seq, r.kind, r.prev, r.sealed!) === r.mac;
  }

  async run(): Promise<VerifyReport> {
    const stored = await this.readHead();
    const start = stored ?? { seq: 0, mac: GENESIS };
    this.head = start;
    let pending: Entry | null = null;
    for await (const [key, value] of sublevel(this.db, CHAIN).iterator()) {
      this.report.records++;
      if (this.report.records % 10_000 === 0) this.o.onProgress?.({ records: this.report.records });
      if (!SEQ_KEY.test(key)) {
        this.problem(key, undefined, 'inserted', 'its key is not a chain seq');
        continue;
      }
      const rec = parseRecord(value);
      if (!rec) {
        // Not a record at all: it still holds its seq's place in the chain.
        if (pending) await this.judge(pending, null);
        pending = null;
        this.problem(key, Number(key), 'altered', 'the stored value is not a chain record');
        this.kept = { seq: Number(key), mac: null };
        continue;
      }
      if (rec.seq > this.head.seq) this.head = (await this.readHead()) ?? this.head; // appended since the check began?
      if (rec.seq > this.head.seq) {
        this.problem(key, rec.seq, 'inserted', `it lies after the chain head (${this.head.seq})`);
        continue;
      }
      const entry: Entry = { key, rec };
      if (pending) await this.judge(pending, entry);
      pending = entry;
    }
    if (pending) await this.judge(pending, null);
    await Promise.all(this.inflight);
    this.finish(stored, start);
    this.problems.sort((a, b) => (a.seq ?? Number.MAX_SAFE_INTEGER) - (b.seq ?? Number.MAX_SAFE_INTEGER));
    return { ...this.report, problems: this.problems };
  }

  /** Decides on record `x` given the record after it (`next`, null at the end). */
  private async judge(x: Entry, next: Entry | null): Promise<void> {
    const r = x.rec;
    const a = this.kept;
    if (r.seq <= a.seq) {
      this.problem(x.key, r.seq, 'inserted', `its seq repeats or goes back (the chain is at ${a.seq})`);
      return;
    }
    const linkOut = next ? next.rec.prev === r.mac : r.seq === this.head.seq && r.mac === this.head.mac;
    const macOk = this.macOk(r);
    if (!macOk && !linkOut) {
      const skipped = next !== null && a.mac !== null && next.rec.prev === a.mac;
      this.problem(x.key, r.seq, 'inserted', skipped ? `the chain skips over it (seq ${next.rec.seq} links to seq ${a.seq})` : 'its mac is wrong and no record links to it');
      return;
    }
    if (r.seq !== a.seq + 1) {
      const first = a.seq + 1;
      const last = r.seq - 1;
      this.problem(seqKey(first), first, 'missing', first === last ? `seq ${first} is gone from the chain` : `seqs ${first} to ${last} are gone from the chain (${last - first + 1} records)`);
    } else if (macOk && a.mac !== null && r.prev !== a.mac) {
      this.problem(x.key, r.seq, 'altered', `its prev does not match the mac of seq ${a.seq}`);
    }
    if (!macOk) this.problem(x.key, r.seq, 'altered', 'its content does not match its mac');
    this.keyCheck(x);
    this.kept = { seq: r.seq, mac: r.mac };
    const anchor = this.anchors.get(r.seq);
    if (anchor !== undefined) {
      this.anchors.delete(r.seq);
      if (anchor !== r.mac) this.problem(`anchor:${r.seq}`, r.seq, 'missing', `the head logged at seq ${r.seq} is no longer in the chain (its mac differs): the chain was rewritten`);
    }
    if (r.kind === 'tombstone') {
      this.report.tombstones++;
      await this.checkTombstone(x);
    } else if (r.kind === 'purge') {
      this.report.purges++;
    } else {
      this.report.messages++;
      if (macOk) await this.checkMessage(x);
    }
  }

  /** A record stored under another seq's key: named once per run of moved records. */
  private keyCheck(x: Entry): void {
    const moved = Number(x.key) !== x.rec.seq;
    if (moved && !this.shifted) this.problem(x.key, x.rec.seq, 'altered', `record ${x.rec.seq} is stored under key ${x.key}: records from here on were moved`);
    this.shifted = moved;
  }

  /** A tombstone stands for a purged message only if a genuine purge record lists it with its mac. */
  private async checkTombstone(x: Entry): Promise<void> {
    const r = x.rec;
    const listed = await this.purgeList(r.purgedBy!);
    if (!listed?.has(`${r.seq}:${r.mac}`)) {
      this.problem(x.key, r.seq, 'altered', `a tombstone that no purge record lists (purgedBy ${r.purgedBy}): a message deleted outside purge`);
    }
  }

  private async purgeList(seq: number): Promise<Set<string> | null> {
    if (this.purges.has(seq)) return this.purges.get(seq)!;
    let list: Set<string> | null = null;
    const v = Number.isSafeInteger(seq) && seq > 0 ? ((await sublevel(this.db, CHAIN).get(seqKey(seq))) as unknown) : undefined;
    const p = v === undefined ? null : parseRecord(v);
    if (p && p.kind === 'purge' && p.seq === seq && this.macOk(p)) {
      try {
        const body = openJson(this.o.keys, seq, p.sealed!) as PurgeBody;
        list = new Set(body.purged.map((e) => `${e.seq}:${e.mac}`));
      } catch {
        list = null; // the purge record itself is named when the walk reaches it
      }
    }
    if (this.purges.size >= PURGE_CACHE) this.purges.delete(this.purges.keys().next().value!);
    this.purges.set(seq, list);
    return list;
  }

  private async checkMessage(x: Entry): Promise<void> {
    const r = x.rec;
    let addrs: { content: string; text: string };
    try {
      const body = openJson(this.o.keys, r.seq, r.sealed!);
      addrs = this.o.openMeta ? this.o.openMeta(body, r.seq) : (body as { content: string; text: string });
    } catch (err) {
      this.problem(x.key, r.seq, 'altered', `its body does not open: ${(err as Error).message}`);
      return;
    }
    const p = this.checkBlobs(x, addrs).finally(() => this.inflight.delete(p));
    this.inflight.add(p);
    if (this.inflight.size >= BLOB_CHECKS_IN_FLIGHT) await Promise.race(this.inflight);
  }

  private async checkBlobs(x: Entry, addrs: { content: string; text: string }): Promise<void> {
    for (const role of ['content', 'text'] as const) {
      const address = addrs?.[role];
      if (!isAddress(address)) {
        this.problem(x.key, x.rec.seq, 'altered', `its ${role} address is not an address`);
        continue;
      }
      try {
        const sealed = await this.o.blobs.get(address);
        if (!sealed) this.problem(x.key, x.rec.seq, 'missing', `its ${role} blob ${address.slice(0, 16)} is missing`);
        else await open(this.o.keys, address, sealed);
      } catch (err) {
        this.problem(x.key, x.rec.seq, 'altered', `its ${role} blob: ${(err as Error).message}`);
      }
    }
  }

  /** What only the end of the walk shows: the head, and anchors never met. */
  private finish(stored: ChainHead | null, start: ChainHead): void {
    if (stored === null && this.kept.seq > 0) this.problem(HEAD_KEY, undefined, 'missing', 'the chain head record is gone');
    if (start.seq > this.kept.seq) {
      const first = this.kept.seq + 1;
      this.problem(seqKey(first), first, 'missing', `the head is at seq ${start.seq} but the chain ends at ${this.kept.seq}: ${start.seq - this.kept.seq} records gone from the end`);
    } else if (start.seq === this.kept.seq && this.kept.mac !== null && stored !== null && start.mac !== this.kept.mac) {
      this.problem(HEAD_KEY, start.seq, 'altered', `the head's mac does not match record ${start.seq}`);
    }
    for (const [seq] of this.anchors) {
      this.problem(`anchor:${seq}`, seq, 'missing', `the head logged at seq ${seq} is gone from the chain`);
    }
  }
}
