import type { BatchOp } from '../store/db.js';
import type { Envelope } from '../spool/spool.js';

/**
 * The archive's shared vocabulary and its two ports: where sealed message bytes are kept
 * (`BlobStore`: packs on the data disk here; S3-compatible object storage later) and how
 * messages are found again (`ArchiveIndex`: SQLite FTS5 on the data disk here; OpenSearch
 * or Manticore later). Everything above the ports sees only these types.
 */

/** in: from outside to us; out: a local sender to somewhere else; internal: local to local. */
export type Direction = 'in' | 'out' | 'internal';
export const DIRECTIONS: readonly Direction[] = ['in', 'out', 'internal'];

/** The scanners' class of a message ('clean' when no scanner objected). */
export type Verdict = 'clean' | 'spam' | 'virus';

/**
 * A message waiting to be archived: written in the same synced batch as the spool's commit
 * (so a message the box acknowledged is never missing from the archive), with a hard link
 * to its spool file. Key: the box's message id.
 */
export type IntakeRecord = Pick<Envelope, 'id' | 'from' | 'rcpt' | 'clientIp' | 'login' | 'listener' | 'received' | 'size'> & {
  direction: Direction;
  verdict: Verdict;
  /** The rule set in force at the commit (archive-rulesets key): later rule changes apply to new mail only. */
  ruleset: string;
};

/** An attachment as the parser saw it. */
export interface AttachmentInfo {
  name: string;
  size: number;
  contentType: string;
}

/** What is sealed into a chain record of kind 'message'. */
export interface ArchivedMeta {
  /** The box's message id (queue id); `archive show ID` takes it. */
  id: string;
  /** Content address of the message bytes (as the client sent them, without our Received line). */
  content: string;
  /** Content address of the extracted text (for snippets and reindexing). */
  text: string;
  /** Our own Received header line, put back in front by `archive export`. */
  trace: string;
  size: number;
  envelope: Omit<IntakeRecord, 'ruleset'>;
  /** Header facts. */
  subject: string;
  headerFrom: string[];
  headerTo: string[];
  date: string | null;
  messageId: string | null;
  attachments: AttachmentInfo[];
  /** ISO time of intake, and the end of retention stamped then. */
  archived: string;
  retainUntil: string;
  /** Which rule decided: its index in archive.rules, or 'default'. */
  rule: number | 'default';
}

/**
 * One link of the hash chain (sublevel `archive`, key = seq zero-padded to 12 digits).
 * `mac` = HMAC-SHA256(chain key, canonical(seq, kind, prev, sealed)); `prev` is the mac of
 * seq-1 ('0' x 64 for the first). A purged message keeps its seq, prev and mac as a
 * tombstone; the purge record that removed it lists {seq, mac} of every record it purged.
 */
export interface ChainRecord {
  seq: number;
  kind: 'message' | 'purge' | 'tombstone';
  prev: string;
  mac: string;
  /** base64 of the sealed JSON body: ArchivedMeta (message) or PurgeBody (purge). Absent on a tombstone. */
  sealed?: string;
  /** On a tombstone: the seq of the purge record that removed it. */
  purgedBy?: number;
}

export interface PurgeBody {
  at: string;
  /** Every record purged, with its mac as it was. */
  purged: { seq: number; mac: string; id: string }[];
}

/** The newest link: kept with every batch; goes with every backup and daily into the event log. */
export interface ChainHead {
  seq: number;
  mac: string;
}

/**
 * Where sealed (compressed, encrypted) blobs live. A put returns the record ops that make
 * the blobs known; the caller writes them in its own synced batch, after the put resolved
 * (the bytes are durable by then). So a crash between leaves bytes no record names, which
 * `sweep` removes at start; never a record without its bytes.
 */
export interface BlobStore {
  /** Stores blobs not already present (content addressing: a duplicate costs nothing). */
  put(blobs: { address: string; sealed: Buffer }[]): Promise<BatchOp[]>;
  get(address: string): Promise<Buffer | null>;
  has(address: string): Promise<boolean>;
  /** The ops that forget addresses, and what to do once they are durable (free the space). */
  drop(addresses: string[]): Promise<{ ops: BatchOp[]; after: () => Promise<void> }>;
  /** The caller's batch with the last put's ops failed: forget what that put handed out. */
  reset?(): void;
  /** Removes bytes that no record names (a crash between a put and its batch). */
  sweep(): Promise<number>;
  stats(): Promise<{ blobs: number; bytes: number; files: number }>;
}

/** A message as the index sees it (extracted text, never the raw bytes). */
export interface IndexDoc {
  seq: number;
  /** ms since epoch of arrival. */
  time: number;
  direction: Direction;
  /** Envelope sender and header From addresses. */
  from: string[];
  /** Envelope recipients (Bcc included) and header To/Cc addresses. */
  to: string[];
  subject: string;
  body: string;
  attachmentNames: string[];
  /** Text of attachments where cheap (text/plain, text/html). */
  attachmentText: string;
}

export interface SearchQuery {
  /** Words; Chinese runs are matched by character bigrams, English words by stem. Empty: filters only. */
  text: string;
  /** An address (a@b.test) or a domain (b.test or @b.test). */
  from?: string;
  to?: string;
  /** ms since epoch, inclusive. */
  since?: number;
  until?: number;
  direction?: Direction;
  /** Page size. */
  limit: number;
  /** Paging cursor: only seqs below this one (newest first). */
  before?: number;
}

export interface SearchResult {
  /** Newest first. */
  seqs: number[];
  /** True when there are more matches older than the last one. */
  more: boolean;
}

/** The search index: derived from the store (`reindex` rebuilds it), never the record of truth. */
export interface ArchiveIndex {
  add(docs: IndexDoc[]): Promise<void>;
  remove(seqs: number[]): Promise<void>;
  search(q: SearchQuery): Promise<SearchResult>;
  /** The highest seq indexed so far (catch-up after a failover, or after a crash). */
  indexedUpTo(): Promise<number>;
  /** Forgets everything (reindex). */
  clear(): Promise<void>;
  close(): Promise<void>;
}
