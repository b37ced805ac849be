import { readdir, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';

/**
 * What each capability keeps on the data disk and the config flash, declared once by its
 * owner. The declarations are read by HA (what to mirror to the standby), and by backup
 * and restore (what to copy, what to put back): a new capability that declares its data
 * is replicated without a change to `ha/`.
 */

/** A LevelDB sublevel. */
export interface SublevelDecl {
  name: string;
  describe: string;
  /**
   * Mirrored to the HA standby (and kept in backups). False for what is this box's own:
   * its event log, its HA state.
   */
  replicate: boolean;
  /** Copied to backups and put back by a restore; default: what is replicated (the event log is backed up too). */
  backup?: boolean;
  /** Restore order (lower first; default 3): mail comes back before the archive. */
  restoreRank?: number;
  /**
   * The data-dir file each record stands for, relative to the data dir (records keyed by a
   * message id). The file lives while some record refers to it; a record put where its
   * file is missing takes the file from another record of the same key (a hard link).
   */
  file?: (key: string) => string;
  /** Committed messages: the sublevel a commit writes its envelope to (one per box). */
  messages?: boolean;
  /**
   * After both boxes served alone, the records the stepping-down box offers the active
   * (with their file); the owner decides whether to take each one.
   */
  merge?: (value: unknown) => boolean;
}

/** A folder directly under the data dir. */
export interface FolderDecl {
  path: string;
  describe: string;
  replicate: boolean;
  /** Copied to backups; default: what is replicated (a derived index is rebuilt instead). */
  backup?: boolean;
  /**
   * Restore order of a file (lower first, default 3; newest first within a rank): a user's
   * INBOX and recent mail come back before older mail, WebDisk and the archive.
   */
  restoreRank?: (rel: string, mtimeMs: number, recentSinceMs: number) => number;
  /** Sub-folders never copied anywhere: work in progress (Maildir tmp/). */
  skipDirs?: string[];
  /**
   * The identity of a file across both boxes, when a user's mail client may rename it
   * (Maildir new/ to cur/, flags); default: its path.
   */
  identity?: (rel: string) => string;
  /** Where the file known by `rel` is now (null: gone); default: `rel` if it exists. */
  locate?: (dataDir: string, rel: string) => Promise<string | null>;
  /** After both boxes served alone, files only the stepping-down box has are taken in. */
  merge?: boolean;
}

/** A file in the config dir (it survives a data-disk swap). */
export interface ConfigFileDecl {
  /** Matched against the path relative to the config dir. */
  pattern: RegExp;
  describe: string;
  /** The same on both boxes of an HA pair (the control socket and per-box HA keys are not). */
  replicate: boolean;
  /** File mode when written from a peer or a backup. */
  mode?: number;
}

export interface DataDecl {
  owner: string;
  sublevels?: SublevelDecl[];
  folders?: FolderDecl[];
  configFiles?: ConfigFileDecl[];
}

/** Takes a record (and its file) that only the other box had; true when it was taken in. */
export type MergeHandler = (key: string, value: unknown, body: Buffer) => Promise<boolean>;

/** Applies a config-dir file received from the peer instead of writing it as it is. */
export type ConfigFileApplier = (data: Buffer) => Promise<void>;

/** Every declaration of the running box, checked once: each name has exactly one owner. */
export class DataRegistry {
  private readonly sublevels = new Map<string, SublevelDecl & { owner: string }>();
  private readonly folders = new Map<string, FolderDecl & { owner: string }>();
  private readonly configFiles: (ConfigFileDecl & { owner: string })[] = [];
  private readonly mergers = new Map<string, MergeHandler>();
  private readonly appliers = new Map<string, ConfigFileApplier>();
  private readonly watchers = new Map<string, (() => void)[]>();

  constructor(decls: DataDecl[]) {
    for (const d of decls) {
      for (const s of d.sublevels ?? []) {
        const prior = this.sublevels.get(s.name);
        if (prior) throw new Error(`data: sublevel ${s.name} declared by both ${prior.owner} and ${d.owner}`);
        this.sublevels.set(s.name, { ...s, owner: d.owner });
      }
      for (const f of d.folders ?? []) {
        if (!/^[a-z0-9][a-z0-9-]*$/.test(f.path)) throw new Error(`data: folder ${f.path} of ${d.owner} must be one plain name under the data dir`);
        const prior = this.folders.get(f.path);
        if (prior) throw new Error(`data: folder ${f.path} declared by both ${prior.owner} and ${d.owner}`);
        this.folders.set(f.path, { ...f, owner: d.owner });
      }
      for (const c of d.configFiles ?? []) this.configFiles.push({ ...c, owner: d.owner });
    }
    if ([...this.sublevels.values()].filter((s) => s.messages).length > 1) throw new Error('data: only one sublevel may hold committed messages');
  }

  /** The declaration of a sublevel; writing an undeclared one is a programming error. */
  sublevel(name: string): SublevelDecl & { owner: string } {
    const s = this.sublevels.get(name);
    if (!s) throw new Error(`data: sublevel ${name} is not declared by any capability`);
    return s;
  }

  isReplicated(sublevel: string): boolean {
    return this.sublevels.get(sublevel)?.replicate === true;
  }

  replicatedSublevels(): string[] {
    return [...this.sublevels.values()].filter((s) => s.replicate).map((s) => s.name);
  }

  /** Sublevels a backup copies (records), with their declarations. */
  backupSublevels(): (SublevelDecl & { owner: string })[] {
    return [...this.sublevels.values()].filter((s) => s.backup ?? s.replicate);
  }

  /** Folders a backup copies. */
  backupFolders(): (FolderDecl & { owner: string })[] {
    return [...this.folders.values()].filter((f) => f.backup ?? f.replicate);
  }

  /** Where a restored record or file goes in the restore order. */
  restoreRankOf(rel: string, mtimeMs: number, recentSinceMs: number): number {
    return this.folderOf(rel)?.restoreRank?.(rel, mtimeMs, recentSinceMs) ?? 3;
  }

  /** Whether a merge handler for the sublevel is registered now (its owner runs). */
  hasMergeHandler(sublevel: string): boolean {
    return this.mergers.has(sublevel);
  }

  replicatedFolders(): string[] {
    return [...this.folders.values()].filter((f) => f.replicate).map((f) => f.path);
  }

  /** The sublevel commits write to (the spool's). */
  messages(): SublevelDecl & { file: (key: string) => string } {
    const s = [...this.sublevels.values()].find((x) => x.messages && x.file);
    if (!s) throw new Error('data: no capability declares the committed-message sublevel');
    return s as SublevelDecl & { file: (key: string) => string };
  }

  /** The file a record stands for, or null. Keys that name files must be plain ids. */
  fileOf(sublevel: string, key: string): string | null {
    const s = this.sublevels.get(sublevel);
    if (!s?.file) return null;
    checkKey(key);
    return s.file(key);
  }

  /** Every other place a record of this key keeps its file (to link from). */
  filesOfKey(key: string): string[] {
    checkKey(key);
    return [...new Set([...this.sublevels.values()].filter((s) => s.file).map((s) => s.file!(key)))];
  }

  mergeable(): (SublevelDecl & { merge: (value: unknown) => boolean })[] {
    return [...this.sublevels.values()].filter((s) => s.replicate && s.merge) as (SublevelDecl & { merge: (value: unknown) => boolean })[];
  }

  /** The running owner of a sublevel takes merged records; it lets go when it stops. */
  onMerge(sublevel: string, handler: MergeHandler): () => void {
    if (!this.sublevels.get(sublevel)?.merge) throw new Error(`data: sublevel ${sublevel} does not take merged records`);
    this.mergers.set(sublevel, handler);
    return () => {
      if (this.mergers.get(sublevel) === handler) this.mergers.delete(sublevel);
    };
  }

  async mergeRecord(sublevel: string, key: string, value: unknown, body: Buffer): Promise<boolean> {
    const s = this.sublevels.get(sublevel);
    if (!s?.merge || !s.replicate) throw new Error(`data: sublevel ${String(sublevel)} takes no merged records`);
    checkKey(key);
    // The owner names files by the record's own id: it must be the key that was checked.
    const id = (value as { id?: unknown } | null)?.id;
    if (id !== undefined && id !== key) throw new Error(`data: merged record ${key} carries another id`);
    const h = this.mergers.get(sublevel);
    if (!h) throw new Error(`data: the owner of ${sublevel} (${s.owner}) is not running`);
    return h(key, value, body);
  }

  folderOf(rel: string): (FolderDecl & { owner: string }) | null {
    return this.folders.get(rel.split('/')[0]!) ?? null;
  }

  /**
   * A path under a replicated folder, made safe to join to the data dir: no "..", no
   * absolute path, nothing outside the declared folders. Paths come from the peer.
   */
  safeRel(rel: unknown, replicatedOnly = true): string {
    if (typeof rel !== 'string' || rel.includes('\0') || rel.startsWith('/') || rel.split('/').some((p) => p === '..' || p === '.' || p === '')) {
      throw new Error(`data: refusing path ${String(rel)}`);
    }
    const f = this.folderOf(rel);
    if (!f || (replicatedOnly && !f.replicate) || !rel.includes('/')) throw new Error(`data: ${rel} is outside the ${replicatedOnly ? 'replicated' : 'declared'} folders`);
    return rel.split('/').join(sep);
  }

  identity(rel: string): string {
    return this.folderOf(rel)?.identity?.(rel) ?? rel;
  }

  /** Where the file known as `rel` is now, relative to the data dir (null: gone). */
  async locate(dataDir: string, rel: string): Promise<string | null> {
    this.safeRel(rel);
    const f = this.folderOf(rel);
    if (f?.locate) return f.locate(dataDir, rel);
    return (await exists(join(dataDir, this.safeRel(rel)))) ? rel : null;
  }

  /** Files of the stepping-down box that the active takes in after a partition. */
  isMergeableFile(rel: string): boolean {
    return this.folderOf(rel)?.merge === true;
  }

  /** Every file under the replicated folders, relative to the data dir (work in progress skipped). */
  inventory(dataDir: string): Promise<string[]> {
    return this.filesUnder(dataDir, [...this.folders.values()].filter((f) => f.replicate));
  }

  /** Every file under the given folders, relative to the data dir (their skipped sub-folders and dot files left out). */
  async filesUnder(dataDir: string, folders: FolderDecl[]): Promise<string[]> {
    const out: string[] = [];
    const walk = async (rel: string, skip: Set<string>): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(dataDir, rel), { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        const r = `${rel}/${e.name}`;
        if (e.isDirectory()) {
          if (!skip.has(e.name)) await walk(r, skip);
        } else if (e.isFile() && !e.name.startsWith('.')) out.push(r);
      }
    };
    for (const f of folders) await walk(f.path, new Set(f.skipDirs ?? []));
    return out;
  }

  /** The config-dir declaration a relative path falls under, or null. */
  configFile(rel: string): (ConfigFileDecl & { owner: string }) | null {
    return this.configFiles.find((c) => c.pattern.test(rel)) ?? null;
  }

  /** A config file the owner applies itself (the config document goes through its store). */
  onConfigFile(rel: string, apply: ConfigFileApplier): void {
    this.appliers.set(rel, apply);
  }

  configFileApplier(rel: string): ConfigFileApplier | undefined {
    return this.appliers.get(rel);
  }

  /** Told after a config-dir file the HA peer sent was written with new content (the admin password, the certificate). */
  watchConfigFile(rel: string, fn: () => void): void {
    this.watchers.set(rel, [...(this.watchers.get(rel) ?? []), fn]);
  }

  configFileWatchers(rel: string): readonly (() => void)[] {
    return this.watchers.get(rel) ?? [];
  }
}

/** What a batch of record changes means for the files the records stand for. */
export interface FileFollow {
  /** A record put whose file is missing takes it from another record's place (hard link): to, then candidates. */
  link: { to: string; from: string[] }[];
  /** Files no record of the batch names any longer after its last change. */
  unlink: string[];
}

/**
 * The files a replica must link or drop when it applies a batch of record changes: the
 * active moved a message between stores by hard link (spool to quarantine and back) and
 * let its file go when its last record did. A batch can hold several writes of one record;
 * each record's last change decides. Keys that name files, and ids inside their records,
 * are checked first.
 */
export function filesToFollow(data: DataRegistry, ops: readonly { type: 'put' | 'del'; sublevel: string; key: string; value?: unknown }[]): FileFollow {
  const fileOf = (o: (typeof ops)[number]) => data.fileOf(o.sublevel, o.key);
  for (const o of ops) {
    if (!fileOf(o) || o.type !== 'put') continue;
    const id = (o.value as { id?: unknown } | null)?.id;
    if (id !== undefined && id !== o.key) throw new Error(`data: record ${o.key} of ${o.sublevel} carries another id`);
  }
  const link: FileFollow['link'] = [];
  for (const o of ops) {
    const to = o.type === 'put' ? fileOf(o) : null;
    if (to && !link.some((l) => l.to === to)) link.push({ to, from: data.filesOfKey(o.key).filter((f) => f !== to) });
  }
  const last = new Map(ops.map((o) => [`${o.sublevel}\n${o.key}`, o]));
  const kept = new Set([...last.values()].filter((o) => o.type === 'put').map(fileOf).filter((f): f is string => f !== null));
  const unlink = [...new Set(ops.filter((o) => o.type === 'del').map(fileOf).filter((f): f is string => f !== null && !kept.has(f)))];
  return { link, unlink };
}

/** Record keys that name files: only the id alphabet, never a path. */
export function checkKey(key: unknown): void {
  if (typeof key !== 'string' || !/^[0-9A-Za-z._-]{1,128}$/.test(key) || key.startsWith('.')) throw new Error(`data: refusing record key ${String(key)}`);
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
