import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { BoxContext, Capability } from '../core/capability.js';
import { DAY_MS, type Timer } from '../core/clock.js';
import { mkdirDurable } from '../store/atomic.js';
import { sublevel } from '../store/db.js';
import type { DataDecl } from '../store/data.js';
import { domainOf } from '../core/names.js';
import type { Spool, Envelope } from '../spool/spool.js';
import type { StatusSection } from '../commands/status.js';
import { ARCHIVER_SUBLEVELS, type Archiver } from './archiver.js';
import { ARCHIVE_KEY_CONFIG_FILE } from './keys.js';
import { PACK_DATA_SUBLEVELS } from './packs.js';
import { CHAIN_DATA_SUBLEVELS, type Chain } from './chain.js';
import { openArchive, INDEX_FOLDER, SEARCH_TOOLS } from './open.js';
import { IntakeProcessor, INTAKE, INTAKE_FOLDER, intakeFile } from './intake.js';
import type { RuleSet } from './rules.js';
import type { Direction, IntakeRecord, Verdict } from './types.js';

/** Everything the archive keeps: HA mirrors it and backups copy it (the index is rebuilt). */
export const ARCHIVE_DATA: DataDecl = {
  owner: 'archive',
  // A restore puts the archive back last, after every user's mail.
  sublevels: [
    ...[...CHAIN_DATA_SUBLEVELS, ...PACK_DATA_SUBLEVELS, ...ARCHIVER_SUBLEVELS].map((s) => ({ ...s, restoreRank: 4 })),
    // Mail the stepping-down box of a partitioned pair accepted alone is archived by the active.
    { name: INTAKE, describe: 'committed messages waiting to be archived (a hard link to each file)', replicate: true, file: intakeFile, merge: () => true },
  ],
  folders: [
    { path: 'archive', describe: 'the archive store: sealed, content-addressed packs', replicate: true, restoreRank: () => 4 },
    { path: INTAKE_FOLDER, describe: 'committed messages waiting to be archived', replicate: true },
    { path: INDEX_FOLDER, describe: 'the archive search index (derived: archive reindex rebuilds it)', replicate: false },
  ],
  configFiles: [ARCHIVE_KEY_CONFIG_FILE],
};

export interface ArchiveCapability extends Capability {
  archiver: Archiver;
  intake: IntakeProcessor;
  /** Rebuilds the index from the store. */
  reindex(): Promise<number>;
  verify(): Promise<VerifyOutcome>;
  /** Why the archive takes nothing in (a damaged chain), or null. */
  halted(): string | null;
  /** The chain head (null while the archive waits for a restore): backups carry it. */
  head(): { seq: number; mac: string } | null;
}

/** How long after a failed index update the index catches up from the store. */
const INDEX_RETRY_MS = 30_000;

export type VerifyOutcome = Awaited<ReturnType<Chain['verify']>>;

/** The hash of a rule set: the name under which the rules in force at a commit are kept. */
export function rulesetHash(set: RuleSet): string {
  return createHash('sha256').update(JSON.stringify(set)).digest('hex').slice(0, 24);
}

export { SEARCH_TOOLS };

/**
 * Every committed message's intake record, written in the commit's own batch: who sent it to
 * whom, which way, the scanners' verdict, and the rule set in force (by hash).
 */
function setIntakeTap(box: BoxContext, spool: Spool, isTrustedClient: (ip: string) => boolean, ruleset: () => string, committed: () => void): void {
  const { config } = box;
  const direction = (env: Envelope): Direction => {
    const local = !!env.login || env.origin === 'mlsd' || isTrustedClient(env.clientIp);
    if (!local) return 'in';
    const domains = config.current.domains;
    return env.rcpt.every((r) => domains.includes(domainOf(r))) ? 'internal' : 'out';
  };
  spool.setCommitTap((env) => {
    if (!config.current.archive.enabled) return null;
    const verdict: Verdict = env.scan?.class ?? 'clean';
    const rec: IntakeRecord = { id: env.id, from: env.from, rcpt: env.rcpt, clientIp: env.clientIp, login: env.login, listener: env.listener, received: env.received, size: env.size, direction: direction(env), verdict, ruleset: ruleset() };
    committed();
    return { link: intakeFile(env.id), ops: [{ type: 'put', sublevel: INTAKE, key: env.id, value: rec }] };
  });
}

const currentRuleset = (box: BoxContext): RuleSet => ({ rules: box.config.current.archive.rules, retentionYears: box.config.current.archive.retentionYears });

/**
 * The archive, or, while a restore owed to a swapped data disk runs, its stand-in: the
 * intake takes every commit as usual (mail is never held back), and the archive opens its
 * chain only once the restore has put the old one back, so the two never interleave.
 */
export async function startArchive(box: BoxContext, spool: Spool, isTrustedClient: (ip: string) => boolean): Promise<ArchiveCapability> {
  const waiting = box.restore.waiting();
  if (!waiting) return startArchiveNow(box, spool, isTrustedClient);
  const log = box.log.child({ mod: 'archive' });
  log.info({ evt: 'archive.waitRestore' }, 'the archive opens once the restore has put it back; mail waits in its intake');
  await mkdirDurable(join(box.dataDir, INTAKE_FOLDER), 0o700, (d) => box.dirs.sync(d));
  setIntakeTap(box, spool, isTrustedClient, () => rulesetHash(currentRuleset(box)), () => undefined);
  let real: ArchiveCapability | null = null;
  let stopped = false;
  const opened = waiting.then(async () => {
    if (stopped) return;
    real = await startArchiveNow(box, spool, isTrustedClient);
    if (stopped) await real.stop?.(0);
  });
  opened.catch((err: Error) => log.error({ evt: 'archive.open.fail', err: err.message }, 'the archive could not open after the restore'));
  const live = (): ArchiveCapability => {
    if (!real) throw new Error('archive: the archive is being restored from backup (mlsd restore status); it opens when the restore is done');
    return real;
  };
  return {
    get archiver() {
      return live().archiver;
    },
    get intake() {
      return live().intake;
    },
    reindex: () => live().reindex(),
    verify: () => live().verify(),
    halted: () => real?.halted() ?? null,
    head: () => real?.head() ?? null,
    status: (b) => real?.status?.(b) ?? { json: { archive: { restoring: true } }, lines: ['archive: waiting for the restore to put it back; new mail waits in its intake'] },
    configChanged: (cfg, key) => real?.configChanged?.(cfg, key),
    async stop(drainMs) {
      stopped = true;
      if (real) await real.stop?.(drainMs);
      else spool.setCommitTap(null);
    },
  };
}

/**
 * The mail archive: every committed message enters the intake in the commit's own batch
 * (the spool's commit tap), and is taken into the archive by the rules shortly after, off
 * the SMTP path. Runs on the active box; the standby holds the same records and packs.
 */
async function startArchiveNow(box: BoxContext, spool: Spool, isTrustedClient: (ip: string) => boolean): Promise<ArchiveCapability> {
  const { db, durability, config, clock, emit, dataDir } = box;
  const log = box.log.child({ mod: 'archive' });
  const settings = () => config.current.archive;
  const parts = await openArchive({ configDir: box.configDir, dataDir, db, durability, encrypt: settings().encrypt, clock, log, emit });
  const { archiver, chain, blobs } = parts;
  // A chain that does not end at its head was tampered with or damaged: nothing is appended
  // (it would overwrite the evidence) until the administrator has looked. Mail is still
  // accepted and waits in the intake; search and verify work.
  const halted = parts.halted;
  if (halted) {
    log.error({ evt: 'archive.halted', err: halted }, 'archive halted: the chain does not end at its head');
    emit({ kind: 'archive.halted', severity: 'critical', text: `${halted}; new mail waits in the archive intake until this is resolved` });
  }
  await mkdirDurable(join(dataDir, INTAKE_FOLDER), 0o700, (d) => box.dirs.sync(d));
  const swept = await blobs.sweep();
  if (swept) log.info({ evt: 'archive.sweep', packs: swept }, 'removed pack files no record names (a crash mid-write)');

  // The rules in force are recorded before any commit names them.
  let ruleset = '';
  const recordRules = async () => {
    const set = currentRuleset(box);
    const hash = rulesetHash(set);
    await archiver.recordRuleset(hash, set);
    ruleset = hash;
  };
  await recordRules();

  const intake = new IntakeProcessor({ db, dataDir, archiver, batchMax: () => settings().batchMax, busyShare: () => settings().busyShare, halted: () => halted, clock, log, emit });
  setIntakeTap(box, spool, isTrustedClient, () => ruleset, () => intake.committed());
  // What an earlier run left in the intake (a crash, a takeover) goes in now.
  intake.nudge(0);

  const unmerge = durability.data.onMerge(INTAKE, async (id, value, body) => {
    if ((await sublevel(db, INTAKE).get(id)) !== undefined) return false;
    await durability.writeFile(intakeFile(id), body);
    await durability.write([{ type: 'put', sublevel: INTAKE, key: id, value }]);
    intake.nudge();
    log.info({ evt: 'ha.merge.archive', id }, 'took in a message the other box accepted alone, for the archive');
    return true;
  });

  // The index follows the store: after a crash or a takeover it catches up from where it was.
  let indexing: Promise<number> | null = null;
  const catchUp = (): Promise<number> =>
    (indexing ??= archiver.catchUp().finally(() => {
      indexing = null;
    }));
  const runCatchUp = () =>
    void catchUp().then(
      (n) => n && log.info({ evt: 'archive.index.catchup', messages: n }, 'indexed archived mail the index did not have yet'),
      (err: Error) => log.error({ evt: 'archive.index.fail', err: err.message }, 'could not catch the index up'),
    );
  runCatchUp();
  // An index update failed (a full disk, say): the index catches up from the store a little later.
  let catchUpTimer: Timer | null = null;
  archiver.whenIndexBehind(() => {
    catchUpTimer ??= clock.setTimeout(() => {
      catchUpTimer = null;
      runCatchUp();
    }, INDEX_RETRY_MS);
  });

  // The chain head goes into the event log daily (and at start): a rewritten chain no longer matches it.
  const anchor = () => {
    const h = chain.head();
    if (h.seq === 0) return;
    emit({ kind: 'archive.anchor', severity: 'info', text: `archive chain head: record ${h.seq}, mac ${h.mac}`, data: { seq: h.seq, mac: h.mac } });
  };
  anchor();
  const anchorTimer: Timer = clock.setInterval(anchor, DAY_MS);
  const purgeTimer: Timer = clock.setInterval(() => {
    if (halted) return;
    void archiver.purge(false).then(
      (r) => r.purged && emit({ kind: 'archive.purge', severity: 'info', text: `archive: ${r.purged} messages past retention purged, ${r.held} held` }),
      (err: Error) => log.error({ evt: 'archive.purge.fail', err: err.message }, 'daily purge failed'),
    );
  }, DAY_MS);

  const anchors = async () => {
    const out: { seq: number; mac: string }[] = [];
    for (const ev of await box.events.list(10000)) {
      const d = ev.kind === 'archive.anchor' ? (ev.data as { seq?: unknown; mac?: unknown } | undefined) : undefined;
      if (d && typeof d.seq === 'number' && typeof d.mac === 'string') out.push({ seq: d.seq, mac: d.mac });
    }
    return out;
  };

  return {
    archiver,
    intake,
    reindex: async () => {
      await indexing?.catch(() => 0);
      const n = await (indexing = archiver.reindex().finally(() => {
        indexing = null;
      }));
      log.info({ evt: 'archive.reindex', messages: n }, 'archive index rebuilt from the store');
      return n;
    },
    verify: async () => chain.verify({ blobs, keys: parts.keys, anchors: await anchors() }),
    halted: () => halted,
    head: () => chain.head(),
    status: archiveStatus(() => ({ halted, setAside: intake.setAside.size, enabled: settings().enabled, head: chain.head(), intake: () => intake.count(), blobs: () => blobs.stats(), indexedUpTo: () => archiver.indexedUpTo(), indexing: indexing !== null })),
    configChanged(cfg, key) {
      if (key === 'archive' || key.startsWith('archive.')) void recordRules().catch((err: Error) => log.error({ evt: 'archive.rules.fail', err: err.message }, 'could not record the new archive rules; the old ones stay in force'));
      void cfg;
    },
    async stop() {
      spool.setCommitTap(null);
      unmerge();
      clock.clearInterval(anchorTimer);
      clock.clearInterval(purgeTimer);
      archiver.whenIndexBehind(null);
      if (catchUpTimer) clock.clearTimeout(catchUpTimer);
      await intake.stop();
      archiver.stop();
      await indexing?.catch(() => 0);
      await parts.close();
    },
  };
}

/** A fresh id for a legal hold. */
export function holdId(): string {
  return `hold-${randomBytes(4).toString('hex')}`;
}

interface ArchiveStatusDeps {
  halted: string | null;
  setAside: number;
  enabled: boolean;
  head: { seq: number; mac: string };
  intake: () => Promise<number>;
  blobs: () => Promise<{ blobs: number; bytes: number; files: number }>;
  indexedUpTo: () => Promise<number>;
  indexing: boolean;
}

function archiveStatus(deps: () => ArchiveStatusDeps): StatusSection {
  return async (b) => {
    if (!b.serving) return null;
    const d = deps();
    const [waiting, stats, indexed] = await Promise.all([d.intake(), d.blobs(), d.indexedUpTo()]);
    const json = { halted: d.halted, setAside: d.setAside, enabled: d.enabled, records: d.head.seq, head: d.head.mac, intake: waiting, blobs: stats.blobs, bytes: stats.bytes, packs: stats.files, indexedUpTo: indexed, indexing: d.indexing };
    return {
      json: { archive: json },
      lines: [`archive: ${d.halted ? `HALTED (${d.halted})` : d.enabled ? 'on' : 'off'}, ${d.head.seq} chain records, ${stats.blobs} blobs in ${stats.files} packs (${stats.bytes} bytes), ${waiting} waiting, indexed to ${indexed}${d.indexing ? ' (indexing)' : ''}${d.setAside ? `, ${d.setAside} SET ASIDE (see events)` : ''}`],
    };
  };
}
