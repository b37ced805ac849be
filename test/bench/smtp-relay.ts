/**
 * End-to-end relay benchmark: mlsd against the reference Postfix, same machine, same job.
 *
 * Postfix's smtp-source sends remote mail (u@bench.test) into each server; each relays it
 * to Postfix's smtp-sink as its smarthost (mlsd: routing.mode smarthost; Postfix:
 * postfix-reference.sh relay mode, a transport map to the sink). A run starts when
 * smtp-source starts and ends when the sink has counted the last message (its -c counter),
 * so it covers accept (fsync before 250), queueing and the outbound SMTP client.
 * Each cell runs mlsd and Postfix back to back, alternating which goes first; the median
 * of BENCH_REPEAT runs is reported.
 *
 *   node dist/test/bench/smtp-relay.js            (root: it starts/stops Postfix)
 *   BENCH_ONLY=regex   only cells whose label ("1KiB c10 session") matches
 *   BENCH_SCALE=0.5    scale every message count
 *   BENCH_REPEAT=1     runs per cell and server (default 3)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../helpers/daemon.js';
import { PF_SCRIPT, SMTP_SOURCE, run, startMlsd, unitNodeFlags, vmHwmKiB } from './lib.js';

const MLSD_HOST = '127.0.3.1';
const SINK_HOST = '127.0.3.9';
const PF_HOST = '127.0.0.1';
const PF_PORT = 2526;
const RCPT = 'u@bench.test';
const SCALE = Number(process.env.BENCH_SCALE ?? '1');
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? '3'));
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : null;

interface Cell { size: number; conc: number; mode: 'conn' | 'session'; count: number; label: string; from: string }
interface Server { name: 'mlsd' | 'postfix'; host: string; port: number }

function cells(): Cell[] {
  const out: Cell[] = [];
  const add = (size: number, conc: number, mode: Cell['mode'], base: number, from = 'a@client.test', note = '') => {
    const label = `${size / 1024}KiB c${conc} ${mode}${note}`;
    if (!ONLY || ONLY.test(label)) out.push({ size, conc, mode, count: Math.max(10, Math.round(base * SCALE)), label, from });
  };
  add(1024, 10, 'conn', 2000);
  add(1024, 10, 'session', 3000);
  add(1024, 50, 'session', 3000);
  add(102400, 10, 'session', 1000);
  return out;
}

/** smtp-sink as the smarthost; its -c counter ("mesg=N") says how many messages arrived. */
class Sink {
  private mesg = 0;
  private constructor(private readonly proc: ChildProcess) {
    proc.stdout!.setEncoding('latin1').on('data', (s: string) => {
      const all = [...s.matchAll(/mesg=(\d+)/g)];
      if (all.length) this.mesg = Number(all[all.length - 1]![1]);
    });
  }

  static async start(port: number): Promise<Sink> {
    const proc = spawn('/usr/sbin/smtp-sink', ['-c', '-u', 'nobody', `${SINK_HOST}:${port}`, '256'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await sleep(300);
    if (proc.exitCode !== null) throw new Error(`smtp-sink exited (${proc.exitCode})`);
    return new Sink(proc);
  }

  get count(): number {
    return this.mesg;
  }

  async waitFor(n: number, timeoutMs = 300_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.mesg < n && Date.now() < deadline) await sleep(5);
    return this.mesg;
  }

  stop(): void {
    this.proc.kill('SIGTERM');
  }
}

async function oneRun(s: Server, sink: Sink, c: Pick<Cell, 'size' | 'conc' | 'mode' | 'count' | 'from'>): Promise<number> {
  const before = sink.count;
  const args = ['-s', String(c.conc), '-l', String(c.size), '-m', String(c.count), '-f', c.from, '-t', RCPT];
  if (c.mode === 'session') args.push('-d');
  args.push(`${s.host}:${s.port}`);
  const t0 = process.hrtime.bigint();
  const r = await run(SMTP_SOURCE, args);
  if (r.code !== 0) throw new Error(`${s.name}: smtp-source ${args.join(' ')} failed (${r.code}): ${r.out.trim()}`);
  const got = await sink.waitFor(before + c.count);
  const t1 = process.hrtime.bigint();
  if (got < before + c.count) throw new Error(`${s.name}: only ${got - before} of ${c.count} messages reached the smarthost`);
  return c.count / (Number(t1 - t0) / 1e9);
}

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');

async function main(): Promise<void> {
  console.log(`smtp-relay: nproc ${availableParallelism()}, node ${process.version}`);
  console.log('Ratios (mlsd/postfix) are what count; absolute msg/s depend on this machine and on whatever else runs on it.');
  console.log(`mlsd runs with the node flags of its systemd unit: ${(await unitNodeFlags()).join(' ') || '(none)'}`);
  console.log('figure: messages/s from the start of smtp-source until smtp-sink (the smarthost of both) has counted the last one.');

  const sinkPort = await freePort(SINK_HOST);
  const sink = await Sink.start(sinkPort);
  let mlsd: Awaited<ReturnType<typeof startMlsd>> | null = null;
  let pfStarted = false;
  const cleanup = async () => {
    await mlsd?.stop();
    if (mlsd) await rm(mlsd.root, { recursive: true, force: true });
    mlsd = null;
    if (pfStarted) await run('bash', [PF_SCRIPT, 'stop']);
    pfStarted = false;
    sink.stop();
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanup().finally(() => process.exit(130)));

  try {
    const r = await run('bash', [PF_SCRIPT, 'start', String(PF_PORT), 'relay', `${SINK_HOST}:${sinkPort}`]);
    pfStarted = true;
    if (r.code !== 0) throw new Error(`postfix-reference.sh start failed: ${r.out}`);
    const mlsdPort = await freePort(MLSD_HOST);
    mlsd = await startMlsd({
      hostname: 'mx.example.test',
      domains: ['example.test'],
      smtp: { listeners: [{ name: 'mx', host: MLSD_HOST, port: mlsdPort, starttls: true, greetingDelayMs: 0 }] },
      // Like the reference's mynetworks = 127.0.0.0/8: loopback clients may relay.
      relay: { allowIps: ['127.0.0.0/8'] },
      // The same job as the reference: no content scanning (smtp-accept measures its cost).
      scan: { outbound: { enabled: false } },
      routing: { mode: 'smarthost', smarthost: { host: SINK_HOST, port: sinkPort, tls: 'none' }, sourceAddress: MLSD_HOST },
      ...(process.env.BENCH_MLSD_DELIVERY ? { delivery: JSON.parse(process.env.BENCH_MLSD_DELIVERY) } : {}),
      spool: { minFreeBytes: 0 },
    });
    const servers: Server[] = [
      { name: 'mlsd', host: MLSD_HOST, port: mlsdPort },
      { name: 'postfix', host: PF_HOST, port: PF_PORT },
    ];
    for (const s of servers) await oneRun(s, sink, { size: 1024, conc: 10, mode: 'session', count: 300, from: 'a@client.test' });

    const head = ['cell', 'msgs', 'mlsd msg/s', 'postfix msg/s', 'ratio', 'mlsd HWM MB'];
    const widths = [24, 6, 11, 14, 6, 12];
    const row = (cols: string[]) => cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' ');
    console.log('\n' + row(head));
    const results: { cell: Cell; ratio: number }[] = [];
    let turn = 0;
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    for (const cell of cells()) {
      const got: Record<Server['name'], number[]> = { mlsd: [], postfix: [] };
      for (let i = 0; i < REPEAT; i++)
        for (const s of turn++ % 2 === 0 ? servers : [...servers].reverse()) got[s.name].push(await oneRun(s, sink, cell));
      const m = median(got.mlsd);
      const p = median(got.postfix);
      results.push({ cell, ratio: m / p });
      console.log(row([cell.label, String(cell.count), fmt(m), fmt(p), fmt(m / p, 2), fmt((await vmHwmKiB(mlsd.pid)) / 1024, 1)]));
    }
    const peakMB = (await vmHwmKiB(mlsd.pid)) / 1024;
    console.log(`\nmlsd peak RSS (VmHWM of pid ${mlsd.pid} over the whole benchmark): ${fmt(peakMB, 1)} MB`);
    if (REPEAT > 1) console.log(`each figure is the median of ${REPEAT} runs.`);
    console.log('\ntargets:');
    for (const { cell, ratio } of results) console.log(`  ${ratio >= 1.5 ? 'MET   ' : 'MISSED'} ${cell.label} relay >= 1.5x postfix: ${fmt(ratio, 2)}x`);
  } finally {
    await cleanup();
  }
}

main().catch((err: Error) => {
  console.error(`smtp-relay: ${err.message}`);
  process.exitCode = 1;
});
