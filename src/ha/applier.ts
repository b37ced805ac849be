import { link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { sublevel, type BatchOp, type Db, type GroupCommitter } from '../store/db.js';
import type { DirSyncer } from '../store/atomic.js';
import type { Envelope } from '../spool/spool.js';
import type { NetLink, Reply } from './netlink.js';
import type { Frame, FrameHeader } from './wire.js';
import { exists, inventory, safeRel, writeDurable } from './files.js';
import { REPLICATED_SUBLEVELS } from './replicator.js';

export interface ApplierDeps {
  link: NetLink;
  dataDir: string;
  db: Db;
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

const replicatedSet = new Set<string>(REPLICATED_SUBLEVELS);

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

  constructor(private readonly d: ApplierDeps) {
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
      const env = h.env as Envelope;
      const p = this.commit(env, f.body ?? Buffer.alloc(0)).then(ack, fail);
      this.inflight.set(env.id, p);
      void p.finally(() => {
        if (this.inflight.get(env.id) === p) this.inflight.delete(env.id);
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

  private spoolReady: Promise<unknown> | null = null;

  /**
   * As the active's own spool does it: the file in place, fsynced, its folder fsynced
   * (shared), then the record. No temp file and rename: a file without a record is an
   * orphan, never read, and swept at promotion.
   */
  private async commit(env: Envelope, body: Buffer): Promise<void> {
    checkId(env.id);
    const dir = join(this.d.dataDir, 'spool');
    this.spoolReady ??= mkdir(dir, { recursive: true, mode: 0o700 });
    await this.spoolReady;
    const fh = await open(join(dir, `${env.id}.eml`), 'w', 0o600);
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.d.dirs.sync(dir);
    await this.d.group.write([{ type: 'put', sublevel: 'spool', key: env.id, value: env }], { replicate: false });
  }

  private async apply(h: FrameHeader, body: Buffer | null): Promise<void> {
    switch (h.t) {
      case 'ops':
        return this.ops(h.ops as BatchOp[]);
      case 'file':
        return writeDurable(this.d.dataDir, h.rel as string, body ?? Buffer.alloc(0), this.d.dirs);
      case 'deliver': {
        // The same bytes the active wrote: its header lines, then the message from our spool.
        checkId(h.id);
        const message = await readFile(join(this.d.dataDir, 'spool', `${h.id as string}.eml`));
        return writeDurable(this.d.dataDir, h.rel as string, Buffer.concat([Buffer.from(h.prefix as string), message]), this.d.dirs);
      }
      case 'prune':
        for (const rel of h.rels as string[]) await unlink(join(this.d.dataDir, safeRel(rel))).catch(() => undefined);
        return;
      case 'snap-begin':
        this.d.onSnapshotBegin();
        for (const name of h.sublevels as string[]) if (replicatedSet.has(name)) await sublevel(this.d.db, name).clear();
        return;
      case 'snap-db': {
        const name = h.sublevel as string;
        if (!replicatedSet.has(name)) return;
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
   * A LevelDB batch from the active. A message that moves between the spool and the
   * quarantine moves by hard link there; here the file is linked the same way first.
   */
  private async ops(ops: BatchOp[]): Promise<void> {
    const mine = ops.filter((o) => replicatedSet.has(o.sublevel));
    for (const o of mine) if (o.sublevel === 'spool' || o.sublevel === 'queue' || o.sublevel === 'quarantine') checkId(o.key);
    // A change about a message whose commit is still being written waits for it (during a
    // sync, commits are not waited for by the active, so they can still be in flight).
    await Promise.all(mine.map((o) => this.inflight.get(o.key)).filter(Boolean));
    for (const o of mine) {
      if (o.type !== 'put') continue;
      if (o.sublevel === 'quarantine') await this.linkIfMissing(`spool/${o.key}.eml`, `quarantine/${o.key}.eml`);
      if (o.sublevel === 'spool') await this.linkIfMissing(`quarantine/${o.key}.eml`, `spool/${o.key}.eml`);
    }
    if (mine.length) await this.d.group.writeLazy(mine, { replicate: false });
    // The active unlinks a message's file when its last record lets go of it (routed to
    // mailboxes only, delivered, quarantine deleted); the same records say so here.
    const put = new Set(mine.filter((o) => o.type === 'put').map((o) => `${o.sublevel}/${o.key}`));
    for (const o of mine) {
      if (o.type !== 'del') continue;
      const kept = (s: string) => put.has(`${s}/${o.key}`);
      if ((o.sublevel === 'spool' && !kept('queue') && !kept('quarantine')) || (o.sublevel === 'queue' && !kept('spool'))) {
        await unlink(join(this.d.dataDir, 'spool', `${o.key}.eml`)).catch(() => undefined);
      }
      if (o.sublevel === 'quarantine') await unlink(join(this.d.dataDir, 'quarantine', `${o.key}.eml`)).catch(() => undefined);
    }
  }

  private async linkIfMissing(fromRel: string, toRel: string): Promise<void> {
    const to = join(this.d.dataDir, safeRel(toRel));
    if (await exists(to)) return;
    await link(join(this.d.dataDir, safeRel(fromRel)), to).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT' && err.code !== 'EEXIST') throw err;
    });
  }

  /** Asks the active for a snapshot; `merge` first offers what only this box has. */
  async join(merge: boolean): Promise<void> {
    const files = await inventory(this.d.dataDir);
    await this.d.link.send({ t: 'join', merge, inventory: files });
    this.d.log.info({ evt: 'ha.join', merge, files: files.length }, 'asked the active box for a snapshot');
  }

  /** Sends the active the mail it asked for, and every message still in spool, queue or quarantine here. */
  private async sendMerge(h: FrameHeader): Promise<void> {
    const counts = { files: 0, spool: 0, queue: 0, quarantine: 0 };
    try {
      for (const rel of (h.files as string[]) ?? []) {
        const body = await readFile(join(this.d.dataDir, safeRel(rel))).catch(() => null);
        if (!body) continue;
        await this.d.link.send({ t: 'merge-file', rel }, body);
        counts.files++;
      }
      if (h.records) {
        for await (const env of sublevel(this.d.db, 'spool').values()) {
          const e = env as Envelope;
          const body = await readFile(join(this.d.dataDir, 'spool', `${e.id}.eml`)).catch(() => null);
          if (!body) continue;
          await this.d.link.send({ t: 'merge-spool', env: e }, body);
          counts.spool++;
        }
        for await (const entry of sublevel(this.d.db, 'queue').values()) {
          const q = entry as { id: string; recipients: { state: string }[] };
          if (!q.recipients.some((r) => r.state === 'queued' || r.state === 'deferred')) continue;
          const body = await readFile(join(this.d.dataDir, 'spool', `${q.id}.eml`)).catch(() => null);
          if (!body) continue;
          await this.d.link.send({ t: 'merge-queue', entry: q }, body);
          counts.queue++;
        }
        for await (const rec of sublevel(this.d.db, 'quarantine').values()) {
          const r = rec as { id: string };
          const body = await readFile(join(this.d.dataDir, 'quarantine', `${r.id}.eml`)).catch(() => null);
          if (!body) continue;
          await this.d.link.send({ t: 'merge-quarantine', record: r }, body);
          counts.quarantine++;
        }
      }
      await this.d.link.send({ t: 'merge-done', counts });
      this.d.log.info({ evt: 'ha.merge.sent', ...counts }, 'handed the active box what only this box had');
    } catch (err) {
      this.d.log.error({ evt: 'ha.merge.sendFail', err: (err as Error).message }, 'could not hand over mail; will try again at the next join');
    }
  }
}

/** Record keys name files (spool/<id>.eml): only the id alphabet, never a path. */
function checkId(id: unknown): void {
  if (typeof id !== 'string' || !/^[0-9A-Za-z._-]{1,128}$/.test(id) || id.startsWith('.')) throw new Error(`HA: refusing record key ${String(id)}`);
}
