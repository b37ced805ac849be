import type { StatusPart, StatusSection } from '../commands/status.js';
import { restoreEtaSeconds, restorePercent, type RestoreProgress } from './restore.js';

interface Facts {
  last: Promise<{ at: string; target: string; generation: string; bytes: number; sentBytes: number; durationMs: number; files: number } | undefined>;
  failure: Promise<{ at: string; target: string; kind: string; message: string } | undefined>;
  next: number | null;
  targets: number;
  busy: string | null;
  restore: RestoreProgress | null;
  now: number;
}

/** The restore's fields, as `mlsd status`, `mlsd restore status`, the LCD and the web admin read them. */
export function restoreJson(p: RestoreProgress | null, now: number): Record<string, unknown> {
  if (!p) return { running: false, state: 'none', percent: null };
  return {
    running: p.state === 'running' || p.state === 'retrying',
    state: p.state,
    percent: restorePercent(p),
    target: p.target,
    generation: p.generation,
    filesDone: p.filesDone,
    filesTotal: p.filesTotal,
    bytesDone: p.bytesDone,
    bytesTotal: p.bytesTotal,
    filesKept: p.filesKept,
    recordsDone: p.recordsDone,
    lost: p.lost?.count ?? 0,
    lostPaths: p.lost?.paths ?? [],
    currentUser: p.currentUser,
    etaSeconds: restoreEtaSeconds(p, now),
    startedAt: p.startedAt,
    finishedAt: p.finishedAt,
    lastError: p.lastError,
  };
}

export function restoreLine(p: RestoreProgress | null, now: number): string {
  if (!p) return 'restore: none';
  const j = restoreJson(p, now);
  if (p.state === 'done') return `restore: done at ${p.finishedAt}, ${p.filesDone} files from ${p.target} (generation ${p.generation})${p.lost?.count ? `; ${p.lost.count} COULD NOT BE RESTORED` : ''}`;
  const eta = j.etaSeconds === null ? 'time left unknown' : `about ${Math.ceil((j.etaSeconds as number) / 60)} min left`;
  return `restore: ${p.state === 'retrying' ? `WAITING FOR ${p.target} (${p.lastError})` : 'RUNNING'} ${j.percent ?? 0}%, ${p.filesDone}/${p.filesTotal} files, ${(p.bytesDone / 1e6).toFixed(1)}/${(p.bytesTotal / 1e6).toFixed(1)} MB${p.currentUser ? `, now ${p.currentUser}` : ''}, ${eta}`;
}

/** `backup` and `restore` in `mlsd status`: the panel shows backup.last and restore.running/percent. */
export function backupStatus(facts: () => Facts): StatusSection {
  return async ({ serving }): Promise<StatusPart | null> => {
    if (!serving) return null;
    const f = facts();
    const [last, failure] = await Promise.all([f.last, f.failure]);
    const backup = {
      targets: f.targets,
      last: last?.at ?? null,
      generation: last?.generation ?? null,
      target: last?.target ?? null,
      bytes: last?.bytes ?? null,
      sentBytes: last?.sentBytes ?? null,
      durationMs: last?.durationMs ?? null,
      next: f.next === null ? null : new Date(f.next).toISOString(),
      running: f.busy,
      lastError: failure ?? null,
    };
    const lines = [
      f.targets === 0 ? 'backup: not set up (mlsd backup target add)' : `backup: ${last ? `last good ${last.at} to ${last.target} (generation ${last.generation}, ${(last.bytes / 1e6).toFixed(1)} MB)` : 'no backup yet'}${backup.next ? `, next ${backup.next}` : ''}${f.busy ? `, ${f.busy} running` : ''}${failure ? `; LAST RUN FAILED on ${failure.target}: ${failure.kind}` : ''}`,
      ...(f.restore ? [restoreLine(f.restore, f.now)] : []),
    ];
    return { json: { backup, restore: restoreJson(f.restore, f.now) }, lines };
  };
}
