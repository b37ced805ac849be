/**
 * The archive benchmark (issue 14): a corpus of its own (corpus.ts), ingested through the
 * Archiver directly; search latency over 50 fixed queries at that size; and the SMTP cost of
 * archiving on a smaller run through real SMTP, beside the reference Postfix doing the
 * comparable job. Prints figures (and the targets, met or missed); asserts nothing.
 *
 *   node dist/test/bench/archive/run.js           (root: the SMTP part starts/stops Postfix)
 *   ARCHIVE_BENCH_MESSAGES=1000000  corpus size for ingest and search
 *   ARCHIVE_BENCH_SMTP_MESSAGES=5000  messages per SMTP run; ARCHIVE_BENCH_SMTP_ROUNDS=3 (A/B, B/A, A/B)
 *   ARCHIVE_BENCH_SMTP_CONC=10      concurrent SMTP sessions
 *   ARCHIVE_BENCH_PARTS=ingest,search,smtp   which parts (search alone reuses a kept ingest)
 *   ARCHIVE_BENCH_DIR=/work/bench-archive-data   where the data goes (gigabytes at 1M)
 *   ARCHIVE_BENCH_KEEP=1            keep the ingested archive (for a later search-only run)
 *   ARCHIVE_BENCH_SEARCH_ROUNDS=5   runs of each query
 *   ARCHIVE_BENCH_SEARCH_AT=100000,250000,500000   also measure search when the ingest passes these sizes
 */
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { ingestCorpus, printIngest } from './ingest.js';
import { openArchive } from './open-archive.js';
import { searchLatency } from './search.js';
import { smtpCost } from './smtp-cost.js';
import { fmt, now } from './measure.js';
import { run } from '../lib.js';

const env = (k: string, d: string) => process.env[`ARCHIVE_BENCH_${k}`] ?? d;
const MESSAGES = Number(env('MESSAGES', '1000000'));
const SMTP_MESSAGES = Number(env('SMTP_MESSAGES', '5000'));
const SMTP_ROUNDS = Math.max(2, Number(env('SMTP_ROUNDS', '3')));
const SMTP_CONC = Number(env('SMTP_CONC', '10'));
const SEARCH_ROUNDS = Number(env('SEARCH_ROUNDS', '5'));
const SEARCH_AT = env('SEARCH_AT', '100000,250000,500000').split(',').filter(Boolean).map(Number);
const PARTS = new Set(env('PARTS', 'ingest,search,smtp').split(','));
const DIR = env('DIR', '/work/bench-archive-data');
const KEEP = env('KEEP', '') === '1';
/** archive.batchMax's default: the most messages the capability takes in one synced batch. */
const BATCH_MAX = 500;

const log = (s: string) => console.log(s);

async function main(): Promise<void> {
  const t0 = now();
  log(`archive bench: nproc ${availableParallelism()} (${cpus()[0]?.model ?? '?'}), node ${process.version}, ${new Date().toISOString()}`);
  log('Absolute figures depend on this machine and whatever else runs on it; the SMTP part is read as ratios (archive on/off, mlsd/postfix).');
  const df = await run('df', ['-h', '--output=avail,size', DIR.split('/').slice(0, 2).join('/') || '/']);
  log(`data under ${DIR}; free: ${df.out.trim().split('\n').pop()?.trim()}`);
  const ingestRoot = join(DIR, `ingest-${MESSAGES}`);
  const dataDir = join(ingestRoot, 'data');
  const configDir = join(ingestRoot, 'config');

  if (PARTS.has('ingest') || PARTS.has('search')) {
    let meta: { messages: number; first: number; last: number } | null = null;
    if (PARTS.has('ingest')) {
      await rm(ingestRoot, { recursive: true, force: true });
      await mkdir(dataDir, { recursive: true });
      await mkdir(configDir, { recursive: true });
    } else {
      meta = JSON.parse(await readFile(join(ingestRoot, 'bench-meta.json'), 'utf8').catch(() => 'null')) as typeof meta;
      if (!meta) throw new Error(`search alone needs a kept ingest of ${MESSAGES} messages in ${ingestRoot} (ARCHIVE_BENCH_KEEP=1)`);
    }
    const a = await openArchive(dataDir, configDir);
    try {
      if (PARTS.has('ingest')) {
        log(`\n== ingest: ${MESSAGES} corpus messages through Archiver.ingest, batches of ${BATCH_MAX} (archive.batchMax)`);
        const checkpoint = async (n: number, first: number, last: number) => {
          log(`\n-- search at ${n} messages (ingest paused)`);
          await searchLatency(a.archiver, first, last, SEARCH_ROUNDS, log, true);
          log('');
        };
        const f = await ingestCorpus(a.archiver, a.ruleset, MESSAGES, BATCH_MAX, log, PARTS.has('search') ? SEARCH_AT : [], checkpoint);
        await printIngest(f, dataDir, configDir, log);
        meta = { messages: f.messages, first: f.first, last: f.last };
      }
      if (PARTS.has('search') && meta) {
        log(`\n== search: 50 queries x ${SEARCH_ROUNDS} at ${meta.messages} messages`);
        await searchLatency(a.archiver, meta.first, meta.last, SEARCH_ROUNDS, log);
      }
    } finally {
      await a.close();
      if (!KEEP) await rm(ingestRoot, { recursive: true, force: true });
    }
  }

  if (PARTS.has('smtp')) {
    log(`\n== SMTP cost of archiving: ${SMTP_MESSAGES} corpus messages per run, ${SMTP_CONC} sessions, ${SMTP_ROUNDS} rounds alternating`);
    const smtpDir = join(DIR, 'smtp');
    await mkdir(smtpDir, { recursive: true });
    try {
      await smtpCost({ messages: SMTP_MESSAGES, rounds: SMTP_ROUNDS, conc: SMTP_CONC, parentDir: smtpDir, log });
    } finally {
      await rm(smtpDir, { recursive: true, force: true });
    }
  }
  if (!KEEP && (await stat(DIR).catch(() => null))) await rm(DIR, { recursive: true, force: true });
  log(`\narchive bench done in ${fmt((now() - t0) / 60000, 1)} min`);
}

main().catch((err: Error) => {
  console.error(`archive bench: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
