import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { ConfigError } from './errors.js';
import { writeFileAtomic } from '../store/atomic.js';
import type { DataDecl, DataRegistry } from '../store/data.js';
import { createHash } from 'node:crypto';

const CONFIG_FILE = 'config.json';

/** The config document: shared by an HA pair, each box keeping its own `ha` section. */
export const CONFIG_DATA: DataDecl = {
  owner: 'config',
  configFiles: [{ pattern: /^config\.json$/, describe: 'the config document', replicate: true, mode: 0o600 }],
};

export { ConfigError };

/** Turns schema issues into "key: problem" lines, every problem in one pass. */
export function describeIssues(issues: z.core.$ZodIssue[]): string[] {
  return issues.map((i) => {
    const path = i.path.map(String).join('.');
    if (i.code === 'unrecognized_keys') {
      return i.keys.map((k) => `${path ? path + '.' : ''}${k}: unknown key`).join('; ');
    }
    return `${path || '(document)'}: ${i.message}`;
  });
}

export function validateConfig(doc: unknown): Config {
  const r = configSchema.safeParse(doc);
  if (!r.success) throw new ConfigError(describeIssues(r.error.issues));
  return r.data;
}

/**
 * Path segments that reach an object's prototype: `__proto__.toString` would otherwise
 * walk from the document into Object.prototype and change it for the whole daemon.
 */
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);

/** The key's segments; a prototype-reaching or empty segment is refused with the key named. */
function keyParts(key: string): string[] {
  const parts = key.split('.');
  const bad = parts.find((p) => FORBIDDEN_SEGMENTS.has(p));
  if (bad !== undefined) throw new ConfigError([`${key}: the path segment ${bad} is not allowed`]);
  if (parts.some((p) => p === '')) throw new ConfigError([`${key}: unknown key`]);
  return parts;
}

/** Whether `part` is a field of cur itself (a list's index, an object's own key), never an inherited one. */
function hasField(cur: unknown, part: string): cur is Record<string, unknown> {
  if (cur === null || typeof cur !== 'object') return false;
  if (Array.isArray(cur)) return /^\d+$/.test(part) && Number(part) < cur.length;
  return Object.hasOwn(cur, part);
}

/** Reads a dotted key ("relay.allowIps", "smtp.listeners.0.port"); '' is the whole document. */
export function getKey(doc: unknown, key: string): unknown {
  if (key === '') return doc;
  let cur: unknown = doc;
  for (const part of keyParts(key)) {
    if (!hasField(cur, part)) throw new ConfigError([`${key}: unknown key`]);
    cur = cur[part];
  }
  return cur;
}

/** Returns a copy of doc with a dotted key replaced; the result still has to be validated. */
export function setKey(doc: Config, key: string, value: unknown): unknown {
  const parts = keyParts(key);
  const copy = structuredClone(doc) as unknown as Record<string, unknown>;
  let cur: Record<string, unknown> = copy;
  for (const part of parts.slice(0, -1)) {
    const next = hasField(cur, part) ? cur[part] : undefined;
    if (next === null || typeof next !== 'object') throw new ConfigError([`${key}: unknown key`]);
    cur = next as Record<string, unknown>;
  }
  const last = parts[parts.length - 1]!;
  if (!hasField(cur, last)) throw new ConfigError([`${key}: unknown key`]);
  cur[last] = value;
  return copy;
}

/**
 * The config document of record, `<config-dir>/config.json`. Holders read `current`
 * on every decision, so a `set` takes effect without a restart where that makes sense.
 */
export class ConfigStore {
  private cfg: Config;
  private readonly listeners = new Set<(cfg: Config, key: string) => void>();

  private constructor(readonly path: string, cfg: Config) {
    this.cfg = cfg;
  }

  static async open(configDir: string, boardDefaults: unknown): Promise<{ store: ConfigStore; created: boolean }> {
    const path = join(configDir, CONFIG_FILE);
    let raw: string | null = null;
    try {
      raw = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (raw === null) {
      const cfg = validateConfig(boardDefaults);
      await writeFileAtomic(path, JSON.stringify(cfg, null, 2) + '\n');
      return { store: new ConfigStore(path, cfg), created: true };
    }
    let doc: unknown;
    try {
      doc = JSON.parse(raw);
    } catch (err) {
      throw new ConfigError([`${path}: not valid JSON (${(err as Error).message})`]);
    }
    return { store: new ConfigStore(path, validateConfig(doc)), created: false };
  }

  get current(): Config {
    return this.cfg;
  }

  /** Returns the unsubscribe. */
  onChange(fn: (cfg: Config, key: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Takes a whole document from the HA peer. This box's own `ha` section is kept (node id,
   * priority, addresses and serial device are per box), and so is `admin.listen`: each box's
   * web admin answers on its own address, so a standby can be reached while it is one.
   */
  async replaceFromPeer(doc: unknown): Promise<boolean> {
    const mine = structuredClone(this.cfg.ha);
    const theirs = (doc ?? {}) as { admin?: Record<string, unknown> };
    const next = validateConfig({ ...theirs, ha: mine, admin: { ...theirs.admin, listen: this.cfg.admin.listen } });
    if (JSON.stringify(next) === JSON.stringify(this.cfg)) return false;
    await writeFileAtomic(this.path, JSON.stringify(next, null, 2) + '\n');
    this.cfg = next;
    for (const fn of this.listeners) fn(next, '(from HA peer)');
    return true;
  }

  /** The peer's copy of the document arrives through the store (this box keeps its own `ha`). */
  acceptPeerCopies(data: DataRegistry): void {
    data.onConfigFile(CONFIG_FILE, async (bytes) => void (await this.replaceFromPeer(JSON.parse(bytes.toString('utf8')))));
  }

  /** A short hash of the document both boxes share (without `ha` and `admin.listen`), compared in HA heartbeats. */
  sharedVersion(): string {
    return createHash('sha256').update(JSON.stringify({ ...this.cfg, ha: null, admin: { ...this.cfg.admin, listen: null } })).digest('hex').slice(0, 12);
  }

  async set(key: string, value: unknown): Promise<Config> {
    const next = validateConfig(setKey(this.cfg, key, value));
    await writeFileAtomic(this.path, JSON.stringify(next, null, 2) + '\n');
    this.cfg = next;
    for (const fn of this.listeners) fn(next, key);
    return next;
  }
}
