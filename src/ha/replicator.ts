import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import type { BatchOp, Db } from '../store/db.js';
import { sublevel } from '../store/db.js';
import type { DataRegistry } from '../store/data.js';
import type { Durability, MessageCommit } from '../store/durability.js';
import type { NetLink, Reply } from './netlink.js';
import type { FrameHeader } from './wire.js';
import { MergeIntake } from './merge-intake.js';
import { FileDigests, needsResend, parseDigest, type FileDigest } from './digests.js';

export type PeerSync = 'down' | 'merging' | 'syncing' | 'inSync';

/** The commit that the peer did not confirm, under `ha.onPeerLost: tempfail`. */
export class PeerLostError extends Error {
  readonly kind = 'peerLost';
  /** The spool takes its commit back: the client gets 451 and keeps the message. */
  readonly undoCommit = true;
}

export interface ReplicatorDeps {
  link: NetLink;
  dataDir: string;
  db: Db;
  /** What the capabilities declared: which records and folders go to the standby. */
  data: DataRegistry;
  /** This box's own writes (files taken in from the other box are written through it). */
  local: Durability;
  settings: () => { syncTimeoutMs: number; onPeerLost: 'accept' | 'tempfail' };
  /** Config-dir files to mirror (name → contents). */
  configFiles: () => Promise<Record<string, Buffer>>;
  /** The box's epoch: sync generations of a later active are always larger. */
  epoch: () => number;
  onSync: (state: PeerSync, reason: string) => void;
  /** The other box handed over what it accepted alone (counts per kind). */
  onMerged: (counts: Record<string, number>) => void;
  log: Logger;
}

type Job = () => Promise<void>;

interface CommitWaiter {
  seq: number;
  timer: NodeJS.Timeout;
  done: (confirmed: boolean) => void;
}

/**
 * The active box's side of replication. One ordered stream carries everything: message
 * commits (whose callers wait for the standby's fsync), then, asynchronously, the LevelDB
 * batches (routing outcomes, queue state, counters), mailbox files and config files. A
 * standby that joins first gets a snapshot taken inside the same stream, so every change
 * made while it is read is applied after it.
 */
export class Replicator {
  state: PeerSync = 'down';
  /** Messages acknowledged while the standby was not in sync: held on this disk only. */
  oneDiskOnly = 0;
  /** Frames sent. */
  seq = 0;
  private jobs: Job[] = [];
  private pumping = false;
  /** Commits waiting for the standby, from the moment they are queued. */
  private readonly waiting = new Set<CommitWaiter>();
  private readonly bySeq = new Map<number, CommitWaiter>();
  /** Frames sent and not yet acknowledged (acks of commits overtake ordered frames). */
  private readonly unacked = new Set<number>();
  private syncedSeq = 0;
  private session = 0;
  private jobSession = 0;
  private configSent = '';
  private configPending: Promise<void> | null = null;
  /** The standby connection a join or merge came in on (a new connection restarts it). */
  private joinConn = -1;
  private readonly intake: MergeIntake;
  /** Messages whose commit went into this session's stream: the standby holds their data. */
  private readonly streamed = new Set<string>();
  /** The last queued 'ops' frame, while it is still last in the queue (later batches join it). */
  private opsTail: { ops: BatchOp[]; job: Job } | null = null;
  /** Hashes of this box's files, compared with the standby's at a snapshot. */
  private readonly digests: FileDigests;

  constructor(private readonly d: ReplicatorDeps) {
    this.digests = new FileDigests(d.dataDir);
    this.intake = new MergeIntake({ dataDir: d.dataDir, data: d.data, local: d.local, onMerged: d.onMerged, log: d.log });
    d.link.onOutbound((up) => {
      if (!up && this.state !== 'down') this.lost('network link to the standby went down');
    });
    d.link.onInboundClose((conn) => {
      if (conn === this.joinConn && (this.state === 'merging' || this.state === 'syncing')) this.lost('the standby dropped its connection while joining');
    });
    d.link.onFrame((f, dir, reply, conn) => {
      if (dir === 'out' && f.header.t === 'ack') this.onAck(f.header.seq as number);
      if (dir === 'in' && f.header.t === 'join') {
        void this.onJoin(f.header, reply, conn).catch((err: Error) => {
          this.d.log.error({ evt: 'ha.join.fail', err: err.message }, 'could not start a sync for the standby');
          this.lost(`sync could not start: ${err.message}`);
        });
      }
      if (dir === 'in' && f.header.t.startsWith('merge-') && conn === this.joinConn) {
        this.intake.frame(f.header, f.body, () => conn === this.joinConn);
      }
    });
  }

  /** Changes whenever the standby drops out of sync; it compares it with the one it synced at. */
  get generation(): number {
    return this.d.epoch() * 1_000_000 + this.session;
  }

  get inSync(): boolean {
    return this.state === 'inSync';
  }

  /** Frames sent and not yet confirmed. */
  get behind(): number {
    return this.unacked.size;
  }

  /** Stops replicating (the box is no longer active). */
  stop(reason: string): void {
    if (this.state !== 'down') this.lost(reason);
    this.jobs = [];
  }

  private setState(s: PeerSync, reason: string): void {
    if (this.state === s) return;
    this.state = s;
    this.d.onSync(s, reason);
  }

  /** Marks the standby out of sync; every commit waiting on it is answered now. */
  private lost(reason: string): void {
    this.session++;
    this.jobs = [];
    this.setState('down', reason);
    this.intake.cancel();
    this.joinConn = -1;
    this.syncedSeq = 0;
    this.streamed.clear();
    this.opsTail = null;
    this.unacked.clear();
    this.bySeq.clear();
    // Every commit still waiting, queued or sent, is answered now (as not confirmed).
    const w = [...this.waiting];
    this.waiting.clear();
    for (const x of w) {
      clearTimeout(x.timer);
      x.done(false);
    }
    this.d.link.resetOutbound();
  }

  private enqueue(job: Job): void {
    this.jobs.push(job);
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    const session = this.session;
    while (this.jobs.length > 0 && session === this.session) {
      const job = this.jobs.shift()!;
      try {
        this.jobSession = session;
        await job();
      } catch (err) {
        if (session === this.session) this.lost(`replication stream broke: ${(err as Error).message}`);
      }
    }
    this.pumping = false;
    if (this.jobs.length > 0) void this.pump();
  }

  /** Sends one frame of the current session; a job left over from a lost session stops here. */
  private frame(h: FrameHeader, body?: Buffer | null): Promise<void> {
    if (this.jobSession !== this.session) return Promise.reject(new Error('replication session ended'));
    const seq = ++this.seq;
    this.unacked.add(seq);
    return this.d.link.send({ ...h, seq }, body);
  }

  private onAck(seq: number): void {
    this.unacked.delete(seq);
    const w = this.bySeq.get(seq);
    if (w) {
      this.bySeq.delete(seq);
      this.waiting.delete(w);
      clearTimeout(w.timer);
      w.done(true);
    }
    // Only the ack of 'synced' itself: the standby acks it after everything before it is
    // applied, while commits sent later are acked out of that order.
    if (this.state === 'syncing' && this.syncedSeq && seq === this.syncedSeq) {
      this.syncedSeq = 0;
      this.oneDiskOnly = 0;
      this.setState('inSync', 'standby confirmed the snapshot');
    }
  }

  /**
   * The spool's commit hook. In sync: resolves once the standby has fsynced the message
   * and its envelope. Otherwise, or if it does not answer within syncTimeoutMs, the
   * administrator's `ha.onPeerLost` decides: accept on this disk only, or a 451.
   */
  async commit(c: MessageCommit): Promise<void> {
    const { env, id, dataPath, body, localDurable } = c;
    // The records a commit tap wrote in the commit's batch go in the same frame.
    const head = { t: 'commit', id, env, ...(c.ops?.length ? { ops: c.ops } : {}) };
    const { onPeerLost, syncTimeoutMs } = this.d.settings();
    if (this.state === 'inSync') {
      const data = body ? Buffer.concat(body) : await readFile(dataPath);
      const session = this.session;
      const confirmed = await new Promise<boolean>((resolve) => {
        // The clock runs from the moment the commit is queued: a standby that drains its
        // socket slowly holds up the queue, and that counts against it.
        const w: CommitWaiter = {
          seq: 0,
          done: resolve,
          timer: setTimeout(() => {
            if (!this.waiting.delete(w)) return;
            this.bySeq.delete(w.seq);
            resolve(false);
            if (this.session === session) this.lost(`standby did not confirm ${id} within ${syncTimeoutMs} ms`);
          }, syncTimeoutMs),
        };
        this.waiting.add(w);
        this.streamed.add(id);
        this.enqueue(async () => {
          if (!this.waiting.has(w)) return; // answered already (timed out, or the session ended)
          // Jobs run one at a time, so the frame sent below gets exactly this number.
          w.seq = this.seq + 1;
          this.bySeq.set(w.seq, w);
          await this.frame(head, data);
        });
      });
      if (confirmed) return;
    }
    if (onPeerLost === 'tempfail') throw new PeerLostError('the standby is not in sync');
    this.oneDiskOnly++;
    // Decided only once our own record is durable: a snapshot that starts from then on
    // reads it; one that started before may have missed it, so the commit is queued behind.
    await localDurable.catch(() => undefined);
    if (this.state !== 'down') {
      const data = body ? Buffer.concat(body) : await readFile(dataPath).catch(() => null);
      if (data) {
        this.streamed.add(id);
        this.enqueue(() => this.frame(head, data));
      }
    }
  }

  private get streaming(): boolean {
    return this.state === 'inSync' || this.state === 'syncing';
  }

  /** Observer of every LevelDB batch written through the group committer. */
  ops(ops: BatchOp[]): void {
    if (!this.streaming) return;
    const data = this.d.data;
    const mine = ops.filter((o) => data.isReplicated(o.sublevel));
    if (!mine.length) return;
    const msgFile = (key: string) => data.messages().file(key);
    for (const o of mine) {
      // The standby lets go of a message's data when no record refers to its file; so does the stream.
      if (o.type !== 'del' || !this.streamed.has(o.key) || data.fileOf(o.sublevel, o.key) !== msgFile(o.key)) continue;
      if (!mine.some((x) => x.type === 'put' && x.key === o.key && data.fileOf(x.sublevel, x.key) === msgFile(o.key))) this.streamed.delete(o.key);
    }
    // Batches that follow one another with nothing between them go as one frame.
    const tail = this.opsTail;
    if (tail && this.jobs[this.jobs.length - 1] === tail.job) {
      tail.ops.push(...mine);
      return;
    }
    const next = {
      ops: mine,
      job: async () => {
        if (this.opsTail === next) this.opsTail = null;
        await this.frame({ t: 'ops', ops: next.ops });
      },
    };
    this.opsTail = next;
    this.enqueue(next.job);
  }

  /**
   * A mailbox copy was delivered. When the standby already has the message (its commit is
   * in this session's stream), only the header lines go and it writes the same file from
   * its own copy; otherwise the file itself is sent.
   */
  delivered(rel: string, source?: { messageId: string; prefix: string }): void {
    if (!this.streaming) return;
    if (source && this.streamed.has(source.messageId)) {
      this.enqueue(() => this.frame({ t: 'deliver', rel, id: source.messageId, prefix: source.prefix }));
      return;
    }
    this.file(rel);
  }

  /**
   * A file delivered under the data dir (a mailbox copy), sent as it is when its turn
   * comes. A mail client may have moved it from new/ to cur/ meanwhile: it is looked for
   * there by its unique name. Only a file the user already deleted is not sent.
   */
  file(rel: string): void {
    if (!this.streaming) return;
    this.enqueue(async () => {
      const now = await this.d.data.locate(this.d.dataDir, rel);
      const data = now ? await readFile(join(this.d.dataDir, this.d.data.safeRel(now))).catch(() => null) : null;
      if (data) await this.frame({ t: 'file', rel: now }, data);
    });
  }

  /**
   * Sends the config files if they changed since last sent. Resolves once the standby has
   * them (or the session ends, or syncTimeoutMs passes), so `mlsd user add` on the active
   * returns with the account on both boxes.
   */
  async configChanged(force = false): Promise<void> {
    if (!this.streaming) return;
    const files = await this.d.configFiles();
    const sig = Object.entries(files)
      .map(([k, v]) => `${k}:${v.toString('base64')}`)
      .sort()
      .join('|');
    if (!force && sig === this.configSent) return this.configPending ?? undefined;
    this.configSent = sig;
    const payload = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v.toString('base64')]));
    if (force) {
      // Inside the snapshot: queued behind it, nobody waits.
      this.enqueue(() => this.frame({ t: 'cfgfiles', files: payload }));
      return;
    }
    const pending = new Promise<void>((resolve) => {
      const w: CommitWaiter = { seq: 0, done: () => resolve(), timer: setTimeout(() => this.waiting.delete(w) && resolve(), this.d.settings().syncTimeoutMs) };
      this.waiting.add(w);
      this.enqueue(async () => {
        if (!this.waiting.has(w)) return void (await this.frame({ t: 'cfgfiles', files: payload }));
        w.seq = this.seq + 1;
        this.bySeq.set(w.seq, w);
        await this.frame({ t: 'cfgfiles', files: payload });
      });
    });
    // A caller that finds these files already on their way waits for the same confirmation.
    this.configPending = pending;
    await pending;
    if (this.configPending === pending) this.configPending = null;
  }

  /**
   * A standby asks to (re)join. A box that served alone first hands over what only it
   * has; then the snapshot goes out through the stream, then live changes follow.
   */
  private async onJoin(h: FrameHeader, reply: Reply, conn: number): Promise<void> {
    if (this.state !== 'down') {
      // The same connection asking again while its join is under way: nothing new.
      if (conn === this.joinConn && this.state !== 'inSync') return;
      // A standby that asks again on a new connection, or once in sync, lost its place.
      this.lost('standby asked to join again');
    }
    if (!this.d.link.outboundUp) {
      reply({ t: 'join-later' }); // it asks again as soon as both connections are up
      return;
    }
    this.joinConn = conn;
    const listed: unknown[] = Array.isArray(h.inventory) ? h.inventory : [];
    const sums: unknown[] = Array.isArray(h.sums) ? h.sums : [];
    // What the standby has: each name with its size and hash (null from a standby of the
    // previous version, which sends names only: its files are trusted by name, as before).
    const theirMap = new Map<string, FileDigest | null>();
    listed.forEach((r, i) => typeof r === 'string' && theirMap.set(r, parseDigest(sums[i])));
    const theirs = [...theirMap.keys()];
    if (theirs.length && !Array.isArray(h.sums)) {
      this.d.log.warn({ evt: 'ha.join.noDigests', files: theirs.length }, 'the standby runs an older version and sends file names only: its files are trusted by name; upgrade it');
    }
    const session = this.session;
    if (h.merge) {
      this.setState('merging', 'standby served alone; taking what only it has');
      const data = this.d.data;
      const mine = new Set((await data.inventory(this.d.dataDir)).map((r) => data.identity(r)));
      const want = theirs.filter((r) => data.isMergeableFile(r) && !mine.has(data.identity(r)));
      const merging = this.intake.begin();
      reply({ t: 'pull', files: want, records: true });
      const { ok, failed } = await merging;
      if (session !== this.session) return;
      if (!ok) {
        // Never snapshot over mail the other box still holds alone: it would be pruned there.
        this.lost(failed ? 'could not take in all the mail the standby had alone' : 'the standby did not finish handing over its mail');
        return;
      }
    }
    this.setState('syncing', 'sending the snapshot');
    this.enqueue(() => this.snapshot(theirMap));
  }

  private async snapshot(theirMap: Map<string, FileDigest | null>): Promise<void> {
    const theirs = [...theirMap.keys()];
    const started = Date.now();
    const sublevels = this.d.data.replicatedSublevels();
    await this.frame({ t: 'snap-begin', sublevels });
    let records = 0;
    for (const name of sublevels) {
      let batch: [string, unknown][] = [];
      for await (const [k, v] of sublevel(this.d.db, name).iterator()) {
        batch.push([k, v]);
        if (batch.length >= 500) {
          await this.frame({ t: 'snap-db', sublevel: name, entries: batch });
          records += batch.length;
          batch = [];
        }
      }
      if (batch.length) await this.frame({ t: 'snap-db', sublevel: name, entries: batch });
      records += batch.length;
    }
    const mine = await this.d.data.inventory(this.d.dataDir);
    let files = 0;
    let repaired = 0;
    for (const rel of mine) {
      if (theirMap.has(rel)) {
        // Same name: the sizes first (a stat), the hash only when they agree.
        const why = await needsResend(this.digests, rel, theirMap.get(rel)!);
        if (why === 'same' || why === 'unknown') continue;
        repaired++;
        this.d.log.warn({ evt: 'ha.sync.mismatch', rel, differs: why }, "the standby's copy of a file differs from this box's; sending it again");
      }
      const data = await readFile(join(this.d.dataDir, rel)).catch(() => null);
      if (!data) continue;
      await this.frame({ t: 'file', rel }, data);
      files++;
    }
    this.digests.keepOnly(mine);
    const mineSet = new Set(mine);
    const prune = theirs.filter((r) => !mineSet.has(r));
    if (prune.length) await this.frame({ t: 'prune', rels: prune });
    await this.configChanged(true).catch(() => undefined);
    // configChanged queued its frame behind us; 'synced' must follow it, so it is queued too.
    this.enqueue(async () => {
      await this.frame({ t: 'synced', gen: this.generation });
      this.syncedSeq = this.seq;
      this.d.log.info({ evt: 'ha.sync.sent', records, files, repaired, pruned: prune.length, ms: Date.now() - started }, 'snapshot sent to the standby');
    });
  }
}
