/**
 * The SMB 3 adapter of the BackupTarget port, through Samba's smbclient (see smbclient.ts for
 * why and for how one command's failure is told apart). Files move in batches: one smbclient
 * process runs up to a thousand commands, and a large batch is shared by a few processes at once,
 * so a restore is not one login per file.
 *
 * Writing safely: each file is uploaded as "<path>.part-<random>", and only once every upload of
 * the batch has been judged does a second process rename the complete ones to their paths
 * (`rename -f`: SMB's rename with replace-if-exists, so an existing file of that name is swapped
 * atomically; the engine's names are content-addressed, so it had the same content anyway) and
 * delete the parts that failed. The rename never runs in the process that wrote the part, since
 * smbclient would run it after a failed write too and leave half a file under the final name.
 * A part left by a cut connection (when even the clean-up could not reach the server) keeps its
 * ".part-" name, shows in list(), and is never taken for the file.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from '../../log/logger.js';
import { checkRemotePath, TargetError, type BackupTarget, type RemoteEntry, type TargetSpec } from '../target.js';
import { parseSmbUrl } from './smb-url.js';
import {
  errorFor,
  NOT_FOUND,
  parseListing,
  runSmbclient,
  scriptLocal,
  smbclientInvocation,
  statusWord,
  unfinishedError,
  type RunResult,
  type Step,
} from './smbclient.js';

export { parseSmbUrl } from './smb-url.js';

export interface SmbTargetOptions {
  /** An smbclient with no output and no I/O for this long is killed and the batch fails 'unreachable'. Default 120 s. */
  timeoutMs?: number;
  /** Files per smbclient process (each process is one login: fewer is less CPU). Default 1000. */
  filesPerProcess?: number;
  /** smbclient processes at once for a large batch. Default 3. */
  parallel?: number;
  /** The smbclient binary. Default 'smbclient' from PATH. */
  command?: string;
  /** Tests: each smbclient started, with its argv. */
  onSpawn?: (pid: number, args: readonly string[]) => void;
}

export function smbTarget(spec: TargetSpec, log: Logger, options: SmbTargetOptions = {}): BackupTarget {
  const url = parseSmbUrl(spec.url);
  const inv = smbclientInvocation(url, spec.user, spec.password, options.command);
  const timeoutMs = options.timeoutMs ?? 120_000;
  const perProcess = Math.max(1, options.filesPerProcess ?? 1000);
  const parallel = Math.max(1, options.parallel ?? 3);
  const running = new Set<ChildProcess>();
  /** Folders known to exist on the share (share-relative), so each is made once; forgotten after any failure. */
  const knownDirs = new Set<string>();
  let closed = false;
  const slog = log.child({ target: spec.name });

  const shareRel = (p: string): string => (url.folder === '' ? p : `${url.folder}/${p}`);
  const remote = (p: string): string => `"${shareRel(p)}"`;

  const run = (steps: Step[]): Promise<RunResult> => {
    if (closed) throw new TargetError('io', `smb: target ${spec.name} is closed`);
    return runSmbclient(inv, steps, { timeoutMs, log: slog, running, onSpawn: options.onSpawn });
  };

  /** Runs chunks of a batch on up to `parallel` processes; after a failure no new chunk starts. The first failure (in item order) is thrown. */
  async function batches<T>(items: readonly T[], work: (chunk: readonly T[]) => Promise<void>): Promise<void> {
    const size = Math.min(perProcess, Math.max(1, Math.ceil(items.length / parallel)));
    const chunks: T[][] = [];
    for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
    const errors = new Map<number, unknown>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < chunks.length && errors.size === 0) {
        const i = next++;
        try {
          await work(chunks[i]!);
        } catch (err) {
          errors.set(i, err);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, chunks.length) }, worker));
    if (errors.size > 0) {
      knownDirs.clear();
      const first = errors.get(Math.min(...errors.keys()));
      if (first instanceof TargetError) slog.warn({ evt: 'backup.smb.failed', kind: first.kind, err: first.message });
      throw first;
    }
  }

  /** Folders (share-relative) to make before these files can be written, parents first. */
  function foldersFor(paths: readonly string[]): string[] {
    const need = new Set<string>();
    for (const p of paths) {
      const parts = shareRel(p).split('/').slice(0, -1);
      for (let i = 1; i <= parts.length; i++) {
        const d = parts.slice(0, i).join('/');
        if (!knownDirs.has(d)) need.add(d);
      }
    }
    return [...need].sort((a, b) => a.split('/').length - b.split('/').length);
  }

  async function putChunk(chunk: readonly { local: string; path: string; part: string; quotedLocal: string }[]): Promise<void> {
    const dirs = foldersFor(chunk.map((c) => c.path));
    const steps: Step[] = [...dirs.map((d) => ({ lines: [`mkdir "${d}"`] })), ...chunk.map((c) => ({ lines: [`put ${c.quotedLocal} ${remote(c.part)}`] }))];
    const r = await run(steps);
    let failure: TargetError | null = null;
    dirs.forEach((d, i) => {
      const s = r.steps[i]!;
      if (s.done && (s.out.length === 0 || statusWord(s.out) === 'NT_STATUS_OBJECT_NAME_COLLISION')) knownDirs.add(d);
      else failure ??= s.done ? errorFor(`mkdir ${d}`, s.out, false) : unfinishedError(`mkdir ${d}`, r, s.out, timeoutMs);
    });
    const uploaded = chunk.map((c, i) => {
      const s = r.steps[dirs.length + i]!;
      if (s.done && s.out.length > 0 && s.out.every((l) => l.startsWith('putting file '))) return true;
      failure ??= s.done ? errorFor(`put ${c.path}`, s.out, false) : unfinishedError(`put ${c.path}`, r, s.out, timeoutMs);
      return false;
    });
    // Second process: complete parts become their files; the others are deleted (best effort;
    // skipped when the first never got as far as running a command, e.g. its login was refused).
    if (!r.steps.some((s) => s.done)) throw failure ?? new TargetError('io', 'smb: put: smbclient ran no command');
    const finish: Step[] = chunk.map((c, i) => ({ lines: [uploaded[i] ? `rename ${remote(c.part)} ${remote(c.path)} -f` : `del ${remote(c.part)}`] }));
    const f = await run(finish);
    chunk.forEach((c, i) => {
      if (!uploaded[i]) return;
      const s = f.steps[i]!;
      if (!(s.done && s.out.length === 0)) failure ??= s.done ? errorFor(`rename to ${c.path}`, s.out, false) : unfinishedError(`rename to ${c.path}`, f, s.out, timeoutMs);
    });
    if (failure) throw failure;
  }

  async function getChunk(chunk: readonly { path: string; local: string; quotedLocal: string }[]): Promise<void> {
    const r = await run(chunk.map((c) => ({ lines: [`get ${remote(c.path)} ${c.quotedLocal}`] })));
    for (const [i, c] of chunk.entries()) {
      const s = r.steps[i]!;
      const size = s.done && s.out.length === 1 ? /^getting file .* of size (\d+) as /.exec(s.out[0]!)?.[1] : undefined;
      if (size === undefined) throw s.done ? errorFor(`get ${c.path}`, s.out, true) : unfinishedError(`get ${c.path}`, r, s.out, timeoutMs);
      const got = (await stat(c.local).catch(() => null))?.size;
      if (got !== Number(size)) throw new TargetError('io', `smb: get ${c.path}: ${got ?? 'no'} bytes arrived of ${size}`);
    }
  }

  const target: BackupTarget = {
    async test() {
      const dir = await mkdtemp(join(tmpdir(), 'mlsd-smb-probe-'));
      try {
        const probe = randomBytes(64 * 1024);
        const path = `.mlsd-probe-${randomBytes(6).toString('hex')}`;
        await writeFile(join(dir, 'probe'), probe);
        await target.put([{ local: join(dir, 'probe'), path }]);
        try {
          await target.get([{ path, local: join(dir, 'back') }]);
          if (!probe.equals(await readFile(join(dir, 'back')))) throw new TargetError('io', `smb: the probe file read back from ${spec.url} differs from what was written`);
        } finally {
          await target.remove([path]);
        }
        slog.info({ evt: 'backup.smb.tested', url: spec.url });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },

    async list(dir) {
      const d = dir === '' ? '' : checkRemotePath(dir);
      const shareDir = d === '' ? url.folder : shareRel(d);
      const r = await run([{ lines: ['recurse ON', `ls "${shareDir === '' ? '' : `${shareDir}/`}*"`] }]);
      const s = r.steps[0]!;
      if (!s.done) throw unfinishedError(`list ${dir || '/'}`, r, s.out, timeoutMs);
      const status = statusWord(s.out);
      // Missing folder: the status is all there is. The same status after some of the listing
      // (a sub-folder gone meanwhile) is a failure, not an empty target.
      if (NOT_FOUND.test(status) && s.out.length === 1) return [];
      if (status !== '') throw errorFor(`list ${dir || '/'}`, s.out, false);
      const entries: RemoteEntry[] = parseListing(s.out, shareDir, url.folder);
      return entries;
    },

    async put(items) {
      // Everything is checked before anything runs: one bad name refuses the whole batch.
      const checked = items.map((it) => ({
        path: checkRemotePath(it.path),
        local: it.local,
        quotedLocal: scriptLocal(resolve(it.local)),
        part: `${it.path}.part-${randomBytes(6).toString('hex')}`,
      }));
      await batches(checked, putChunk);
    },

    async get(items) {
      const checked = items.map((it) => ({ path: checkRemotePath(it.path), local: resolve(it.local), quotedLocal: scriptLocal(resolve(it.local)) }));
      await batches(checked, getChunk);
    },

    async remove(paths) {
      const checked = paths.map(checkRemotePath);
      await batches(checked, async (chunk) => {
        const r = await run(chunk.map((p) => ({ lines: [`del ${remote(p)}`] })));
        chunk.forEach((p, i) => {
          const s = r.steps[i]!;
          if (!s.done) throw unfinishedError(`del ${p}`, r, s.out, timeoutMs);
          if (s.out.length > 0 && !NOT_FOUND.test(statusWord(s.out))) throw errorFor(`del ${p}`, s.out, false);
        });
      });
    },

    async close() {
      closed = true;
      await Promise.all(
        [...running].map(
          (c) =>
            new Promise<void>((res) => {
              if (c.exitCode !== null || c.signalCode !== null) return res();
              c.once('close', () => res());
              c.kill('SIGKILL');
            }),
        ),
      );
    },
  };
  return target;
}
