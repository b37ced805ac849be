import { open as openFile, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { sublevel, type BatchOp, type Db } from '../store/db.js';
import type { SublevelDecl } from '../store/data.js';
import type { Durability } from '../store/durability.js';
import type { Logger } from '../log/logger.js';
import type { BlobStore } from './types.js';
import { isAddress } from './seal.js';

const BLOBS = 'archive-blobs';
const PACKS = 'archive-packs';
/** Relative to the data dir; the folder `archive` is declared by the archive capability. */
const PACK_DIR = 'archive/packs';
const packRel = (id: string) => `${PACK_DIR}/${id}.pack`;

/** The pack store's records, for the archive's DataDecl (its folder `archive` is the capability's). */
export const PACK_DATA_SUBLEVELS: SublevelDecl[] = [
  { name: BLOBS, describe: 'archive blobs: content address to pack, offset, length', replicate: true },
  // Deleting a pack record makes the HA standby unlink its copy of the file.
  { name: PACKS, describe: 'archive pack files: size, blobs written, blobs still live', replicate: true, file: packRel },
];

/** Where one blob is: a byte range of a pack file. */
export interface BlobLocation {
  pack: string;
  off: number;
  len: number;
}

export interface PackRecord {
  /** File size. */
  bytes: number;
  /** Blobs written into it. */
  blobs: number;
  /** Blobs some location record still names; at 0 the pack is deleted. */
  live: number;
}

interface OpenPack {
  fh: FileHandle;
  size: number;
  /** Reads in flight. */
  users: number;
  /** Dropped from the cache: closed when the last read is done. */
  closing: boolean;
}

/** A pack size to aim for: big enough that a million messages are a few hundred files. */
const PACK_TARGET = 8 * 1024 * 1024;
/** Live bytes a drop rewrites at most (compaction): bounds its memory and time. */
const COMPACT_BUDGET = 64 * 1024 * 1024;
/** Pack files kept open for reading. */
const OPEN_PACKS = 32;
// Pack ids never look like a message id: a record of the same key in another sublevel
// declaring `file:` would otherwise be taken for another link to the same file.
const PACK_ID = /^pack-\d{12}$/;
const PACK_FILE = /^(pack-\d{12})\.pack$/;
const packId = (n: number) => `pack-${String(n).padStart(12, '0')}`;

/**
 * Sealed blobs on the data disk, many to a pack file. A pack is written once (temp, fsync,
 * rename, through the durability seam, which mirrors it to the HA standby) and never
 * appended to, so a pack on disk is always whole. Which blob is where lives in LevelDB.
 *
 * put, drop and sweep run one at a time. The caller writes each put's or drop's ops in its
 * own synced batch, calls `reset()` when that batch failed, and never drops an address
 * while a put of it may be uncommitted (the archive serializes intake and purge).
 */
export class LocalPackStore implements BlobStore {
  private readonly dir: string;
  private next = 1;
  private lock: Promise<unknown> = Promise.resolve();
  /** Locations handed out by put whose records may not be committed yet (dedupe across calls). */
  private readonly recent = new Map<string, BlobLocation>();
  private readonly handles = new Map<string, Promise<OpenPack | null>>();
  /** Packs written by this process: not orphans even before their record is committed. */
  private readonly written = new Set<string>();

  constructor(
    private readonly dataDir: string,
    private readonly db: Db,
    private readonly durability: Durability,
    private readonly log: Logger,
  ) {
    this.dir = join(dataDir, PACK_DIR);
  }

  /** Seeds the pack counter from the highest pack record. */
  async open(): Promise<void> {
    for await (const key of sublevel(this.db, PACKS).keys({ reverse: true, limit: 1 })) {
      if (PACK_ID.test(key)) this.next = Number(key.slice(5)) + 1;
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** The caller's batch with the last put's ops failed: forget the locations not committed. */
  reset(): void {
    this.recent.clear();
  }

  private async location(address: string): Promise<BlobLocation | null> {
    const v = (await sublevel(this.db, BLOBS).get(address)) as unknown;
    return v === undefined ? null : checkLocation(address, v);
  }

  put(blobs: { address: string; sealed: Buffer }[]): Promise<BatchOp[]> {
    return this.serial(async () => {
      for (const b of blobs) if (!isAddress(b.address)) throw new Error(`archive: refusing blob address ${String(b.address).slice(0, 80)}`);
      await this.prunePending();
      const ops: BatchOp[] = [];
      const fresh: { address: string; sealed: Buffer }[] = [];
      const seen = new Set<string>();
      const stored = await sublevel(this.db, BLOBS).getMany(blobs.map((b) => b.address));
      blobs.forEach((b, i) => {
        if (seen.has(b.address)) return;
        seen.add(b.address);
        if (stored[i] !== undefined) return;
        const pending = this.recent.get(b.address);
        // Put by an earlier call whose batch may still be on its way: the same record again.
        if (pending) ops.push({ type: 'put', sublevel: BLOBS, key: b.address, value: pending });
        else fresh.push(b);
      });
      for (const group of packGroups(fresh)) ops.push(...(await this.writePack(group)));
      return ops;
    });
  }

  /** Forgets pending locations and packs whose records are committed by now (normally the last put's). */
  private async prunePending(): Promise<void> {
    const prune = async (sub: string, pending: { keys(): Iterable<string>; delete(k: string): boolean }) => {
      const keys = [...pending.keys()];
      if (keys.length === 0) return;
      const stored = await sublevel(this.db, sub).getMany(keys);
      keys.forEach((k, i) => stored[i] !== undefined && pending.delete(k));
    };
    await prune(BLOBS, this.recent);
    await prune(PACKS, this.written);
  }

  private async writePack(group: { address: string; sealed: Buffer }[]): Promise<BatchOp[]> {
    const id = packId(this.next++);
    const ops: BatchOp[] = [];
    let off = 0;
    for (const b of group) {
      const loc: BlobLocation = { pack: id, off, len: b.sealed.length };
      ops.push({ type: 'put', sublevel: BLOBS, key: b.address, value: loc });
      this.recent.set(b.address, loc);
      off += b.sealed.length;
    }
    this.written.add(id);
    await this.durability.writeFile(packRel(id), Buffer.concat(group.map((b) => b.sealed)));
    const rec: PackRecord = { bytes: off, blobs: group.length, live: group.length };
    ops.push({ type: 'put', sublevel: PACKS, key: id, value: rec });
    this.log.debug({ evt: 'archive.pack.write', pack: id, blobs: group.length, bytes: off }, 'archive pack written');
    return ops;
  }

  async get(address: string): Promise<Buffer | null> {
    if (!isAddress(address)) throw new Error(`archive: refusing blob address ${String(address).slice(0, 80)}`);
    const loc = await this.location(address);
    if (!loc) return null;
    return this.readRange(address, loc, false);
  }

  /** One positioned read of a blob's range; null (or, when `must`, an error) if its pack is gone. */
  private async readRange(address: string, loc: BlobLocation, must: true): Promise<Buffer>;
  private async readRange(address: string, loc: BlobLocation, must: false): Promise<Buffer | null>;
  private async readRange(address: string, loc: BlobLocation, must: boolean): Promise<Buffer | null> {
    const pack = await this.handle(loc.pack);
    if (!pack) {
      if (must) throw new Error(`archive: pack ${loc.pack} of blob ${address.slice(0, 16)} is missing`);
      return null;
    }
    if (loc.off + loc.len > pack.size) throw new Error(`archive: blob ${address.slice(0, 16)} lies outside ${loc.pack} (${loc.off}+${loc.len} > ${pack.size} bytes)`);
    const buf = Buffer.alloc(loc.len);
    pack.users++;
    try {
      const { bytesRead } = await pack.fh.read(buf, 0, loc.len, loc.off);
      if (bytesRead !== loc.len) throw new Error(`archive: short read of blob ${address.slice(0, 16)} in ${loc.pack}`);
    } finally {
      if (--pack.users === 0 && pack.closing) void pack.fh.close().catch(() => undefined);
    }
    return buf;
  }

  /**
   * An open pack file and its size. Packs are never changed once written, so a few stay
   * open: a search page or a verify reads many blobs from the same packs.
   */
  private handle(id: string): Promise<OpenPack | null> {
    let h = this.handles.get(id);
    if (h) {
      this.handles.delete(id);
      this.handles.set(id, h);
      return h;
    }
    h = (async () => {
      const fh = await openFile(join(this.dir, `${id}.pack`), 'r').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw err;
      });
      return fh && { fh, size: (await fh.stat()).size, users: 0, closing: false };
    })();
    this.handles.set(id, h);
    // A missing pack is looked for again next time (an HA standby may receive it).
    const forget = () => void (this.handles.get(id) === h && this.handles.delete(id));
    h.then((v) => v === null && forget(), forget);
    if (this.handles.size > OPEN_PACKS) this.closeHandle(this.handles.keys().next().value!);
    return h;
  }

  /** Closes a pack file once the reads in flight on it are done. */
  private closeHandle(id: string): void {
    const h = this.handles.get(id);
    if (!h) return;
    this.handles.delete(id);
    void h.then(
      (p) => {
        if (!p) return;
        p.closing = true;
        if (p.users === 0) void p.fh.close().catch(() => undefined);
      },
      () => undefined,
    );
  }

  /** Closes the open pack files. */
  async close(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(all.map((h) => h.then((v) => v?.fh.close(), () => undefined).catch(() => undefined)));
  }

  async has(address: string): Promise<boolean> {
    return isAddress(address) && (await this.location(address)) !== null;
  }

  drop(addresses: string[]): Promise<{ ops: BatchOp[]; after: () => Promise<void> }> {
    return this.serial(async () => {
      const byPack = new Map<string, number>();
      const ops: BatchOp[] = [];
      for (const address of new Set(addresses)) {
        const loc = isAddress(address) ? await this.location(address) : null;
        if (!loc) continue;
        ops.push({ type: 'del', sublevel: BLOBS, key: address });
        this.recent.delete(address);
        byPack.set(loc.pack, (byPack.get(loc.pack) ?? 0) + 1);
      }
      const freed: string[] = [];
      const sparse = new Map<string, PackRecord>();
      let budget = COMPACT_BUDGET;
      for (const [id, n] of byPack) {
        const rec = (await sublevel(this.db, PACKS).get(id)) as PackRecord | undefined;
        if (!rec) continue;
        const live = rec.live - n;
        if (live <= 0) {
          ops.push({ type: 'del', sublevel: PACKS, key: id });
          freed.push(id);
        } else if (live * 2 < rec.blobs && budget > 0) {
          budget -= (rec.bytes * live) / rec.blobs;
          sparse.set(id, { ...rec, live });
        } else {
          ops.push({ type: 'put', sublevel: PACKS, key: id, value: { ...rec, live } satisfies PackRecord });
        }
      }
      if (sparse.size > 0) {
        const moved = await this.compact(sparse, new Set(addresses));
        ops.push(...moved.ops);
        freed.push(...moved.freed);
      }
      const after = async () => {
        for (const id of freed) this.closeHandle(id);
        for (const id of freed) await unlink(join(this.dir, `${id}.pack`)).catch(() => undefined);
        if (freed.length) this.log.info({ evt: 'archive.pack.free', packs: freed }, 'archive packs with nothing live deleted');
      };
      return { ops, after };
    });
  }

  /**
   * Rewrites packs mostly dead into new ones holding only their live blobs (the old ones
   * are freed like empty packs). Finding a pack's live blobs takes one scan of the blob
   * records, which is why it runs at a drop (a purge), not on its own. A pack whose blobs
   * cannot all be read is kept as it is.
   */
  private async compact(sparse: Map<string, PackRecord>, dropped: Set<string>): Promise<{ ops: BatchOp[]; freed: string[] }> {
    const live = new Map<string, { address: string; loc: BlobLocation }[]>([...sparse.keys()].map((id) => [id, []]));
    for await (const [address, v] of sublevel(this.db, BLOBS).iterator()) {
      const pack = (v as Partial<BlobLocation> | null)?.pack;
      if (typeof pack === 'string' && live.has(pack) && !dropped.has(address)) live.get(pack)!.push({ address, loc: checkLocation(address, v) });
    }
    const ops: BatchOp[] = [];
    const freed: string[] = [];
    const blobs: { address: string; sealed: Buffer }[] = [];
    for (const [id, entries] of live) {
      const read: { address: string; sealed: Buffer }[] = [];
      try {
        for (const e of entries) read.push({ address: e.address, sealed: await this.readRange(e.address, e.loc, true) });
      } catch (err) {
        this.log.warn({ evt: 'archive.pack.compact_skip', pack: id, err: (err as Error).message }, 'archive pack not compacted');
        ops.push({ type: 'put', sublevel: PACKS, key: id, value: sparse.get(id)! });
        continue;
      }
      blobs.push(...read);
      ops.push({ type: 'del', sublevel: PACKS, key: id });
      freed.push(id);
    }
    for (const group of packGroups(blobs)) ops.push(...(await this.writePack(group)));
    this.log.info({ evt: 'archive.pack.compact', packs: freed, blobs: blobs.length }, 'archive packs mostly dead rewritten');
    return { ops, freed };
  }

  sweep(): Promise<number> {
    return this.serial(async () => {
      let names: string[];
      try {
        names = await readdir(this.dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
        throw err;
      }
      await this.prunePending();
      const packs = sublevel(this.db, PACKS);
      let n = 0;
      for (const name of names) {
        const m = PACK_FILE.exec(name);
        // A temp file of a write cut short (none is in flight: put holds the same lock).
        const orphan = m ? !this.written.has(m[1]!) && (await packs.get(m[1]!)) === undefined : name.startsWith('.') && name.endsWith('.tmp');
        if (!orphan) continue;
        await unlink(join(this.dir, name)).catch(() => undefined);
        n++;
      }
      if (n) this.log.info({ evt: 'archive.pack.sweep', removed: n }, 'removed archive pack files no record names');
      return n;
    });
  }

  async stats(): Promise<{ blobs: number; bytes: number; files: number }> {
    let blobs = 0;
    let bytes = 0;
    let files = 0;
    for await (const v of sublevel(this.db, PACKS).values()) {
      const r = v as PackRecord;
      blobs += r.live;
      bytes += r.bytes;
      files++;
    }
    return { blobs, bytes, files };
  }
}

/** Blobs in packs of about PACK_TARGET bytes; a bigger blob gets a pack of its own. */
function packGroups<T extends { sealed: Buffer }>(blobs: T[]): T[][] {
  const groups: T[][] = [];
  let cur: T[] = [];
  let size = 0;
  for (const b of blobs) {
    if (cur.length > 0 && size + b.sealed.length > PACK_TARGET) {
      groups.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(b);
    size += b.sealed.length;
  }
  if (cur.length > 0) groups.push(cur);
  return groups;
}

/** A location record as stored, checked: it may have been forged to read outside the packs. */
function checkLocation(address: string, v: unknown): BlobLocation {
  const l = v as Partial<BlobLocation> | null;
  const ok =
    l !== null &&
    typeof l === 'object' &&
    typeof l.pack === 'string' &&
    PACK_ID.test(l.pack) &&
    Number.isSafeInteger(l.off) &&
    Number.isSafeInteger(l.len) &&
    l.off! >= 0 &&
    l.len! >= 0 &&
    l.len! <= 1 << 30;
  if (!ok) throw new Error(`archive: refusing the location record of blob ${address.slice(0, 16)}: ${JSON.stringify(v).slice(0, 120)}`);
  return { pack: l.pack!, off: l.off!, len: l.len! };
}
