import { lstat, mkdir, open, readdir, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../log/logger.js';
import { sublevel, type BatchOp, type Db } from '../store/db.js';
import type { DataRegistry } from '../store/data.js';
import { extract } from '../archive/extract.js';
import type { BackupKeys } from './keys.js';
import { generationName, generationTime, layout, listGenerations, loadManifest, objectOf, sealManifest, type Manifest, type ManifestFile, type ManifestRecords } from './manifest.js';
import { SEAL_OVERHEAD, sealFile, sha256File, type Sealed } from './seal.js';
import { generationsToDrop, type KeepPolicy } from './generations.js';
import { TargetError, type BackupTarget } from './target.js';
import { eachInPool } from './targets/pool.js';

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

/** A file to send: the manifest entry naming it, and where it is read from. */
interface Source {
  entry: ManifestFile | ManifestRecords;
  local: string;
  folder: 'data' | 'config' | 'work';
}

/** Seals a source's file where it is now; a mail file moved since (new/ to cur/) is followed once. */
async function sealSource(d: BackupDeps, src: Source): Promise<Sealed> {
  try {
    return await sealFile(d.keys, src.local, d.workDir);
  } catch (err) {
    const e = src.entry as ManifestFile;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || src.folder !== 'data') throw err;
    const now = await d.data.locate(d.dataDir, e.p).catch(() => null);
    if (!now || now === e.p) throw err;
    e.p = now;
    return sealFile(d.keys, join(d.dataDir, now), d.workDir);
  }
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
    // Generations are named by the second they start: two runs in one second get the next free
    // one. Only an equal name counts (a planted far-future name must not push ours off the calendar).
    while (existing.includes(generation)) generation = generationName(generationTime(generation) + 1000);
    const present = new Map<string, number>();
    const leftovers: string[] = [];
    for (const e of await target.list(layout.objects(set))) {
      const name = e.path.split('/').pop()!;
      if (/^[0-9a-f]{64}$/.test(name)) present.set(name, e.size);
      else leftovers.push(e.path);
    }
    // Parts of an earlier run cut mid-upload: never a complete object, and never named by a manifest.
    if (leftovers.length) await target.remove(leftovers);

    // Each object the target lacks, with every entry naming it (a file that changed before it
    // was sealed updates its entry; another entry of the same old content is then sealed too).
    const toSend = new Map<string, Source[]>();
    const want = (entry: ManifestFile | ManifestRecords, local: string, folder: 'data' | 'config' | 'work') => {
      const { name } = objectOf(d.keys, set, entry);
      // There, and whole (a sealed object is its content plus a fixed overhead): a truncated one is sent again.
      if (present.has(name) && present.get(name) === entry.s + SEAL_OVERHEAD) return;
      const list = toSend.get(name);
      if (list) list.push({ entry, local, folder });
      else toSend.set(name, [{ entry, local, folder }]);
    };

    // 1. Records, one JSON-lines object per sublevel, read before the files they name, and all
    // through one iterator: one snapshot of the database, so the archive's chain and its head
    // (or a record and the index beside it) are never read at different moments.
    const archiveHead = d.archiveHead();
    const records: ManifestRecords[] = [];
    const dumps = new Map<string, { fh: FileHandle; local: string; chunk: string; count: number }>();
    try {
      for (const decl of d.data.backupSublevels()) {
        const local = join(d.workDir, `records-${decl.name}.jsonl`);
        dumps.set(decl.name, { fh: await open(local, 'wx', 0o600), local, chunk: '', count: 0 });
      }
      for await (const [k, v] of d.db.iterator({ gt: '!', lt: '"' })) {
        const m = /^!([^!]+)!/.exec(k);
        const dump = m ? dumps.get(m[1]!) : undefined;
        if (!dump) continue;
        dump.chunk += JSON.stringify([k.slice(m![0].length), v]) + '\n';
        dump.count++;
        if (dump.chunk.length > 1 << 20) {
          await dump.fh.write(dump.chunk);
          dump.chunk = '';
        }
      }
      for (const dump of dumps.values()) await dump.fh.write(dump.chunk);
    } finally {
      for (const dump of dumps.values()) await dump.fh.close().catch(() => undefined);
    }
    for (const [name, dump] of dumps) {
      const { sha256, size } = await sha256File(dump.local);
      const rec: ManifestRecords = { sublevel: name, h: sha256, s: size, count: dump.count };
      records.push(rec);
      want(rec, dump.local, 'work');
    }

    // 2. Files of the declared folders; a file unchanged since the last run is not hashed again.
    const cache = sublevel(d.db, HASH_SUBLEVEL);
    const cached = new Map<string, CachedHash>();
    for await (const [k, v] of cache.iterator()) cached.set(k, v as CachedHash);
    const rels = await d.data.filesUnder(d.dataDir, d.data.backupFolders());
    const files: ManifestFile[] = [];
    const fresh = new Map<string, CachedHash>();
    await eachInPool(rels, 4, async (rel) => {
      let abs = join(d.dataDir, rel);
      let st = await lstat(abs).catch(() => null);
      if (!st?.isFile()) {
        // Moved since the listing (a mail client read it: new/ to cur/, a flag): taken where it is now.
        const now = await d.data.locate(d.dataDir, rel).catch(() => null);
        if (!now || now === rel) return;
        rel = now;
        abs = join(d.dataDir, rel);
        st = await lstat(abs).catch(() => null);
        if (!st?.isFile()) return;
      }
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
      const f: ManifestFile = { p: rel, s: entry.s, h: entry.h, m: Math.round(entry.m), ...(entry.sub !== undefined ? { sub: entry.sub, from: entry.from } : {}), ...(entry.date ? { date: entry.date } : {}) };
      files.push(f);
      want(f, abs, 'data');
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
          const f: ManifestFile = { p: r, s: h.size, h: h.sha256, m: Math.round((await stat(abs)).mtimeMs) };
          config.push(f);
          want(f, abs, 'config');
        }
      }
    };
    await walk('');

    // 4. The objects the target lacks, sealed in the work folder and sent in batches. A file is
    // hashed again as it is sealed (one read): what is sent is what the manifest names.
    let sentBytes = 0;
    let sentObjects = 0;
    const vanished = new Set<ManifestFile | ManifestRecords>();
    const queue = [...toSend.entries()];
    while (queue.length) {
      const batch: [string, Source[]][] = [];
      let bytes = 0;
      while (queue.length && batch.length < UPLOAD_BATCH_FILES && (bytes < UPLOAD_BATCH_BYTES || batch.length === 0)) {
        const item = queue.shift()!;
        bytes += item[1][0]!.entry.s;
        batch.push(item);
      }
      const sealed = new Map<string, string>();
      await eachInPool(batch, 4, async ([name, sources]) => {
        for (let i = 0; i < sources.length; i++) {
          const src = sources[i]!;
          const got = await sealSource(d, src).catch((err: NodeJS.ErrnoException) => {
            if (err.code === 'ENOENT') return null;
            throw err;
          });
          if (!got) {
            // Gone since it was listed (expunged, delivered): this generation does without it.
            vanished.add(src.entry);
            continue;
          }
          if (got.name !== name) {
            // Changed since it was hashed: its entry names what was sealed now.
            Object.assign(src.entry, { h: got.sha256, s: got.size });
            if (!present.has(got.name) && !sealed.has(got.name)) sealed.set(got.name, got.path);
            else await unlink(got.path);
            continue;
          }
          sealed.set(name, got.path);
          return;
        }
      });
      await target.put([...sealed].map(([name, local]) => ({ local, path: layout.object(set, name) })));
      for (const [name, local] of sealed) {
        sentBytes += (await stat(local)).size;
        present.set(name, 0);
        await unlink(local);
      }
      sentObjects += sealed.size;
      onProgress?.({ files: sentObjects, sentBytes });
    }
    if (vanished.size) {
      for (let i = files.length - 1; i >= 0; i--) if (vanished.has(files[i]!)) files.splice(i, 1);
      for (let i = config.length - 1; i >= 0; i--) if (vanished.has(config[i]!)) config.splice(i, 1);
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
    // The generation is safe already: a failed clean-up is said, and tried again next time.
    const { dropped, removedObjects } = await prune(d, target, keep, generation, manifest, present).catch((err: Error) => {
      d.log.warn({ evt: 'backup.prune.fail', err: err.message }, 'could not drop old generations; the next run tries again');
      return { dropped: [] as string[], removedObjects: 0 };
    });
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
      // One the target could not give: nothing is removed blind. One that does not open (planted
      // on the share, damaged) names nothing of ours and holds nothing back.
      if (err instanceof TargetError) {
        d.log.warn({ evt: 'backup.manifest.unreadable', generation: g, err: err.message }, 'a kept backup generation cannot be read; removing no objects');
        return { dropped, removedObjects: 0 };
      }
      d.log.warn({ evt: 'backup.manifest.bad', generation: g, err: (err as Error).message }, 'a manifest on the target does not open; it is not counted');
    }
  }
  const unused = [...present.keys()].filter((n) => !referenced.has(n));
  if (unused.length) await target.remove(unused.map((n) => layout.object(set, n)));
  return { dropped, removedObjects: unused.length };
}
