import { join } from 'node:path';
import { mkdir, rm, statfs } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { BoxContext, Capability } from '../core/capability.js';
import type { Timer } from '../core/clock.js';
import type { DataDecl } from '../store/data.js';
import { sublevel } from '../store/db.js';
import type { Config } from '../config/schema.js';
import { BACKUP_KEY_CONFIG_FILE, loadBackupKey, type BackupKeys } from './keys.js';
import { HASH_SUBLEVEL, runBackup, type BackupDeps, type BackupResult } from './engine.js';
import { verifyBackup, type VerifyResult } from './verify.js';
import { listGenerations, loadManifest, objectOf, type Manifest, type ManifestFile } from './manifest.js';
import { putBackFile, readRestoreProgress, RestoreRunner, RESTORE_STATE_SUBLEVEL, type RestoreProgress } from './restore.js';
import { readMemory, writeMemory, writeMarker, BOX_ID_FILE, MEMORY_FILE, boxId as readBoxId } from './marker.js';
import { openTarget } from './targets/index.js';
import { BACKUP_SSH_KEY_CONFIG_FILE, readSshKey } from './ssh-key.js';
import { TargetError, type BackupTarget, type TargetSpec } from './target.js';
import { dayNumber, nextDailyRun } from './schedule.js';
import { backupStatus } from './status.js';

export const WORK_FOLDER = 'backup-work';

/** Two batches of fetched objects (256 MiB each) must fit, with room to spare. */
const MEMORY_FOLDER_MIN_FREE = 1024 * 1024 * 1024;

/**
 * A folder in memory (/dev/shm, tmpfs) for a restore's fetched objects when it has room:
 * each restored byte is then written to the data disk once instead of twice. Named per box
 * (by its config dir), emptied first; null when there is none or it is too small.
 */
async function memoryFolder(configDir: string): Promise<string | null> {
  try {
    const fs = await statfs('/dev/shm');
    if (fs.bavail * fs.bsize < MEMORY_FOLDER_MIN_FREE) return null;
    const dir = join('/dev/shm', `mlsd-restore-${createHash('sha256').update(configDir).digest('hex').slice(0, 12)}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  } catch {
    return null;
  }
}

/** What backup keeps of its own: this box's state, never replicated nor backed up. */
export const BACKUP_DATA: DataDecl = {
  owner: 'backup',
  sublevels: [
    { name: HASH_SUBLEVEL, describe: "hashes of files already backed up (a file unchanged since is not read again)", replicate: false },
    { name: RESTORE_STATE_SUBLEVEL, describe: 'the last backup, verify and restore of this box (a restore resumes from here)', replicate: false },
  ],
  folders: [{ path: WORK_FOLDER, describe: 'objects sealed for sending, and fetched ones being opened', replicate: false }],
  configFiles: [
    BACKUP_KEY_CONFIG_FILE,
    BACKUP_SSH_KEY_CONFIG_FILE,
    { pattern: new RegExp(`^${BOX_ID_FILE}$`), describe: "this box's id (in its data disk's marker)", replicate: false, mode: 0o600 },
    { pattern: new RegExp(`^${MEMORY_FILE.replace('.', '\\.')}$`), describe: 'the data disk last seen (its marker) and a restore owed to it', replicate: false, mode: 0o600 },
  ],
};

export interface LastBackup {
  at: string;
  target: string;
  generation: string;
  files: number;
  bytes: number;
  sentBytes: number;
  durationMs: number;
}

export interface BackupFailure {
  at: string;
  target: string;
  kind: string;
  message: string;
}

export interface BrowsedMessage {
  id: string;
  folder: string;
  size: number;
  date: string | null;
  from: string;
  subject: string;
}

export interface BackupCapability extends Capability {
  run(targetName?: string): Promise<BackupResult[]>;
  verify(full: boolean, targetName?: string): Promise<(VerifyResult & { target: string })[]>;
  testTarget(name: string): Promise<void>;
  /** The complete generations on each target (or one), oldest first. */
  generations(targetName?: string): Promise<{ target: string; generations: string[] }[]>;
  browse(user: string, o: { generation?: string; target?: string }): Promise<{ target: string; generation: string; messages: BrowsedMessage[] }>;
  fetch(user: string, message: string, o: { generation?: string; target?: string }): Promise<{ path: string; already: boolean }>;
  startRestore(from: string, generation?: string): Promise<void>;
  restoreProgress(): RestoreProgress | null;
  last(): Promise<{ last: LastBackup | null; failure: BackupFailure | null; verify: { at: string; target: string; checked: number; bad: number } | null }>;
  nextRun(): number | null;
  running(): string | null;
}

const USER = /^[^/\s@]+@[^/\s@]+$/;
const MESSAGE = /^[A-Za-z0-9._,=-]{1,200}$/;

const failureText = (name: string, err: TargetError) =>
  ({
    unreachable: `the backup target ${name} cannot be reached`,
    auth: `the backup target ${name} refused the login (password changed?)`,
    full: `the backup target ${name} is full`,
    hostKey: `the backup target ${name} presented another host key than the one pinned (another server?)`,
    notFound: `the backup target ${name} lacks a file it should have`,
    io: `the backup target ${name} failed`,
  })[err.kind] + `: ${err.message}`;

/**
 * Backups to the configured targets (nightly, and `mlsd backup run`), their verification,
 * browsing and fetching single messages, and the restore of a swapped data disk. Runs on
 * the active box; one operation at a time.
 */
export async function startBackup(box: BoxContext, o: { archiveHead: () => { seq: number; mac: string } | null }): Promise<BackupCapability> {
  const { config, clock, emit, db, durability } = box;
  const log = box.log.child({ mod: 'backup' });
  const settings = () => config.current.backup;
  const workDir = join(box.dataDir, WORK_FOLDER);
  const id = await readBoxId(box.configDir);
  await rm(workDir, { recursive: true, force: true });
  const state = sublevel(db, RESTORE_STATE_SUBLEVEL);
  const keys = async (): Promise<BackupKeys> => (await loadBackupKey(box.configDir)).keys;
  const spec = (name: string): TargetSpec => {
    const t = settings().targets.find((x) => x.name === name);
    if (!t) throw new Error(`backup: no target named ${name} (mlsd backup target list)`);
    return t;
  };
  const pinHostKey = (name: string, fingerprint: string) => {
    const targets = settings().targets.map((t) => (t.name === name && !t.hostKey ? { ...t, hostKey: fingerprint } : t));
    void config.set('backup.targets', targets).then(
      () => log.info({ evt: 'backup.hostKey.pinned', target: name, fingerprint }, 'pinned the host key of the backup target'),
      (err: Error) => log.error({ evt: 'backup.hostKey.fail', target: name, err: err.message }, 'could not pin the host key'),
    );
  };
  const targetDeps = async () => ({ log, pinHostKey, sshKey: await readSshKey(box.configDir), localAddress: config.current.routing.sourceAddress });
  const withTarget = async <T>(name: string, fn: (t: BackupTarget) => Promise<T>): Promise<T> => {
    const t = await openTarget(spec(name), await targetDeps());
    try {
      return await fn(t);
    } finally {
      await t.close().catch(() => undefined);
    }
  };

  // One operation at a time: a backup, a verify, a fetch or a restore.
  let busy: string | null = null;
  const exclusive = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    if (busy) throw new Error(`backup: ${busy} is running; try again when it is done`);
    busy = what;
    try {
      return await fn();
    } finally {
      busy = null;
    }
  };

  const deps = async (): Promise<BackupDeps> => ({
    dataDir: box.dataDir,
    configDir: box.configDir,
    workDir: join(workDir, 'backup'),
    data: durability.data,
    db,
    write: (ops) => durability.write(ops),
    keys: await keys(),
    box: { id, hostname: () => config.current.hostname },
    archiveHead: o.archiveHead,
    clock,
    log,
  });

  const failed = async (name: string, err: unknown, what: string) => {
    const e = err instanceof TargetError ? err : new TargetError('io', (err as Error).message);
    const failure: BackupFailure = { at: new Date(clock.now()).toISOString(), target: name, kind: e.kind, message: e.message };
    await durability.write([{ type: 'put', sublevel: RESTORE_STATE_SUBLEVEL, key: 'failure', value: failure }]).catch(() => undefined);
    log.error({ evt: `${what}.fail`, target: name, kind: e.kind, err: e.message }, `${what} failed`);
    emit({ kind: `${what}.failed`, severity: 'critical', text: `${what === 'backup' ? 'backup' : 'backup verify'} failed: ${failureText(name, e)}; the last complete backup stays as it was`, data: { target: name, kind: e.kind } });
  };

  let restore: RestoreRunner | null = null;
  /** A restore asked for (or owed) whose target does not answer yet: shown by `restore status` as waiting for it. */
  let waiting: RestoreProgress | null = null;
  let restoreDone: Promise<void> | null = null;
  const restoring = () => restoreOwed || (restore !== null && restore.status().state !== 'done');

  const runOne = async (name: string): Promise<BackupResult> => {
    const d = await deps();
    try {
      const r = await withTarget(name, (t) => runBackup(d, t, settings().keep));
      const last: LastBackup = { at: new Date(clock.now()).toISOString(), target: name, generation: r.generation, files: r.files, bytes: r.bytes, sentBytes: r.sentBytes, durationMs: r.durationMs };
      await durability.write([
        { type: 'put', sublevel: RESTORE_STATE_SUBLEVEL, key: 'last', value: last },
        { type: 'del', sublevel: RESTORE_STATE_SUBLEVEL, key: 'failure' },
      ]);
      emit({ kind: 'backup.done', severity: 'info', text: `backup to ${name} complete: generation ${r.generation}, ${r.files} files, ${(r.sentBytes / 1e6).toFixed(1)} MB sent in ${(r.durationMs / 1000).toFixed(1)} s`, data: { target: name, generation: r.generation, files: r.files, sentBytes: r.sentBytes } });
      return r;
    } catch (err) {
      await failed(name, err, 'backup');
      throw err;
    }
  };

  const run = (targetName?: string) =>
    exclusive('a backup', async () => {
      if (restoring()) throw new Error('backup: a restore is running or owed (mlsd restore status); backups wait until it is done');
      const names = targetName ? [spec(targetName).name] : settings().targets.map((t) => t.name);
      if (!names.length) throw new Error('backup: no target is set up (mlsd backup target add)');
      const out: BackupResult[] = [];
      let firstErr: unknown = null;
      for (const n of names) await runOne(n).then((r) => out.push(r), (err: unknown) => (firstErr ??= err));
      if (firstErr) throw firstErr;
      return out;
    });

  const verifyOne = async (name: string, full: boolean) => {
    const d = await deps();
    try {
      const r = await withTarget(name, (t) => verifyBackup({ keys: d.keys, workDir: join(workDir, 'verify'), log }, t, { full, day: dayNumber(clock.now()), days: settings().verifyDays }));
      await durability.write([{ type: 'put', sublevel: RESTORE_STATE_SUBLEVEL, key: 'verify', value: { at: new Date(clock.now()).toISOString(), target: name, checked: r.checked, bad: r.bad.length } }]);
      if (r.bad.length) {
        emit({
          kind: 'backup.verifyFailed',
          severity: 'critical',
          text: `backup verify on ${name}: ${r.bad.length} of ${r.checked} files read back do not match (${r.bad.slice(0, 3).map((b) => b.path).join(', ')}); they are sent again at the next backup`,
          data: { target: name, bad: r.bad.length, checked: r.checked },
        });
      }
      return { ...r, target: name };
    } catch (err) {
      await failed(name, err, 'backup.verify');
      throw err;
    }
  };
  const verify = (full: boolean, targetName?: string) =>
    exclusive('a verify', async () => {
      if (restoring()) throw new Error('backup verify: a restore is running or owed; verification waits until it is done');
      const names = targetName ? [spec(targetName).name] : settings().targets.map((t) => t.name);
      const out = [];
      for (const n of names) out.push(await verifyOne(n, full));
      return out;
    });

  // The nightly run: every target, then tonight's share of the verification.
  let timer: Timer | null = null;
  let next: number | null = null;
  const schedule = () => {
    if (timer) clock.clearTimeout(timer);
    timer = null;
    next = null;
    if (!settings().schedule.enabled) return;
    next = nextDailyRun(clock.now(), settings().schedule.at);
    timer = clock.setTimeout(() => void nightly(), Math.max(1000, next - clock.now()));
    timer.unref?.();
  };
  const nightly = async () => {
    try {
      if (!settings().targets.length) return;
      await run().catch(() => undefined);
      await verify(false).catch(() => undefined);
    } finally {
      schedule();
    }
  };
  schedule();

  // --- restore ---
  const pickTarget = async (named: string | null): Promise<{ name: string; generation: string } | null> => {
    const names = named ? [named] : settings().targets.map((t) => t.name);
    let lastErr: unknown = null;
    for (const n of names) {
      try {
        const gens = await withTarget(n, async (t) => listGenerations(t, (await keys()).setId));
        if (gens.length) return { name: n, generation: gens[gens.length - 1]! };
      } catch (err) {
        lastErr = err;
      }
    }
    if (lastErr) throw lastErr;
    return null;
  };

  const finishRestore = async (ok: boolean, p: RestoreProgress | null) => {
    const mem = await readMemory(box.configDir);
    if (mem?.restorePending) await writeMemory(box.configDir, { ...mem, restorePending: null });
    restoreOwed = false;
    box.restore.done();
    if (!ok || !p) return;
    emit({ kind: 'restore.done', severity: p.lost.count ? 'critical' : 'info', text: `restore from ${p.target} (generation ${p.generation}) complete: ${p.filesDone} files, ${(p.bytesDone / 1e6).toFixed(1)} MB, ${p.recordsDone} records; ${p.filesKept} were already there${p.lost.count ? `; ${p.lost.count} COULD NOT BE RESTORED (damaged or missing on the target): ${p.lost.paths.join(', ')}` : ''}`, data: { target: p.target, generation: p.generation, files: p.filesDone, bytes: p.bytesDone, lost: p.lost.count } });
  };

  /**
   * The newest generation that opens, on the named target or the first that has one: a
   * manifest that does not open (planted on the share, damaged) is passed over, and said.
   * Null: no target holds a backup of this box. A target that cannot be reached throws.
   */
  const newestAuthentic = async (names: string[], generation?: string): Promise<{ name: string; t: BackupTarget; manifest: Manifest } | null> => {
    const k = await keys();
    let lastErr: unknown = null;
    for (const n of names) {
      const t = await openTarget(spec(n), await targetDeps());
      try {
        const gens = await listGenerations(t, k.setId);
        if (generation && !gens.includes(generation)) throw new Error(`restore: no generation ${generation.slice(0, 40)} on ${n}`);
        for (const g of generation ? [generation] : [...gens].reverse()) {
          try {
            return { name: n, t, manifest: await loadManifest(t, k, k.setId, g) };
          } catch (err) {
            if (err instanceof TargetError) throw err;
            emit({ kind: 'backup.manifestBad', severity: 'warning', text: `backup generation ${g} on ${n} does not open (${(err as Error).message}); an older one is used`, data: { target: n, generation: g } });
          }
        }
      } catch (err) {
        lastErr = err;
      }
      await t.close().catch(() => undefined);
    }
    if (lastErr) throw lastErr;
    return null;
  };

  let starting = false;
  const beginRestore = async (named: string | null, reason: string, generation?: string): Promise<void> => {
    if (starting) return;
    starting = true;
    try {
      await beginRestoreOnce(named, reason, generation);
    } finally {
      starting = false;
    }
  };
  const beginRestoreOnce = async (named: string | null, reason: string, generation?: string): Promise<void> => {
    const prior = await readRestoreProgress(db);
    const resuming = prior !== null && prior.state !== 'done' && (!named || prior.target === named) && (!generation || prior.generation === generation);
    // The target may be down right after a swap (the NAS rebooting too): asked again until it answers.
    let wait = settings().restore.retrySeconds * 1000;
    let source: { name: string; t: BackupTarget; manifest: Manifest } | null = null;
    let said = '';
    for (;;) {
      if (stopped) return void (waiting = null);
      try {
        source = resuming ? await newestAuthentic([prior.target], prior.generation) : await newestAuthentic(named ? [named] : settings().targets.map((t) => t.name), generation);
        break;
      } catch (err) {
        if (!(err instanceof TargetError)) {
          waiting = null;
          emit({ kind: 'restore.failed', severity: 'critical', text: `restore cannot start: ${(err as Error).message}` });
          return;
        }
        if (err.message !== said) emit({ kind: 'restore.retry', severity: 'warning', text: `restore cannot reach its backup target yet (${err.kind}: ${err.message}); retrying`, data: { kind: err.kind } });
        waiting = waitingProgress(resuming ? prior.target : (named ?? settings().targets[0]?.name ?? ''), reason, err.message, waiting?.startedAt ?? new Date(clock.now()).toISOString());
        said = err.message;
        await new Promise<void>((res) => clock.setTimeout(res, wait).unref?.());
        wait = Math.min(wait * 2, 300_000);
      }
    }
    waiting = null;
    if (!source) {
      emit({ kind: 'restore.nothing', severity: 'critical', text: 'a restore is owed to the data disk, but no backup target holds a backup of this box: nothing was restored' });
      await finishRestore(false, null);
      return;
    }
    const { t, manifest } = source;
    const now = clock.now();
    const progress: RestoreProgress =
      resuming && prior.generation === manifest.generation
        ? prior
        : {
            ...nothingDone(source.name, reason, new Date(now).toISOString()),
            state: 'running',
            generation: manifest.generation,
            // Fixed for this restore: a resume after a reboot makes the very same plan.
            recentSinceMs: now - settings().restore.recentDays * 86_400_000,
            // The archive comes back only into an archive that waits for it (never into a running chain).
            skipArchive: box.restore.waiting() === null,
          };
    const restoreDir = join(workDir, 'restore');
    await rm(restoreDir, { recursive: true, force: true });
    await mkdir(restoreDir, { recursive: true, mode: 0o700 });
    const k = await keys();
    const fetchDir = await memoryFolder(box.configDir);
    restore = new RestoreRunner({ dataDir: box.dataDir, workDir: restoreDir, ...(fetchDir ? { fetchDir } : {}), db, durability, dirs: box.dirs, keys: k, clock, log, emit, retryMs: settings().restore.retrySeconds * 1000 }, t, manifest, progress);
    emit({ kind: 'restore.started', severity: 'warning', text: `restore from ${source.name} (generation ${manifest.generation}) ${progress === prior ? 'resumes' : 'starts'}: newest mail first; mail is accepted meanwhile${progress.skipArchive ? '; the archive is running, so archived mail is not put back into it' : ''}`, data: { target: source.name, generation: manifest.generation, reason } });
    const runner = restore;
    restoreDone = runner
      .run()
      .then(async (ok) => {
        await t.close().catch(() => undefined);
        if (fetchDir) await rm(fetchDir, { recursive: true, force: true }).catch(() => undefined);
        if (ok) await finishRestore(true, runner.status());
      })
      .catch(async (err: Error) => {
        await t.close().catch(() => undefined);
        if (fetchDir) await rm(fetchDir, { recursive: true, force: true }).catch(() => undefined);
        log.error({ evt: 'restore.fail', err: err.message }, 'restore failed');
        emit({ kind: 'restore.failed', severity: 'critical', text: `restore stopped: ${err.message}; it resumes at the next start or with mlsd restore start --from ${source.name}` });
      });
  };

  let stopped = false;
  const mem = await readMemory(box.configDir);
  // Backups and verification wait while a restore is owed: a half-restored disk is no backup.
  let restoreOwed = mem?.restorePending != null;
  if (mem?.restorePending && settings().restore.auto) {
    if (config.current.ha.enabled) {
      // In a pair the peer's copy comes back over the HA link (a full resync), not from a backup.
      log.info({ evt: 'restore.ha', reason: mem.restorePending.reason }, 'the HA peer restores this data disk');
      await finishRestore(false, null);
    } else if (!settings().targets.length) {
      emit({ kind: 'restore.nothing', severity: 'critical', text: 'a blank data disk replaced a known one, but no backup target is set up: nothing can be restored' });
      await finishRestore(false, null);
    } else void beginRestore(mem.restorePending.target, mem.restorePending.reason);
  } else if (box.restore.waiting()) await finishRestore(false, null);

  const userPrefix = (user: string) => {
    if (!USER.test(user)) throw new Error(`backup: ${user.slice(0, 80)} is not a user address`);
    const at = user.lastIndexOf('@');
    return `mail/${user.slice(at + 1).toLowerCase()}/${user.slice(0, at).toLowerCase()}/Maildir/`;
  };
  const manifestFor = async (t: BackupTarget, generation?: string): Promise<Manifest> => {
    const k = await keys();
    const gens = await listGenerations(t, k.setId);
    const g = generation ?? gens[gens.length - 1];
    if (!g || !gens.includes(g)) throw new Error(generation ? `backup: no generation ${generation.slice(0, 40)} on the target` : 'backup: the target holds no complete backup yet');
    return loadManifest(t, k, k.setId, g);
  };
  const firstTarget = (name?: string) => {
    const n = name ?? settings().targets[0]?.name;
    if (!n) throw new Error('backup: no target is set up (mlsd backup target add)');
    return spec(n).name;
  };

  return {
    status: backupStatus(() => ({ last: (async () => (await state.get('last')) as LastBackup | undefined)(), failure: (async () => (await state.get('failure')) as BackupFailure | undefined)(), next, targets: settings().targets.length, busy, restore: waiting ?? restore?.status() ?? null, now: clock.now() })),
    run,
    verify,
    testTarget: (name) => withTarget(name, (t) => t.test()),
    async generations(targetName) {
      const names = targetName ? [spec(targetName).name] : settings().targets.map((t) => t.name);
      const setId = (await keys()).setId;
      const out = [];
      for (const n of names) out.push({ target: n, generations: await withTarget(n, (t) => listGenerations(t, setId)) });
      return out;
    },
    async browse(user, opts) {
      const prefix = userPrefix(user);
      const name = firstTarget(opts.target);
      return withTarget(name, async (t) => {
        const m = await manifestFor(t, opts.generation);
        const messages = m.files
          .filter((f) => f.p.startsWith(prefix))
          .map((f): BrowsedMessage => {
            const rest = f.p.slice(prefix.length).split('/');
            return { id: rest[rest.length - 1]!.split(':')[0]!, folder: rest.length > 2 ? rest[0]!.replace(/^\./, '') : 'INBOX', size: f.s, date: f.date ?? new Date(f.m).toISOString(), from: f.from ?? '', subject: f.sub ?? '' };
          })
          .sort((a, b) => ((b.date ?? '') < (a.date ?? '') ? -1 : 1));
        return { target: name, generation: m.generation, messages };
      });
    },
    fetch: (user, message, opts) =>
      exclusive('a fetch', async () => {
        const prefix = userPrefix(user);
        if (!MESSAGE.test(message)) throw new Error('backup fetch: MESSAGE is a message id from `mlsd backup browse`');
        const name = firstTarget(opts.target);
        return withTarget(name, async (t) => {
          const m = await manifestFor(t, opts.generation);
          const f: ManifestFile | undefined = m.files.find((x) => x.p.startsWith(prefix) && x.p.split('/').pop()!.split(':')[0] === message);
          if (!f) throw new Error(`backup fetch: no message ${message} of ${user} in generation ${m.generation}`);
          if ((await durability.data.locate(box.dataDir, f.p)) !== null) return { path: f.p, already: true };
          const k = await keys();
          const fetchDir = join(workDir, 'fetch');
          await mkdir(fetchDir, { recursive: true, mode: 0o700 });
          const local = join(fetchDir, `fetch-${objectOf(k, k.setId, f).name}`);
          try {
            await t.get([{ path: objectOf(k, k.setId, f).path, local }]);
            await putBackFile({ dataDir: box.dataDir, workDir: fetchDir, durability, dirs: box.dirs, keys: k }, local, f);
          } finally {
            await rm(local, { force: true });
          }
          log.info({ evt: 'backup.fetch', user, message, generation: m.generation }, 'a message put back from a backup');
          return { path: f.p, already: false };
        });
      }),
    async startRestore(from, generation) {
      spec(from);
      const st = restore?.status().state;
      if (starting || st === 'running' || st === 'retrying') throw new Error('restore: a restore is already running or waiting for its target (mlsd restore status)');
      if (busy) throw new Error(`restore: ${busy} is running; try again when it is done`);
      // A restore that stopped on a local fault is begun again from where it was.
      restore?.stop();
      await restoreDone?.catch(() => undefined);
      // Owed from now on, on the flash: a reboot resumes it.
      const memNow = await readMemory(box.configDir);
      const marker = memNow?.marker ?? { boxId: id, serial: '', generation: 1, createdAt: new Date(clock.now()).toISOString() };
      await writeMarker(box.dataDir, marker);
      await writeMemory(box.configDir, { marker, restorePending: { since: new Date(clock.now()).toISOString(), reason: 'operator', target: from } });
      restoreOwed = true;
      void beginRestore(from, 'operator', generation);
    },
    restoreProgress: () => waiting ?? restore?.status() ?? null,
    async last() {
      return {
        last: ((await state.get('last')) as LastBackup | undefined) ?? null,
        failure: ((await state.get('failure')) as BackupFailure | undefined) ?? null,
        verify: ((await state.get('verify')) as { at: string; target: string; checked: number; bad: number } | undefined) ?? null,
      };
    },
    nextRun: () => next,
    running: () => busy ?? (restore && restore.status().state !== 'done' ? 'a restore' : null),
    configChanged(_cfg: Config, key: string) {
      if (key === 'backup' || key.startsWith('backup.schedule')) schedule();
    },
    async stop() {
      stopped = true;
      if (timer) clock.clearTimeout(timer);
      restore?.stop();
      await restoreDone?.catch(() => undefined);
    },
  };
}

/** A restore's progress before anything is done: the start of a new one, or one that waits for its target. */
function nothingDone(target: string, reason: string, startedAt: string): RestoreProgress {
  return {
    state: 'retrying',
    target,
    generation: '',
    reason,
    startedAt,
    updatedAt: startedAt,
    finishedAt: null,
    cursor: 0,
    items: 0,
    filesDone: 0,
    filesTotal: 0,
    bytesDone: 0,
    bytesTotal: 0,
    filesKept: 0,
    recordsDone: 0,
    lost: { count: 0, paths: [] },
    recentSinceMs: 0,
    skipArchive: false,
    currentUser: null,
    lastError: null,
  };
}

/** What `restore status` shows while a restore waits for its target to answer: nothing done yet, the reason it waits. */
function waitingProgress(target: string, reason: string, error: string, startedAt: string): RestoreProgress {
  return { ...nothingDone(target, reason, startedAt), lastError: error };
}
