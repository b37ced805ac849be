import { gunzipSync, gzipSync } from 'node:zlib';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackupKeys } from './keys.js';
import { objectName, openBytes, sealBytes } from './seal.js';
import type { BackupTarget } from './target.js';

/** One file of a backup: data-dir (or config-dir) relative path, size, content hash, modification time. */
export interface ManifestFile {
  p: string;
  s: number;
  h: string;
  m: number;
  /** Maildir messages: subject, sender and date, for `backup browse` without opening each message. */
  sub?: string;
  from?: string;
  date?: string;
}

/** One sublevel's records at the time of the backup, as a JSON-lines object. */
export interface ManifestRecords {
  sublevel: string;
  h: string;
  s: number;
  count: number;
}

/**
 * What one complete backup (a generation) holds. Written last, under a temporary name then
 * renamed: a generation without its manifest is no backup, and a reader never takes a half
 * backup for a complete one. Sealed with the backup key and bound to its generation's name.
 */
export interface Manifest {
  format: 1;
  set: string;
  box: { id: string; hostname: string };
  generation: string;
  startedAt: string;
  finishedAt: string;
  /** The archive's hash-chain head when the records were read: a restored archive must reach it. */
  archiveHead: { seq: number; mac: string } | null;
  files: ManifestFile[];
  records: ManifestRecords[];
  /** Config-dir files (the config document, accounts, keys): for a box whose flash died too. */
  config: ManifestFile[];
  /** Plaintext bytes the generation holds, and bytes sent to make it. */
  bytes: number;
  sentBytes: number;
}

/** Where things live on a target, under the backup set's own folder. */
export const layout = {
  objects: (set: string) => `mlsd-${set}/objects`,
  object: (set: string, name: string) => `mlsd-${set}/objects/${name.slice(0, 2)}/${name}`,
  manifests: (set: string) => `mlsd-${set}/manifests`,
  manifest: (set: string, generation: string) => `mlsd-${set}/manifests/${generation}.mf`,
};

/** A generation's name: its UTC start time, sortable (`20261205T023000Z`). */
export function generationName(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

export function generationTime(g: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(g);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : NaN;
}

const GEN = /^(\d{8}T\d{6}Z)\.mf$/;

export function sealManifest(keys: BackupKeys, m: Manifest): Buffer {
  return sealBytes(keys, `manifest:${m.set}:${m.generation}`, gzipSync(JSON.stringify(m)));
}

/** Opens a manifest; one that fails authentication or names another generation is refused. */
export function openManifest(keys: BackupKeys, set: string, generation: string, sealed: Buffer): Manifest {
  const m = JSON.parse(gunzipSync(openBytes(keys, `manifest:${set}:${generation}`, sealed)).toString('utf8')) as Manifest;
  if (m.format !== 1 || m.generation !== generation || m.set !== set || !Array.isArray(m.files)) throw new Error(`backup: manifest ${generation} is not one this box understands`);
  return m;
}

/** The complete generations on a target, oldest first (only renamed, final manifests count). */
export async function listGenerations(target: BackupTarget, set: string): Promise<string[]> {
  const entries = await target.list(layout.manifests(set));
  return entries
    .map((e) => GEN.exec(e.path.split('/').pop()!)?.[1])
    .filter((g): g is string => !!g)
    .sort();
}

/** Reads one generation's manifest from the target. */
export async function loadManifest(target: BackupTarget, keys: BackupKeys, set: string, generation: string): Promise<Manifest> {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-mf-'));
  try {
    const local = join(dir, 'm');
    await target.get([{ path: layout.manifest(set, generation), local }]);
    return openManifest(keys, set, generation, await readFile(local));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The object a manifest file entry is stored as. */
export function objectOf(keys: BackupKeys, set: string, f: { h: string }): { name: string; path: string } {
  const name = objectName(keys, f.h);
  return { name, path: layout.object(set, name) };
}
