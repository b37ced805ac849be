import { link, open, readFile, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { sublevel, type BatchOp, type Db, type GroupCommitter } from '../store/db.js';
import { mkdirDurable, writeFileAtomic, type DirSyncer } from '../store/atomic.js';
import { checkKey, exists, filesToFollow, type DataRegistry } from '../store/data.js';
import type { NetLink, Reply } from './netlink.js';
import { HA_WIRE_VERSION, type Frame, type FrameHeader } from './wire.js';
import { FileDigests, formatDigest } from './digests.js';

export interface ApplierDeps {
  link: NetLink;
  dataDir: string;
  db: Db;
  /** What the capabilities declared: which records and folders come from the active. */
  data: DataRegistry;
  group: GroupCommitter;
  dirs: DirSyncer;
  applyConfigFiles: (files: Record<string, Buffer>) => Promise<void>;
  /** The active began a snapshot: this box is no longer in sync until it ends. */
  onSnapshotBegin: () => void;
  /** The snapshot and everything before it is applied; `gen` is the active's sync generation. */
  onSynced: (gen: number) => Promise<void>;
  /** A frame could not be applied: this box is behind until the next snapshot. */
  onBroken: (reason: string) => void;
  /** The active answered a join: 'later' (ask again soon) or 'pull' (a merge is under way). */
  onJoinAnswer: (answer: 'later' | 'pull') => void;
  log: Logger;
}

/**
 * The standby's side of replication. Commits are written at once and in parallel (each
 * is acknowledged when its file, folder and envelope are fsynced, so the active's 250 can
 * go out); every other frame is applied in order. Changes about a message always come
 * after its commit was confirmed, so the two need no ordering between them; a snapshot
 * or the end of one waits for the commits in flight.
 */
export class Applier {
  enabled = false;
  applied = 0;
  /** Set when a frame failed: nothing more is applied until the next snapshot begins. */
  private broken = false;
  private chain: Promise<void> = Promise.resolve();
  private readonly inflight = new Map<string, Promise<void>>();
  /** Hashes of this box's files, for the join's inventory (kept across joins of one run). */
  private readonly digests: FileDigests;

  constructor(private readonly d: ApplierDeps) {
    this.digests = new FileDigests(d.dataDir);
    d.link.onFrame((f, dir, reply) => {
      if (dir === 'in' && this.enabled) this.handle(f, reply);
      if (dir === 'out' && this.enabled && f.header.t === 'pull') {
        d.onJoinAnswer('pull');
        void this.sendMerge(f.header);
      }
      if (dir === 'out' && this.enabled && f.header.t === 'join-later') d.onJoinAnswer('later');
    });
  }

  /** Resolves once every frame received so far is applied (before this box takes over). */
  async drain(): Promise<void> {
    await this.chain;
    await Promise.all([...this.inflight.values()]);
  }

  private handle(f: Frame, reply: Reply): void {
    const h = f.header;
    const seq = h.seq as number | undefined;
    if (seq === undefined) return; // heartbeats and the like
    if (h.t === 'snap-begin') this.broken = false;
    if (this.broken) return;
    const ack = () => {
      if (seq > this.applied) this.applied = seq;
      reply({ t: 'ack', seq });
    };
    const fail = (err: Error) => {
      if (this.broken) return;
      // A frame that cannot be applied leaves this box behind: it says so (it must not
      // take over now), stops applying, and drops the connection so the active resyncs.
      this.broken = true;
      this.d.log.error({ evt: 'ha.apply.fail', t: h.t, seq, err: err.message }, 'could not apply a replicated change; resyncing');
      this.d.onBroken(`could not apply a replicated ${h.t}: ${err.message}`);
      this.d.link.resetInbound();
    };
    if (h.t === 'commit') {
      // A box of the previous version names the message only inside its envelope.
      const id = (h.id ?? (h.env as { id?: unknown } | null)?.id) as string;
      const p = this.commit(id, h.env, f.body ?? Buffer.alloc(0), h.ops).then(ack, fail);
      this.inflight.set(id, p);
      void p.finally(() => {
        if (this.inflight.get(id) === p) this.inflight.delete(id);
      });
      return;
    }
    const barrier = h.t === 'snap-begin' || h.t === 'synced';
    this.chain = this.chain
      .then(async () => {
        if (this.broken) throw new Error('skipped after an earlier failure');
        if (barrier) {
          await Promise.all([...this.inflight.values()]);
          // A commit that failed while we waited leaves this box behind: no 'synced' then.
          if (this.broken) throw new Error('skipped after an earlier failure');
        }
        if (typeof h.id === 'string') await this.inflight.get(h.id);
        await this.apply(h, f.body);
      })
      .then(ack, fail);
  }

  private readonly madeDirs = new Map<string, Promise<unknown>>();

  /**
   * As the active's own spool does it: the file in place, fsynced, its folder fsynced
   * (shared), then the record. No temp file and rename: a file without a record is an
   * orphan, never read, and swept at promotion.
   */
  private async commit(id: string, env: unknown, body: Buffer, tapOps?: unknown): Promise<void> {
    checkKey(id);
    sameId(id, env);
    const messages = this.d.data.messages();
    const ops = commitTapOps(this.d.data, id, messages.name, tapOps);
    const path = join(this.d.dataDir, this.d.data.safeRel(messages.file(id)));
    const dir = dirname(path);
    let made = this.madeDirs.get(dir);
    if (!made) this.madeDirs.set(dir, (made = mkdirDurable(dir, 0o700, (d) => this.d.dirs.sync(d))));
    await made;
    const fh = await open(path, 'w', 0o600);
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.d.dirs.sync(dir);
    // The tap's records name files of this message (the archive intake's link): linked first.
    for (const l of filesToFollow(this.d.data, ops).link) await this.linkIfMissing(l.to, l.from);
    await this.d.group.write([{ type: 'put', sublevel: messages.name, key: id, value: env }, ...ops], { replicate: false });
  }

  private async apply(h: FrameHeader, body: Buffer | null): Promise<void> {
    switch (h.t) {
      case 'ops':
        return this.ops(h.ops as BatchOp[]);
      case 'file':
        return writeFileAtomic(join(this.d.dataDir, this.d.data.safeRel(h.rel)), body ?? Buffer.alloc(0), 0o600, this.d.dirs);
      case 'deliver': {
        // The same bytes the active wrote: its header lines, then the message from our spool.
        checkKey(h.id);
        const message = await readFile(join(this.d.dataDir, this.d.data.safeRel(this.d.data.messages().file(h.id as string))));
        return writeFileAtomic(join(this.d.dataDir, this.d.data.safeRel(h.rel)), Buffer.concat([Buffer.from(h.prefix as string), message]), 0o600, this.d.dirs);
      }
      case 'prune':
        for (const rel of h.rels as string[]) await unlink(join(this.d.dataDir, this.d.data.safeRel(rel))).catch(() => undefined);
        return;
      case 'snap-begin':
        this.d.onSnapshotBegin();
        for (const name of h.sublevels as string[]) if (this.d.data.isReplicated(name)) await sublevel(this.d.db, name).clear();
        return;
      case 'snap-db': {
        const name = h.sublevel as string;
        if (!this.d.data.isReplicated(name)) return;
        const entries = h.entries as [string, unknown][];
        await this.d.group.writeLazy(entries.map(([key, value]) => ({ type: 'put', sublevel: name, key, value })), { replicate: false });
        return;
      }
      case 'cfgfiles': {
        const files = Object.fromEntries(Object.entries(h.files as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
        return this.d.applyConfigFiles(files);
      }
      case 'synced':
        return this.d.onSynced(h.gen as number);
      default:
        this.d.log.warn({ evt: 'ha.apply.unknown', t: h.t }, 'ignoring an unknown replication frame');
    }
  }

  /**
   * A LevelDB batch from the active. Records that stand for a file keep it alive: a record
   * put where its file is missing takes it from another record of the same key (the
   * active moved the message by hard link, spool to quarantine and back), and a record
   * deleted with no record of the batch still naming its file lets the file go.
   */
  private async ops(ops: BatchOp[]): Promise<void> {
    const data = this.d.data;
    const mine = ops.filter((o) => data.isReplicated(o.sublevel));
    const files = filesToFollow(data, mine);
    // A change about a message whose commit is still being written waits for it (during a
    // sync, commits are not waited for by the active, so they can still be in flight).
    await Promise.all(mine.map((o) => this.inflight.get(o.key)).filter(Boolean));
    for (const l of files.link) await this.linkIfMissing(l.to, l.from);
    if (mine.length) await this.d.group.writeLazy(mine, { replicate: false });
    for (const rel of files.unlink) await unlink(join(this.d.dataDir, data.safeRel(rel))).catch(() => undefined);
  }

  private async linkIfMissing(toRel: string, fromRels: string[]): Promise<void> {
    const to = join(this.d.dataDir, this.d.data.safeRel(toRel));
    if (await exists(to)) return;
    // The folder of a store this box never ran (a standby's archive intake) is made here, and
    // the new entry is synced into it: a link that a power cut takes back is no copy.
    const dir = dirname(to);
    let made = this.madeDirs.get(dir);
    if (!made) this.madeDirs.set(dir, (made = mkdirDurable(dir, 0o700, (d) => this.d.dirs.sync(d))));
    await made;
    for (const fromRel of fromRels) {
      const linked = await link(join(this.d.dataDir, this.d.data.safeRel(fromRel)), to).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'EEXIST') return true;
          if (err.code !== 'ENOENT') throw err;
          return false;
        },
      );
      if (linked) {
        await this.d.dirs.sync(dir);
        return;
      }
    }
  }

  /** Asks the active for a snapshot; `merge` first offers what only this box has. */
  async join(merge: boolean): Promise<void> {
    const started = Date.now();
    const listed = await this.d.data.inventory(this.d.dataDir);
    // Each file with its size and hash: the active re-sends a file whose copy here differs
    // (a box killed while writing keeps a truncated file under the right name). `inventory`
    // stays a plain list of names, which is what an active of the previous version reads.
    const files: string[] = [];
    const sums: string[] = [];
    for (const rel of listed) {
      const d = await this.digests.digest(rel);
      if (!d) continue; // gone since the listing (a mail client deleted it)
      files.push(rel);
      sums.push(formatDigest(d));
    }
    this.digests.keepOnly(files);
    await this.d.link.send({ t: 'join', v: HA_WIRE_VERSION, merge, inventory: files, sums });
    this.d.log.info({ evt: 'ha.join', merge, files: files.length, hashMs: Date.now() - started }, 'asked the active box for a snapshot');
  }

  /** Sends the active the files it asked for, and every record the owners offer after a partition. */
  private async sendMerge(h: FrameHeader): Promise<void> {
    const data = this.d.data;
    const counts: Record<string, number> = { files: 0 };
    try {
      for (const rel of (h.files as string[]) ?? []) {
        const body = await readFile(join(this.d.dataDir, data.safeRel(rel))).catch(() => null);
        if (!body) continue;
        await this.d.link.send({ t: 'merge-file', rel }, body);
        counts.files!++;
      }
      if (h.records) {
        for (const s of data.mergeable()) {
          counts[s.name] = 0;
          for await (const [key, value] of sublevel(this.d.db, s.name).iterator()) {
            if (!s.merge(value)) continue;
            const file = data.fileOf(s.name, key);
            const body = file ? await readFile(join(this.d.dataDir, data.safeRel(file))).catch(() => null) : Buffer.alloc(0);
            if (!body) continue;
            await this.d.link.send({ t: 'merge-record', sublevel: s.name, key, value }, body);
            counts[s.name]!++;
          }
        }
      }
      await this.d.link.send({ t: 'merge-done', counts });
      this.d.log.info({ evt: 'ha.merge.sent', ...counts }, 'handed the active box what only this box had');
    } catch (err) {
      this.d.log.error({ evt: 'ha.merge.sendFail', err: (err as Error).message }, 'could not hand over mail; will try again at the next join');
    }
  }
}

/** Owners name a record's files by the id inside it: it must be the key that was checked. */
function sameId(key: string, value: unknown): void {
  const id = (value as { id?: unknown } | null)?.id;
  if (id !== undefined && id !== key) throw new Error(`HA: record ${key} carries another id`);
}

/**
 * The records a commit frame carries beside the envelope (a commit tap's), checked: puts
 * into replicated sublevels other than the messages' own, keyed by this message.
 */
function commitTapOps(data: DataRegistry, id: string, messages: string, raw: unknown): BatchOp[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || raw.length > 16) throw new Error(`commit ${id}: malformed tap records`);
  return raw.map((o: unknown) => {
    const op = o as { type?: unknown; sublevel?: unknown; key?: unknown; value?: unknown };
    if (op?.type !== 'put' || typeof op.sublevel !== 'string' || op.sublevel === messages || !data.isReplicated(op.sublevel) || op.key !== id) {
      throw new Error(`commit ${id}: refusing a tap record ${String(op?.type)} ${String(op?.sublevel)}/${String(op?.key)}`);
    }
    return { type: 'put', sublevel: op.sublevel, key: id, value: op.value };
  });
}
