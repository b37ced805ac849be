import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import type { BackupKeys } from './keys.js';
import { layout, listGenerations, loadManifest, objectOf } from './manifest.js';
import { checkObject, SealError } from './seal.js';
import { TargetError, type BackupTarget } from './target.js';

export interface VerifyResult {
  generation: string | null;
  /** Objects read back and checked. */
  checked: number;
  /** Objects that did not match (damaged, missing, forged): each was removed, so the next run sends it again. */
  bad: { path: string; object: string; reason: string }[];
}

const BATCH = 32;

/**
 * Reads back objects of the newest generation and checks each against its manifest entry
 * (authentication tag and SHA-256). Nightly, the objects whose name falls on tonight's
 * share (name mod `days`), so every object is re-read within `days` nights; `full`: all.
 * A bad object is removed from the target: it no longer passes for backed up, and the
 * next run sends it again from the box.
 */
export async function verifyBackup(d: { keys: BackupKeys; workDir: string; log: Logger }, target: BackupTarget, o: { full: boolean; day: number; days: number }): Promise<VerifyResult> {
  const set = d.keys.setId;
  const gens = await listGenerations(target, set);
  const generation = gens[gens.length - 1] ?? null;
  if (!generation) return { generation, checked: 0, bad: [] };
  const m = await loadManifest(target, d.keys, set, generation);
  const byObject = new Map<string, { path: string; h: string; remote: string }>();
  for (const f of [...m.files, ...m.config, ...m.records.map((r) => ({ p: `records of ${r.sublevel}`, h: r.h }))]) {
    const o2 = objectOf(d.keys, set, f);
    if (!byObject.has(o2.name)) byObject.set(o2.name, { path: f.p, h: f.h, remote: o2.path });
  }
  const share = (name: string) => o.full || parseInt(name.slice(0, 8), 16) % o.days === o.day % o.days;
  const todo = [...byObject.entries()].filter(([name]) => share(name));
  const bad: VerifyResult['bad'] = [];
  await mkdir(d.workDir, { recursive: true, mode: 0o700 });
  for (let i = 0; i < todo.length; i += BATCH) {
    const batch = todo.slice(i, i + BATCH);
    const local = (name: string) => join(d.workDir, `v-${name}`);
    // One batch per trip (a remote target logs in once per batch); a missing object fails the batch, then each is asked alone.
    const fetched = await target.get(batch.map(([name, e]) => ({ path: e.remote, local: local(name) }))).then(
      () => true,
      (err: unknown) => {
        if (err instanceof TargetError && err.kind === 'notFound') return false;
        throw err;
      },
    );
    for (const [name, e] of batch) {
      try {
        if (!fetched) await target.get([{ path: e.remote, local: local(name) }]);
        // Decrypted and hashed in memory: nothing is written, so a full data disk cannot fail a good object.
        await checkObject(d.keys, name, local(name), e.h);
      } catch (err) {
        // Only the object's own fault condemns it: a failed tag, other content, or not there at all.
        if (!(err instanceof SealError) && !(err instanceof TargetError && err.kind === 'notFound')) throw err;
        bad.push({ path: e.path, object: name, reason: err.message });
        d.log.error({ evt: 'backup.verify.bad', generation, path: e.path, object: name, err: err.message }, 'a backed-up file does not match its manifest');
      } finally {
        await unlink(local(name)).catch(() => undefined);
      }
    }
  }
  if (bad.length) await target.remove(bad.map((b) => layout.object(set, b.object)));
  return { generation, checked: todo.length, bad };
}
