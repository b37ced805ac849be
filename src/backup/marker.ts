import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../store/atomic.js';
import type { DiskIdentity } from '../hw/disks.js';

/**
 * Which data disk this is. The disk carries a marker (box id, its serial, a generation);
 * the config dir (system flash, which survives a disk swap) remembers the marker last seen
 * and whether a restore is owed. A blank disk where a marked one used to be is a replaced
 * disk: it gets a new marker and a restore. A disk with data but no marker, or another
 * box's marker, is never written over: the operator is asked.
 */
export const MARKER_FILE = '.mlsd-disk.json';
export const BOX_ID_FILE = 'box-id';
export const MEMORY_FILE = 'data-marker.json';

export interface DiskMarker {
  boxId: string;
  /** The disk's serial when the marker was written ('' when unknown). */
  serial: string;
  /** 1 for the box's first data disk, one more for each replacement. */
  generation: number;
  createdAt: string;
}

/** The config dir's memory of the data disk: its marker, and a restore that is owed to it. */
export interface MarkerMemory {
  marker: DiskMarker;
  restorePending: { since: string; reason: 'disk-swap' | 'operator'; target: string | null } | null;
}

export type DiskVerdict =
  | { kind: 'first'; marker: DiskMarker }
  | { kind: 'known'; marker: DiskMarker }
  | { kind: 'swapped'; was: DiskMarker; marker: DiskMarker }
  | { kind: 'notBlank'; was: DiskMarker }
  | { kind: 'foreign'; found: DiskMarker; mine: string }
  | { kind: 'older'; found: DiskMarker; was: DiskMarker }
  | { kind: 'noDisk'; why: string };

const str = (v: unknown): v is string => typeof v === 'string' && v.length <= 200;

function parseMarker(raw: unknown): DiskMarker | null {
  const o = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  if (!str(o.boxId) || !/^[0-9a-f]{16,64}$/.test(o.boxId) || !str(o.serial) || !Number.isInteger(o.generation) || !str(o.createdAt)) return null;
  return { boxId: o.boxId, serial: o.serial, generation: o.generation as number, createdAt: o.createdAt };
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // A torn or edited file is as none: the verdict below never writes over data because of it.
    return undefined;
  }
}

/** This box's id (made once, kept on the flash; each box of an HA pair has its own). */
export async function boxId(configDir: string): Promise<string> {
  const path = join(configDir, BOX_ID_FILE);
  const text = (await readFile(path, 'utf8').catch(() => '')).trim();
  if (/^[0-9a-f]{32}$/.test(text)) return text;
  const id = randomBytes(16).toString('hex');
  await writeFileAtomic(path, id + '\n', 0o600);
  return id;
}

export async function readMemory(configDir: string): Promise<MarkerMemory | null> {
  const raw = (await readJson(join(configDir, MEMORY_FILE))) as Record<string, unknown> | null | undefined;
  const marker = raw ? parseMarker(raw.marker) : null;
  if (!raw || !marker) return null;
  const rp = raw.restorePending as Record<string, unknown> | null | undefined;
  const reason = rp?.reason === 'operator' ? 'operator' : 'disk-swap';
  return { marker, restorePending: rp && str(rp.since) ? { since: rp.since, reason, target: str(rp.target) ? rp.target : null } : null };
}

export async function writeMemory(configDir: string, m: MarkerMemory): Promise<void> {
  await writeFileAtomic(join(configDir, MEMORY_FILE), JSON.stringify(m, null, 2) + '\n', 0o600);
}

export async function writeMarker(dataDir: string, m: DiskMarker): Promise<void> {
  await writeFileAtomic(join(dataDir, MARKER_FILE), JSON.stringify(m, null, 2) + '\n', 0o600);
}

/** A mount point: its device differs from its parent's. */
async function isMountPoint(dir: string): Promise<boolean> {
  const [a, b] = await Promise.all([stat(dir).catch(() => null), stat(join(dir, '..')).catch(() => null)]);
  return !!a && !!b && (a.dev !== b.dev || a.ino === b.ino);
}

/** A blank disk: nothing on it but what a new file system has. */
async function isBlank(dataDir: string): Promise<boolean> {
  const entries = await readdir(dataDir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? [] : Promise.reject(err)));
  return entries.filter((e) => e !== 'lost+found').length === 0;
}

/**
 * Reads the data disk's marker before anything is written to the disk, decides what it is,
 * and records it: a first disk and a swapped blank disk get a new marker (a swap also a
 * restore owed, written to the flash first, so a crash between the two still restores).
 */
export async function checkDataDisk(o: { configDir: string; dataDir: string; disk: DiskIdentity | null; now: number; present?: boolean; mustBeMounted?: boolean }): Promise<DiskVerdict> {
  // No disk, or its file system not mounted (the data folder is then a bare folder of the
  // system flash): nothing is decided and nothing written, or an empty mount point would pass
  // for a blank replacement disk and a restore would fill the flash.
  if (o.present === false) return { kind: 'noDisk', why: 'no data disk is present' };
  if (o.mustBeMounted && !(await isMountPoint(o.dataDir))) return { kind: 'noDisk', why: `${o.dataDir} is not a mounted file system` };
  const id = await boxId(o.configDir);
  const memory = await readMemory(o.configDir);
  const rawMarker = await readJson(join(o.dataDir, MARKER_FILE));
  const found = rawMarker ? parseMarker(rawMarker) : null;
  const blank = await isBlank(o.dataDir);
  const fresh = (generation: number): DiskMarker => ({ boxId: id, serial: o.disk?.serial ?? '', generation, createdAt: new Date(o.now).toISOString() });
  if (found && found.boxId !== id) return { kind: 'foreign', found, mine: id };
  if (found && memory && found.generation < memory.marker.generation) {
    // An older disk of this box put back (the replacement was taken out again): it is the
    // current one now, as it is; a restore owed to the other is dropped, and said.
    await writeMemory(o.configDir, { marker: found, restorePending: null });
    return { kind: 'older', found, was: memory.marker };
  }
  if (found) {
    // The disk is ours: remembered as the current one (an old disk put back is the current one now).
    if (!memory || memory.marker.generation !== found.generation || memory.marker.createdAt !== found.createdAt) await writeMemory(o.configDir, { marker: found, restorePending: memory?.restorePending ?? null });
    return { kind: 'known', marker: found };
  }
  if (!memory) {
    // First start with this version: the disk as it is becomes the known one (data or not).
    // The disk's marker first: a power cut between the two writes then leaves a marked disk
    // and no memory, which the next start takes as known. The other order left a memory and
    // a blank disk without a marker, which the next start took for a swapped disk and owed a
    // restore (a new box whose first start lost power).
    const marker = fresh(1);
    await writeMarker(o.dataDir, marker);
    await writeMemory(o.configDir, { marker, restorePending: null });
    return { kind: 'first', marker };
  }
  if (!blank) return { kind: 'notBlank', was: memory.marker };
  const marker = fresh(memory.marker.generation + 1);
  await writeMemory(o.configDir, { marker, restorePending: { since: new Date(o.now).toISOString(), reason: 'disk-swap', target: null } });
  await writeMarker(o.dataDir, marker);
  return { kind: 'swapped', was: memory.marker, marker };
}
