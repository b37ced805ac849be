import { lstat, mkdir, open, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../log/logger.js';
import { sublevel, type BatchOp, type Db } from '../store/db.js';
import type { DataRegistry } from '../store/data.js';
import { extract } from '../archive/extract.js';
import type { BackupKeys } from './keys.js';
import { generationName, generationTime, layout, listGenerations, loadManifest, objectOf, sealManifest, type Manifest, type ManifestFile, type ManifestRecords } from './manifest.js';
import { sealFile, sha256File } from './seal.js';
import { generationsToDrop, type KeepPolicy } from './generations.js';
import { TargetError, type BackupTarget } from './target.js';

/** This box's cache of file hashes (a file unchanged since the last run is not read again). */
export const HASH_SUBLEVEL = 'backup-files';

export interface BackupDeps {
  dataDir: string;
  configDir: string;
  /** Where objects are sealed before they travel (a folder of the data disk, never backed up). */
  workDir: string;
  data: DataRegistry;
  db: Db;
  /** Writes this box's own records (the hash cache) through the durability seam. */
  write: (ops: BatchOp[]) => Promise<void>;
  keys: BackupKeys;
  box: { id: string; hostname: () => string };
  archiveHead: () => { seq: number; mac: string } | null;
  clock: Clock;
  log: Logger;
}

export interface BackupResult {
  generation: string;
  files: number;
  bytes: number;
  sentBytes: number;
  sentObjects: number;
  durationMs: number;
  dropped: string[];
  removedObjects: number;
}

interface CachedHash {
  s: number;
  m: number;
  i: number;
  h: string;
  sub?: string;
  from?: string;
  date?: string;
}

/** A Maildir message file: its headers are summarised for browsing. */
const MAILDIR_FILE = /^mail\/[^/]+\/[^/]+\/Maildir\/(?:\.[^/]+\/)?(?:new|cur)\/[^/]+$/;
// Large batches: a remote target's adapter pays a login per batch (smbclient) and spreads one
// batch over several connections; the work folder holds one batch of sealed objects at a time.
const UPLOAD_BATCH_FILES = 750;
const UPLOAD_BATCH_BYTES = 256 * 1024 * 1024;

/** The subject, sender and date of a message, read from its header only. */
async function headerSummary(path: string): Promise<Pick<ManifestFile, 'sub' | 'from' | 'date'>> {
  const fh = await open(path, 'r');
  const buf = Buffer.alloc(32 * 1024);
  const { bytesRead } = await fh.read(buf, 0, buf.length, 0).finally(() => fh.close());
  const text = buf.subarray(0, bytesRead);
  const end = text.indexOf('\r\n\r\n') >= 0 ? text.indexOf('\r\n\r\n') : text.indexOf('\n\n');
  const e = await extract(Buffer.concat([text.subarray(0, end >= 0 ? end : bytesRead), Buffer.from('\r\n\r\n')]));
  return { sub: e.subject.slice(0, 200), from: e.headerFrom.join(', ').slice(0, 200), ...(e.date ? { date: e.date } : {}) };
}

/** Runs `fn` over items with at most `n` at once. */
async function pool<T>(items: readonly T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/**
 * One backup run to one target: records first (so every file a record names is taken
 * after it), then the declared folders, then the config-dir files; only objects the target
 * lacks travel; the manifest goes last. Then old generations are dropped by the keep
 * policy and objects no kept generation names are removed. A run cut anywhere leaves the
 * previous generations whole and a later run sends only what is still missing.
 */
export async function runBackup(d: BackupDeps, target: BackupTarget, keep: KeepPolicy, onProgress?: (p: { files: number; sentBytes: number }) => void): Promise<BackupResult> {
  const t0 = d.clock.now();
  const set = d.keys.setId;
  await rm(d.workDir, { recursive: true, force: true });
  await mkdir(d.workDir, { recursive: true, mode: 0o700 });
  try {
    const existing = await listGenerations(target, set);
    let generation = generationName(t0);
    // Generations are named by the second they start: two runs in one second get the next free one.
    while (existing.some((g) => g >= generation)) generation = generationName(generationTime(existing[existing.length - 1]!) + 1000);
    const present = new Map<string, number>();
    const leftovers: string[] = [];
    for (const e of await target.list(layout.objects(set))) {
      const name = e.path.split('/').pop()!;
      if (/^[0-9a-f]{64}$/.test(name)) present.set(name, e.size);
      else leftovers.push(e.path);
    }
    // Parts of an earlier run cut mid-upload: never a complete object, and never named by a manifest.
    if (leftovers.length) await target.remove(leftovers);

    const toSend = new Map<string, { local: string; size: number }>();
    const want = (h: string, local: string, size: number) => {
      const { name } = objectOf(d.keys, set, { h });
      if (!present.has(name) && !toSend.has(name)) toSend.set(name, { local, size });
    };

    // 1. Records, one JSON-lines object per sublevel (read before the files they name).
    const archiveHead = d.archiveHead();
    const records: ManifestRecords[] = [];
    for (const decl of d.data.backupSublevels()) {
      const local = join(d.workDir, `records-${decl.name}.jsonl`);
      const fh = await open(local, 'wx', 0o600);
      let count = 0;
      try {
        let chunk = '';
        for await (const [key, value] of sublevel(d.db, decl.name).iterator()) {
          chunk += JSON.stringify([key, value]) + '\n';
          count++;
          if (chunk.length > 1 << 20) {
            await fh.write(chunk);
            chunk = '';
          }
        }
        await fh.write(chunk);
      } finally {
        await fh.close();
      }
      const { sha256, size } = await sha256File(local);
      records.push({ sublevel: decl.name, h: sha256, s: size, count });
      want(sha256, local, size);
    }

    // 2. Files of the declared folders; a file unchanged since the last run is not hashed again.
    const cache = sublevel(d.db, HASH_SUBLEVEL);
    const cached = new Map<string, CachedHash>();
    for await (const [k, v] of cache.iterator()) cached.set(k, v as CachedHash);
    const rels = await d.data.filesUnder(d.dataDir, d.data.backupFolders());
    const files: ManifestFile[] = [];
    const fresh = new Map<string, CachedHash>();
    await pool(rels, 4, async (rel) => {
      const abs = join(d.dataDir, rel);
      const st = await lstat(abs).catch(() => null);
      // Gone since the listing (delivered, expunged): the next run has it right.
      if (!st?.isFile()) return;
      const c = cached.get(rel);
      let entry: CachedHash;
      if (c && c.s === st.size && c.m === st.mtimeMs && c.i === st.ino) entry = c;
      else {
        const h = await sha256File(abs).catch(() => null);
        if (!h) return;
        entry = { s: h.size, m: st.mtimeMs, i: st.ino, h: h.sha256 };
        if (MAILDIR_FILE.test(rel)) Object.assign(entry, await headerSummary(abs).catch(() => ({})));
        fresh.set(rel, entry);
      }
      files.push({ p: rel, s: entry.s, h: entry.h, m: Math.round(entry.m), ...(entry.sub !== undefined ? { sub: entry.sub, from: entry.from } : {}), ...(entry.date ? { date: entry.date } : {}) });
      want(entry.h, abs, entry.s);
    });
    files.sort((a, b) => (a.p < b.p ? -1 : 1));

    // 3. Config-dir files both boxes share: a box whose flash died too gets its settings back.
    const config: ManifestFile[] = [];
    const walk = async (rel: string): Promise<void> => {
      for (const e of await readdir(join(d.configDir, rel), { withFileTypes: true }).catch(() => [])) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(r);
        else if (e.isFile() && d.data.configFile(r)?.replicate && r !== 'backup.key') {
          const abs = join(d.configDir, r);
          const h = await sha256File(abs);
          config.push({ p: r, s: h.size, h: h.sha256, m: Math.round((await stat(abs)).mtimeMs) });
          want(h.sha256, abs, h.size);
        }
      }
    };
    await walk('');

    // 4. The objects the target lacks, sealed in the work folder and sent in batches.
    let sentBytes = 0;
    let sentObjects = 0;
    const queue = [...toSend.entries()];
    while (queue.length) {
      const batch: [string, { local: string; size: number }][] = [];
      let bytes = 0;
      while (queue.length && batch.length < UPLOAD_BATCH_FILES && (bytes < UPLOAD_BATCH_BYTES || batch.length === 0)) {
        const item = queue.shift()!;
        bytes += item[1].size;
        batch.push(item);
      }
      const sealed: { local: string; path: string; name: string }[] = [];
      await pool(batch, 4, async ([name, src]) => {
        const local = join(d.workDir, `obj-${name}`);
        await sealFile(d.keys, name, src.local, local);
        sealed.push({ local, path: layout.object(set, name), name });
      });
      await target.put(sealed.map(({ local, path }) => ({ local, path })));
      for (const s of sealed) {
        sentBytes += (await stat(s.local)).size;
        present.set(s.name, 0);
        await unlink(s.local);
      }
      sentObjects += sealed.length;
      onProgress?.({ files: sentObjects, sentBytes });
    }

    // 5. The manifest, last: only now is the generation a backup.
    const manifest: Manifest = {
      format: 1,
      set,
      box: { id: d.box.id, hostname: d.box.hostname() },
      generation,
      startedAt: new Date(t0).toISOString(),
      finishedAt: new Date(d.clock.now()).toISOString(),
      archiveHead,
      files,
      records,
      config,
      bytes: files.reduce((n, f) => n + f.s, 0) + records.reduce((n, r) => n + r.s, 0),
      sentBytes,
    };
    const mfLocal = join(d.workDir, `manifest-${randomBytes(4).toString('hex')}`);
    await writeFile(mfLocal, sealManifest(d.keys, manifest), { mode: 0o600 });
    await target.put([{ local: mfLocal, path: layout.manifest(set, generation) }]);
    // Only after the manifest is safe is the cache told (a cut run hashes again: cheap, and right).
    const listed = new Set(rels);
    const gone = [...cached.keys()].filter((k) => !listed.has(k));
    await d.write([...[...fresh].map(([key, value]) => ({ type: 'put' as const, sublevel: HASH_SUBLEVEL, key, value })), ...gone.map((key) => ({ type: 'del' as const, sublevel: HASH_SUBLEVEL, key }))]);

    // 6. Retention, then the objects no kept generation names.
    const { dropped, removedObjects } = await prune(d, target, keep, generation, manifest, present);
    const result: BackupResult = { generation, files: files.length, bytes: manifest.bytes, sentBytes, sentObjects, durationMs: d.clock.now() - t0, dropped, removedObjects };
    d.log.info({ evt: 'backup.done', ...result, dropped: dropped.length }, 'backup complete');
    return result;
  } finally {
    await rm(d.workDir, { recursive: true, force: true });
  }
}

async function prune(d: BackupDeps, target: BackupTarget, keep: KeepPolicy, current: string, manifest: Manifest, present: Map<string, number>): Promise<{ dropped: string[]; removedObjects: number }> {
  const set = d.keys.setId;
  const gens = await listGenerations(target, set);
  const dropped = generationsToDrop(gens, keep).filter((g) => g !== current);
  if (dropped.length) await target.remove(dropped.map((g) => layout.manifest(set, g)));
  const referenced = new Set<string>();
  const mark = (m: Manifest) => {
    for (const f of [...m.files, ...m.records, ...m.config]) referenced.add(objectOf(d.keys, set, f).name);
  };
  mark(manifest);
  for (const g of gens.filter((x) => x !== current && !dropped.includes(x))) {
    try {
      mark(await loadManifest(target, d.keys, set, g));
    } catch (err) {
      // A kept generation that cannot be read: its objects stay (nothing is removed blind).
      if (err instanceof TargetError && err.kind !== 'notFound') throw err;
      d.log.warn({ evt: 'backup.manifest.unreadable', generation: g, err: (err as Error).message }, 'a kept backup generation cannot be read; removing no objects');
      return { dropped, removedObjects: 0 };
    }
  }
  const unused = [...present.keys()].filter((n) => !referenced.has(n));
  if (unused.length) await target.remove(unused.map((n) => layout.object(set, n)));
  return { dropped, removedObjects: unused.length };
}
