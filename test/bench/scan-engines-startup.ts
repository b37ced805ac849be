/**
 * Scan-engine start-up benchmark: how long the real Debian engines the scan tests drive take
 * from spawn to answering, as the test helpers start them (spamd compiling the packaged rules,
 * clamd loading the EICAR-only fixture database, Rspamd with its short suffix list). It tells
 * how much of an integration run is waiting for engines, and what scan.timeoutSeconds must
 * allow for the first check after an engine starts.
 *
 * Each repetition starts each engine alone, then all three at once (as test/integration/
 * scan-engines.test.ts does: spamd dominates); the median of BENCH_REPEAT repetitions is
 * reported. Addresses 127.0.63.x.
 *
 *   node dist/test/bench/scan-engines-startup.js
 *   BENCH_REPEAT=1     repetitions (default 3)
 */
import { ClamdServer } from '../helpers/clamd.js';
import { RspamdServer } from '../helpers/rspamd.js';
import { SpamdServer } from '../helpers/spamd.js';

const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? '3'));
const ENGINES = ['spamd', 'clamd', 'rspamd'] as const;
type Engine = (typeof ENGINES)[number];

interface Started {
  startMs: number;
  stop: () => Promise<void>;
}

function start(engine: Engine): Promise<Started> {
  if (engine === 'spamd') return SpamdServer.start({ host: '127.0.63.1' });
  if (engine === 'clamd') return ClamdServer.start({ host: '127.0.63.2', streamMaxLength: '1M' });
  return RspamdServer.start({ host: '127.0.63.3' });
}

/** Starts the engines together, records each one's start-up time, and stops them all. */
async function startTogether(engines: readonly Engine[]): Promise<number[]> {
  const started = await Promise.allSettled(engines.map(start));
  await Promise.all(started.map((s) => (s.status === 'fulfilled' ? s.value.stop().catch(() => undefined) : undefined)));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return started.map((s) => (s as PromiseFulfilledResult<Started>).value.startMs);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function main(): Promise<void> {
  const alone = new Map<Engine, number[]>(ENGINES.map((e) => [e, []]));
  const together = new Map<Engine, number[]>(ENGINES.map((e) => [e, []]));
  for (let r = 0; r < REPEAT; r++) {
    for (const e of ENGINES) alone.get(e)!.push((await startTogether([e]))[0]!);
    (await startTogether(ENGINES)).forEach((ms, i) => together.get(ENGINES[i]!)!.push(ms));
  }
  console.log('scan engine start-up, spawn to answering (ms):');
  console.log(['engine', 'alone', 'all three'].map((c, i) => c.padStart(i === 0 ? 8 : 10)).join(' '));
  for (const e of ENGINES) {
    console.log([e.padStart(8), String(median(alone.get(e)!)).padStart(10), String(median(together.get(e)!)).padStart(10)].join(' '));
  }
  if (REPEAT > 1) console.log(`each figure is the median of ${REPEAT} starts.`);
}

main().catch((err: Error) => {
  console.error(`scan-engines-startup: ${err.message}`);
  process.exitCode = 1;
});
