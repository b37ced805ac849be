import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, unlink, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { execFile } from 'node:child_process';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../log/logger.js';
import { sublevel, type Db } from '../store/db.js';
import { mkdirDurable, type DirSyncer } from '../store/atomic.js';
import type { Durability } from '../store/durability.js';
import type { BackupKeys } from './keys.js';
import { objectOf, type Manifest, type ManifestFile } from './manifest.js';
import { openFile, SealError } from './seal.js';
import { TargetError, type BackupTarget } from './target.js';
import { eachInPool } from './targets/pool.js';

/** Where the restore stands, kept on the data disk so a restore cut by a reboot resumes. */
export interface RestoreProgress {
  state: 'running' | 'retrying' | 'failed' | 'done';
  target: string;
  generation: string;
  reason: string;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** Items of the plan done (the plan is the same at every resume: it is built from the manifest alone). */
  cursor: number;
  items: number;
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Files a newer copy on the disk already had (mail that arrived since). */
  filesKept: number;
  recordsDone: number;
  /** Files (and record sets) the target could not give back: damaged or missing there. */
  lost: { count: number; paths: string[] };
  /** Mail newer than this (and every INBOX) comes back first; fixed when the restore starts. */
  recentSinceMs: number;
  /** The archive was running when this restore began (an operator's restore): it is not put back into it. */
  skipArchive: boolean;
  currentUser: string | null;
  lastError: string | null;
}

export const RESTORE_STATE_SUBLEVEL = 'backup-state';
export const RESTORE_KEY = 'restore';

/** A batch of files ready to put back. */
interface Fetched {
  files: ManifestFile[];
  here: Set<ManifestFile>;
  todo: ManifestFile[];
  fetched: Map<string, string>;
}

type PlanItem = { kind: 'file'; f: ManifestFile; rank: number } | { kind: 'records'; sublevel: string; h: string; s: number; count: number; rank: number };

/**
 * The order things come back in: by rank (a user's INBOX and recent mail, older mail,
 * contacts and WebDisk, the rest, the archive), newest first within a rank; each
 * sublevel's records after the files of its rank. Files that belong to records (spool,
 * quarantine) come back with their record.
 */
export function restorePlan(m: Manifest, durability: Pick<Durability, 'data'>, recentSinceMs: number): PlanItem[] {
  const data = durability.data;
  const recordFolders = new Set<string>();
  for (const s of data.backupSublevels()) if (s.file) recordFolders.add(s.file('x').split('/')[0]!);
  const files: PlanItem[] = m.files
    .filter((f) => data.folderOf(f.p) && !recordFolders.has(f.p.split('/')[0]!))
    .map((f) => ({ kind: 'file' as const, f, rank: data.restoreRankOf(f.p, f.m, recentSinceMs) }))
    .sort((a, b) => a.rank - b.rank || b.f.m - a.f.m || (a.f.p < b.f.p ? -1 : 1));
  const records: PlanItem[] = m.records
    .filter((r) => {
      try {
        return data.sublevel(r.sublevel) && (data.sublevel(r.sublevel).backup ?? data.sublevel(r.sublevel).replicate);
      } catch {
        return false;
      }
    })
    .map((r) => ({ kind: 'records' as const, sublevel: r.sublevel, h: r.h, s: r.s, count: r.count, rank: data.sublevel(r.sublevel).restoreRank ?? 3 }));
  // Records after the files of their rank, before the next rank's.
  return [...files, ...records].sort((a, b) => a.rank - b.rank || (a.kind === b.kind ? 0 : a.kind === 'file' ? -1 : 1));
}

export interface RestoreDeps {
  dataDir: string;
  workDir: string;
  db: Db;
  durability: Durability;
  dirs: DirSyncer;
  keys: BackupKeys;
  clock: Clock;
  log: Logger;
  emit: (ev: { kind: string; severity: 'info' | 'warning' | 'critical'; text: string; data?: Record<string, unknown> }) => void;
  /**
   * Where fetched objects wait to be opened: memory (tmpfs) where the box has room, so the
   * data disk writes each file once, not twice. Files are still made on the data disk.
   */
  fetchDir?: string;
  /** Waits before a retry (the clock's, so tests need not sleep): 5 s, doubling, at most `maxRetryMs`. */
  retryMs?: number;
  maxRetryMs?: number;
}

/** The rank the archive's data declares: last. */
const ARCHIVE_RANK = 4;
/** Paths of lost files named in the progress and the closing event (the count is whole). */
const LOST_NAMED = 20;

// As for uploads: a remote target pays a login per batch and spreads a batch over connections.
const FILE_BATCH = 750;
const FILE_BATCH_BYTES = 256 * 1024 * 1024;
/** Files decrypted and synced into place at once (each waits on its own fsync). */
const PUT_BACK_CONCURRENCY = 8;
const RECORD_BATCH = 500;
const userOf = (p: string) => /^mail\/([^/]+)\/([^/]+)\//.exec(p)?.slice(1, 3).reverse().join('@') ?? null;

/**
 * Puts a generation back onto the data disk while the box serves mail. Every step is
 * idempotent (a file already there is kept, a record already there is kept), so the
 * cursor needs saving only now and then, and a resume redoes at most a little.
 */
export class RestoreRunner {
  private progress: RestoreProgress;
  private stopped = false;
  private fetches = 0;
  /** Folders this restore made or found. */
  private readonly made = new Set<string>();
  /** How long the last batch's syncfs took (logged with the batch). */
  private lastSyncMs = 0;
  private wake: (() => void) | null = null;

  constructor(
    private readonly d: RestoreDeps,
    private readonly target: BackupTarget,
    private readonly manifest: Manifest,
    progress: RestoreProgress,
  ) {
    this.progress = progress;
    // A progress record of an earlier version lacks these.
    progress.lost ??= { count: 0, paths: [] };
  }

  status(): RestoreProgress {
    return { ...this.progress };
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private async save(): Promise<void> {
    this.progress.updatedAt = new Date(this.d.clock.now()).toISOString();
    await this.d.durability.write([{ type: 'put', sublevel: RESTORE_STATE_SUBLEVEL, key: RESTORE_KEY, value: this.progress }]);
  }

  /** Runs to the end, retrying a target that fails; resolves false when stopped first. */
  async run(): Promise<boolean> {
    const p = this.progress;
    const plan = restorePlan(this.manifest, this.d.durability, p.recentSinceMs).filter((i) => !(p.skipArchive && i.rank >= ARCHIVE_RANK));
    p.items = plan.length;
    p.filesTotal = plan.filter((i) => i.kind === 'file').length + this.manifest.records.length;
    p.bytesTotal = plan.reduce((n, i) => n + (i.kind === 'file' ? i.f.s : i.s), 0);
    let wait = this.d.retryMs ?? 5000;
    if (p.state === 'failed') p.state = 'running';
    // Recorded before the first batch: a crash in it resumes this restore (what is already back is kept).
    await this.save();
    // The next batch of files is fetched while this one is put back (network and disk at once).
    let ahead: { from: number; ready: Promise<Fetched> } | null = null;
    const prefetch = (from: number): { from: number; ready: Promise<Fetched> } | null => {
      if (from >= plan.length || plan[from]!.kind !== 'file') return null;
      const ready = this.fetchFiles(this.filesOf(plan, from));
      ready.catch(() => undefined);
      return { from, ready };
    };
    while (!this.stopped && p.cursor < plan.length) {
      try {
        let end = p.cursor + 1;
        if (plan[p.cursor]!.kind === 'file') {
          const files = this.filesOf(plan, p.cursor);
          end = p.cursor + files.length;
          const t0 = Date.now();
          const fetched = ahead?.from === p.cursor ? await ahead.ready : await this.fetchFiles(files);
          const t1 = Date.now();
          ahead = prefetch(end);
          await this.putBack(fetched);
          this.d.log.info({ evt: 'restore.batch', files: files.length, fetched: fetched.todo.length, waitFetchMs: t1 - t0, putBackMs: Date.now() - t1, syncMs: this.lastSyncMs }, 'restore batch in place');
        } else {
          ahead = null;
          await this.apply(plan.slice(p.cursor, end));
        }
        p.cursor = end;
        if (p.state === 'retrying') {
          p.state = 'running';
          p.lastError = null;
          this.d.emit({ kind: 'restore.resumed', severity: 'info', text: `restore from ${p.target} goes on` });
        }
        wait = this.d.retryMs ?? 5000;
        await this.save();
      } catch (err) {
        ahead = null;
        if (this.stopped) return false;
        if (!(err instanceof TargetError)) {
          // Not the target's fault (a damaged object, a full data disk): said, and resumed at the next start.
          p.state = 'failed';
          p.lastError = (err as Error).message;
          await this.save().catch(() => undefined);
          throw err;
        }
        const first = p.state !== 'retrying' || p.lastError !== err.message;
        p.state = 'retrying';
        p.lastError = err.message;
        await this.save();
        if (first) this.d.emit({ kind: 'restore.retry', severity: 'warning', text: `restore from ${p.target} cannot go on (${err.kind}: ${err.message}); retrying`, data: { kind: err.kind } });
        this.d.log.warn({ evt: 'restore.retry', kind: err.kind, err: err.message, waitMs: wait }, 'restore waits for its target');
        await new Promise<void>((res) => {
          this.wake = res;
          this.d.clock.setTimeout(res, wait).unref?.();
        });
        wait = Math.min(wait * 2, this.d.maxRetryMs ?? 300_000);
      }
    }
    if (this.stopped) return false;
    p.state = 'done';
    p.currentUser = null;
    p.finishedAt = new Date(this.d.clock.now()).toISOString();
    await this.save();
    return true;
  }

  /** The files of a run of consecutive file items from `from`: at most FILE_BATCH files and FILE_BATCH_BYTES. */
  private filesOf(plan: PlanItem[], from: number): ManifestFile[] {
    const out: ManifestFile[] = [];
    let bytes = 0;
    for (let i = from; i < plan.length && out.length < FILE_BATCH && (bytes < FILE_BATCH_BYTES || out.length === 0); i++) {
      const item = plan[i]!;
      if (item.kind !== 'file') break;
      bytes += item.f.s;
      out.push(item.f);
    }
    return out;
  }

  private async apply(items: PlanItem[]): Promise<void> {
    for (const i of items) if (i.kind === 'records') await this.restoreRecords(i.sublevel, i.h);
  }

  /**
   * Fetches objects into the work folder, one batch per trip. An object missing on the target
   * fails its batch: the batch is then asked for one by one, and what is missing is left out.
   */
  private async fetch(entries: { h: string }[]): Promise<Map<string, string>> {
    const set = this.d.keys.setId;
    const dir = this.d.fetchDir ?? this.d.workDir;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const want = new Map<string, { path: string; local: string }>();
    // Each fetch its own names: a batch fetched ahead may hold an object the batch before also holds.
    const batch = this.fetches++;
    for (const e of entries) {
      if (want.has(e.h)) continue;
      const o = objectOf(this.d.keys, set, e);
      want.set(e.h, { path: o.path, local: join(dir, `r${batch}-${o.name}`) });
    }
    const out = new Map<string, string>();
    try {
      await this.target.get([...want.values()]);
      for (const [h, w] of want) out.set(h, w.local);
    } catch (err) {
      if (!(err instanceof TargetError) || err.kind !== 'notFound') throw err;
      for (const [h, w] of want) {
        const got = await this.target.get([w]).then(
          () => true,
          (e: unknown) => {
            if (e instanceof TargetError && e.kind === 'notFound') return false;
            throw e;
          },
        );
        if (got) out.set(h, w.local);
      }
    }
    return out;
  }

  private lose(path: string, why: string): void {
    const l = this.progress.lost;
    l.count++;
    if (l.paths.length < LOST_NAMED) l.paths.push(path);
    this.d.log.error({ evt: 'restore.lost', path, err: why }, 'a backed-up file could not be restored');
  }

  /**
   * Whether a file is on the disk already, by its identity (a Maildir message under any
   * flags, in new/ or cur/). Each mailbox folder is read once per batch, not once per file.
   */
  private async present(rels: ManifestFile[]): Promise<Set<ManifestFile>> {
    const data = this.d.durability.data;
    const listed = new Map<string, Set<string>>();
    const out = new Set<ManifestFile>();
    for (const f of rels) {
      const id = data.identity(f.p);
      const star = id.indexOf('/*/');
      if (star < 0) {
        if ((await data.locate(this.d.dataDir, f.p)) !== null) out.add(f);
        continue;
      }
      const box = id.slice(0, star);
      let names = listed.get(box);
      if (!names) {
        names = new Set<string>();
        for (const sub of ['new', 'cur']) for (const n of await readdir(join(this.d.dataDir, box, sub)).catch(() => [] as string[])) names.add(n.split(':')[0]!);
        listed.set(box, names);
      }
      if (names.has(id.slice(star + 3))) out.add(f);
    }
    return out;
  }

  /** Which files of a batch the disk lacks, and their objects fetched into the work folder. */
  private async fetchFiles(files: ManifestFile[]): Promise<Fetched> {
    const here = await this.present(files);
    const todo = files.filter((f) => !here.has(f));
    return { files, here, todo, fetched: todo.length ? await this.fetch(todo) : new Map() };
  }

  /** Puts a fetched batch in place, then makes it durable at once (one syncfs) before the cursor moves. */
  private async putBack(b: Fetched): Promise<void> {
    for (const f of b.files) {
      if (!b.here.has(f)) continue;
      // Mail that came back another way (a newer copy, a client's flag change) is one file.
      this.progress.filesKept++;
      this.progress.filesDone++;
      this.progress.bytesDone += f.s;
    }
    if (!b.todo.length) return;
    try {
      // Two files of one batch may share content (one object): each is opened from it, then it goes.
      await eachInPool(b.todo, PUT_BACK_CONCURRENCY, async (f) => {
        const local = b.fetched.get(f.h);
        try {
          if (!local) throw new SealError('not on the target');
          await putBackFile(this.d, local, f, { sync: false, made: this.made });
        } catch (err) {
          // The target's fault (damaged, missing): this file is lost, the restore goes on.
          if (!(err instanceof SealError)) throw err;
          this.lose(f.p, err.message);
        }
        this.progress.filesDone++;
        this.progress.bytesDone += f.s;
        this.progress.currentUser = userOf(f.p) ?? this.progress.currentUser;
      });
      const ts = Date.now();
      await syncFileSystem(this.d.dataDir);
      this.lastSyncMs = Date.now() - ts;
    } finally {
      for (const local of b.fetched.values()) await unlink(local).catch(() => undefined);
    }
  }

  /**
   * A sublevel's records: each goes to its running owner where one takes records (the
   * spool, the queue, the quarantine: as after an HA partition), else it is written where
   * none is yet. Records naming a file get it from the same generation.
   */
  private async restoreRecords(name: string, h: string): Promise<void> {
    const data = this.d.durability.data;
    const decl = data.sublevel(name);
    const fetched = await this.fetch([{ h }]);
    const plain = join(this.d.workDir, `records-${name}`);
    const filesByPath = new Map(this.manifest.files.map((f) => [f.p, f]));
    const done = () => {
      this.progress.filesDone++;
      this.progress.bytesDone += this.manifest.records.find((r) => r.sublevel === name)?.s ?? 0;
    };
    try {
      const o = objectOf(this.d.keys, this.d.keys.setId, { h });
      const opened = fetched.has(h)
        ? await openFile(this.d.keys, o.name, fetched.get(h)!, plain, h).then(
            () => true,
            (err: unknown) => {
              if (!(err instanceof SealError)) throw err;
              return false;
            },
          )
        : false;
      if (!opened) {
        this.lose(`records of ${name}`, 'damaged or missing on the target');
        done();
        return;
      }
      const sub = sublevel(this.d.db, name);
      let batch: { key: string; value: unknown }[] = [];
      const flush = async () => {
        const ops = [];
        for (const r of batch) if ((await sub.get(r.key)) === undefined) ops.push({ type: 'put' as const, sublevel: name, key: r.key, value: r.value });
        if (ops.length) await this.d.durability.write(ops);
        this.progress.recordsDone += batch.length;
        batch = [];
      };
      const lines = createInterface({ input: createReadStream(plain), crlfDelay: Infinity });
      for await (const line of lines) {
        if (!line) continue;
        const [key, value] = JSON.parse(line) as [string, unknown];
        const rel = decl.file ? data.fileOf(name, key) : null;
        if (rel) {
          const f = filesByPath.get(rel);
          // A record whose file was gone when the backup ran (delivered meanwhile) is not put back.
          if (!f) continue;
          if (decl.merge && !decl.merge(value)) continue;
          const got = await this.fetch([f]);
          const local = got.get(f.h);
          if (!local) {
            this.lose(rel, 'missing on the target');
            continue;
          }
          const bodyPath = `${local}.plain`;
          try {
            const ok = await openFile(this.d.keys, objectOf(this.d.keys, this.d.keys.setId, f).name, local, bodyPath, f.h).then(
              () => true,
              (err: unknown) => {
                if (!(err instanceof SealError)) throw err;
                return false;
              },
            );
            if (!ok) {
              this.lose(rel, 'damaged on the target');
              continue;
            }
            const body = await readFile(bodyPath);
            if (data.hasMergeHandler(name)) await data.mergeRecord(name, key, value, body);
            else if ((await sub.get(key)) === undefined) {
              await this.d.durability.writeFile(rel, body);
              await this.d.durability.write([{ type: 'put', sublevel: name, key, value }]);
            }
          } finally {
            await unlink(local).catch(() => undefined);
            await unlink(bodyPath).catch(() => undefined);
          }
          this.progress.recordsDone++;
          continue;
        }
        batch.push({ key, value });
        if (batch.length >= RECORD_BATCH) await flush();
      }
      await flush();
      done();
    } finally {
      await rm(plain, { force: true });
      for (const local of fetched.values()) await unlink(local).catch(() => undefined);
    }
  }
}

/**
 * One backed-up file back in its place: decrypted and checked in the work folder, renamed
 * in (a Maildir's new/ never shows part of a message), its time as it was, its folder
 * synced, and told to the HA seam.
 */
export async function putBackFile(d: Pick<RestoreDeps, 'dataDir' | 'workDir' | 'durability' | 'dirs' | 'keys'>, local: string, f: ManifestFile, o: { sync?: boolean; made?: Set<string> } = {}): Promise<void> {
  const abs = join(d.dataDir, d.durability.data.safeRel(f.p, false));
  const dir = dirname(abs);
  // A folder made (or found) once is not asked for again in this restore.
  if (!o.made?.has(dir)) {
    await mkdirDurable(dir, 0o700, (x) => d.dirs.sync(x));
    o.made?.add(dir);
  }
  await openFile(d.keys, objectOf(d.keys, d.keys.setId, f).name, local, abs, f.h, { tmpDir: d.workDir, sync: o.sync, size: f.s });
  await utimes(abs, new Date(), new Date(f.m)).catch(() => undefined);
  if (o.sync !== false) await d.dirs.sync(dirname(abs));
  d.durability.fileWritten(f.p);
}

/**
 * syncfs(2) on the data disk (`sync -f`): a restore's batch of files, written without a sync
 * each, made durable at once before its cursor is saved. Thousands of small fsyncs were most
 * of a restore's time.
 */
function syncFileSystem(dir: string): Promise<void> {
  return new Promise((resolve, reject) => execFile('sync', ['-f', dir], (err) => (err ? reject(new Error(`sync -f ${dir}: ${err.message}`)) : resolve())));
}

/** Percent done by bytes (null before the plan is known). */
export function restorePercent(p: RestoreProgress): number | null {
  if (p.state === 'done') return 100;
  return p.bytesTotal > 0 ? Math.min(99.9, Math.floor((p.bytesDone / p.bytesTotal) * 1000) / 10) : null;
}

/** Seconds left at the rate so far (null until there is a rate). */
export function restoreEtaSeconds(p: RestoreProgress, now: number): number | null {
  const elapsed = (now - Date.parse(p.startedAt)) / 1000;
  if (p.state === 'done') return 0;
  if (p.bytesDone <= 0 || elapsed <= 0) return null;
  return Math.round(((p.bytesTotal - p.bytesDone) / p.bytesDone) * elapsed);
}

export async function readRestoreProgress(db: Db): Promise<RestoreProgress | null> {
  return ((await sublevel(db, RESTORE_STATE_SUBLEVEL).get(RESTORE_KEY)) as RestoreProgress | undefined) ?? null;
}

