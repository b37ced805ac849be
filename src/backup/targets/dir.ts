import { copyFile, mkdir, open, readdir, rename, rm, stat, unlink, writeFile, readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { checkRemotePath, TargetError, type BackupTarget, type RemoteEntry } from '../target.js';

/** Maps a file-system failure to what an administrator is told. */
function fsError(err: unknown, what: string): TargetError {
  const e = err as NodeJS.ErrnoException;
  if (e instanceof TargetError) return e;
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return new TargetError('full', `${what}: the target is full (${e.code})`);
  if (e.code === 'ENOENT') return new TargetError('notFound', `${what}: not found`);
  if (e.code === 'EACCES' || e.code === 'EPERM') return new TargetError('auth', `${what}: permission denied`);
  return new TargetError('io', `${what}: ${e.message}`);
}

/**
 * A local folder as a target: a USB disk mounted on the box, and the tests' target. A file
 * is copied under a temporary name, synced, and renamed, as on the remote targets.
 */
export function dirTarget(root: string): BackupTarget {
  if (!isAbsolute(root)) throw new Error(`backup: a dir target's url is an absolute folder, not ${root}`);
  const at = (p: string) => join(root, checkRemotePath(p));
  const reachable = async () => {
    const s = await stat(root).catch(() => null);
    if (!s?.isDirectory()) throw new TargetError('unreachable', `backup folder ${root} is not there (a disk not mounted?)`);
  };
  return {
    async test() {
      await reachable();
      const probe = `.probe-${randomBytes(4).toString('hex')}`;
      const data = randomBytes(64);
      try {
        await writeFile(join(root, probe), data);
        if (!(await readFile(join(root, probe))).equals(data)) throw new TargetError('io', `backup folder ${root}: a probe read back differs`);
      } catch (err) {
        throw fsError(err, `backup folder ${root}`);
      } finally {
        await unlink(join(root, probe)).catch(() => undefined);
      }
    },
    async list(dir) {
      await reachable();
      const out: RemoteEntry[] = [];
      const walk = async (rel: string): Promise<void> => {
        const entries = await readdir(join(root, rel), { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return [];
          throw fsError(err, `listing ${rel}`);
        });
        for (const e of entries) {
          const r = `${rel}/${e.name}`;
          if (e.isDirectory()) await walk(r);
          else if (e.isFile()) out.push({ path: r, size: (await stat(join(root, r))).size });
        }
      };
      await walk(checkRemotePath(dir));
      return out;
    },
    async put(items) {
      await reachable();
      for (const { local, path } of items) {
        const dst = at(path);
        const tmp = `${dst}.part-${randomBytes(4).toString('hex')}`;
        try {
          await mkdir(dirname(dst), { recursive: true });
          await copyFile(local, tmp);
          const fh = await open(tmp, 'r+');
          await fh.sync().finally(() => fh.close());
          await rename(tmp, dst);
        } catch (err) {
          await unlink(tmp).catch(() => undefined);
          throw fsError(err, `writing ${path}`);
        }
      }
    },
    async get(items) {
      await reachable();
      for (const { path, local } of items) await copyFile(at(path), local).catch((err) => Promise.reject(fsError(err, `reading ${path}`)));
    },
    async remove(paths) {
      for (const p of paths) await rm(at(p), { force: true }).catch((err) => Promise.reject(fsError(err, `removing ${p}`)));
    },
    async close() {},
  };
}
