/**
 * SMTP accept benchmark: mlsd against the reference Postfix, same machine, same job.
 *
 * Postfix's smtp-source drives each server with 1 KiB and 100 KiB messages at
 * concurrency 1, 10 and 50, in two modes:
 *   conn     smtp-source default: every message on its own connection
 *            (connect, greeting, HELO, MAIL, RCPT, DATA, QUIT).
 *   session  smtp-source -d ("don't disconnect after sending a message"): each of the
 *            -s sessions keeps its connection and sends message after message until the
 *            -m total is used up.
 * Both servers deliver to a local Maildir with fsync on (mlsd: spool fsync + LevelDB
 * synced batch before 250, then Maildir tmp/fsync/rename/dir fsync; Postfix: queue file
 * fsync before 250, then virtual(8) Maildir delivery). Figures are messages accepted per
 * second (wall clock around smtp-source); "to-box" also waits until every message is in
 * new/. Each cell runs mlsd and Postfix back to back, alternating which goes first.
 *
 *   node dist/test/bench/smtp-accept.js            (root: it starts/stops Postfix)
 *   BENCH_ONLY=regex   only cells whose label ("1KiB c10 session") matches
 *   BENCH_SCALE=0.5    scale every message count
 *   BENCH_REPEAT=1     runs per cell and server (default 3, order alternating); the median is reported
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, runCli } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { PF_SCRIPT, SMTP_SOURCE, run, startMlsd, unitNodeFlags, vmHwmKiB } from './lib.js';
import { SpamdServer } from '../helpers/spamd.js';

const MLSD_HOST = '127.0.3.1';
const PF_HOST = '127.0.0.1';
const PF_PORT = 2526;
const RCPT = 'u@bench.test';
const PF_BOX = '/var/mail/vhosts/bench.test/u';
const GREETING_DELAY_MS = 0;
const SCALE = Number(process.env.BENCH_SCALE ?? '1');
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? '3'));
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : null;

type Mode = 'conn' | 'session';
interface Cell { size: number; conc: number; mode: Mode; count: number; label: string }
interface Run { accepted: number; toBox: number }
interface Server { name: 'mlsd' | 'postfix'; host: string; port: number; box: string }

/** Counts sized so a run lasts a few seconds at the rates seen here (~300-1000 msg/s). */
function cells(): Cell[] {
  const out: Cell[] = [];
  for (const size of [1024, 102400])
    for (const conc of [1, 10, 50])
      for (const mode of ['conn', 'session'] as const) {
        const base = size === 1024 ? (conc === 1 ? 1000 : 2000) : conc === 1 ? 400 : 1200;
        const label = `${size / 1024}KiB c${conc} ${mode}`;
        if (!ONLY || ONLY.test(label)) out.push({ size, conc, mode, count: Math.max(10, Math.round(base * SCALE)), label });
      }
  return out;
}

async function newFiles(box: string): Promise<string[]> {
  return readdir(join(box, 'new')).catch(() => []);
}

/** Empties a mailbox's new/ (the directories stay: mlsd caches that it made them). */
async function cleanBox(box: string): Promise<void> {
  const dir = join(box, 'new');
  await Promise.all((await newFiles(box)).map((f) => rm(join(dir, f), { force: true })));
}

/** Polls new/ until `want` files are there; both servers deliver after their 250. */
async function waitDelivered(box: string, want: number, timeoutMs = 180_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = (await newFiles(box)).length;
    if (n >= want || Date.now() > deadline) return n;
    await sleep(20);
  }
}

async function oneRun(s: Server, c: Pick<Cell, 'size' | 'conc' | 'mode' | 'count'>): Promise<Run> {
  await cleanBox(s.box);
  const args = ['-s', String(c.conc), '-l', String(c.size), '-m', String(c.count), '-f', 'a@client.test', '-t', RCPT];
  if (c.mode === 'session') args.push('-d');
  args.push(`${s.host}:${s.port}`);
  const t0 = process.hrtime.bigint();
  const r = await run(SMTP_SOURCE, args);
  const t1 = process.hrtime.bigint();
  if (r.code !== 0) throw new Error(`${s.name}: smtp-source ${args.join(' ')} failed (${r.code}): ${r.out.trim()}`);
  const delivered = await waitDelivered(s.box, c.count);
  const t2 = process.hrtime.bigint();
  if (delivered !== c.count) throw new Error(`${s.name}: ${delivered} of ${c.count} messages delivered to ${s.box}/new`);
  // A delivered copy must hold the whole payload. smtp-source -l counts CRLF body bytes;
  // Postfix stores LF line ends (~1% fewer bytes), mlsd keeps CRLF, hence the slack.
  const files = await newFiles(s.box);
  const sz = (await stat(join(s.box, 'new', files[0]!))).size;
  if (sz < c.size * 0.97) throw new Error(`${s.name}: delivered file is ${sz} bytes, payload was ${c.size}`);
  const secs = (a: bigint, b: bigint) => Number(b - a) / 1e9;
  return { accepted: c.count / secs(t0, t1), toBox: c.count / secs(t0, t2) };
}

/** mlsd with its MX listener on MLSD_HOST and the benchmark's mailbox. */
async function startBenchMlsd(port: number) {
  const config = {
    hostname: 'mx.bench.test',
    domains: ['bench.test'],
    smtp: { listeners: [{ name: 'mx', host: MLSD_HOST, port, starttls: true, greetingDelayMs: GREETING_DELAY_MS }] },
    spool: { minFreeBytes: 0 },
    // The reference Postfix keeps no archive copy: compared like for like (test/bench/archive measures the archive's cost).
    archive: { enabled: false },
  };
  const m = await startMlsd(config, [RCPT]);
  return { ...m, box: join(m.dataDir, 'mail', 'bench.test', 'u', 'Maildir') };
}

/**
 * Commit latency as a client sees it: from the end of DATA (the final dot) to the 250,
 * which covers the fsyncs before the reply. LAT_CONC sessions of LAT_PER messages each,
 * 1 KiB, on one connection per session; smtp-source cannot time single messages.
 */
const LAT_CONC = 10;
const LAT_PER = 100;
async function latencyRun(s: Server): Promise<number[]> {
  await cleanBox(s.box);
  // An ordinary-looking 1 KiB mail, so a content scanner in the path judges it like real mail.
  const line = 'The quarterly figures are attached; please review them before Monday.';
  const body =
    'From: Alice <a@client.test>\r\nTo: <' + RCPT + '>\r\nSubject: latency\r\nDate: ' + new Date().toUTCString().replace('GMT', '+0000') +
    '\r\nMessage-ID: <' + Math.random().toString(36).slice(2) + '@client.test>\r\n\r\n' + (line + '\r\n').repeat(13) + '.\r\n';
  const ms: number[] = [];
  await Promise.all(
    Array.from({ length: LAT_CONC }, async () => {
      const c = await RawSmtp.open(s.host, s.port);
      await c.reply();
      await c.cmd('EHLO bench.client.test');
      for (let i = 0; i < LAT_PER; i++) {
        await c.cmd('MAIL FROM:<a@client.test>');
        await c.cmd(`RCPT TO:<${RCPT}>`);
        if (!(await c.cmd('DATA')).startsWith('354')) throw new Error(`${s.name}: DATA refused`);
        const t0 = process.hrtime.bigint();
        c.writeRaw(body);
        const r = await c.reply();
        ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (!r.startsWith('250')) throw new Error(`${s.name}: ${r}`);
      }
      await c.cmd('QUIT');
      c.close();
    }),
  );
  const n = await waitDelivered(s.box, LAT_CONC * LAT_PER);
  if (n !== LAT_CONC * LAT_PER) throw new Error(`${s.name}: ${n} of ${LAT_CONC * LAT_PER} latency messages delivered`);
  return ms.sort((a, b) => a - b);
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');

async function main(): Promise<void> {
  const todo = cells();
  console.log(`smtp-accept: nproc ${availableParallelism()}, node ${process.version}`);
  console.log('Ratios (mlsd/postfix) are what count; absolute msg/s depend on this machine and on whatever else runs on it.');
  console.log(`mlsd mx listener greetingDelayMs=${GREETING_DELAY_MS} (default on MX is 100 ms); Postfix smtpd has no greeting delay by default (postscreen off), so both greet at once.`);
  // 16 pool threads measured slightly slower than libuv's 4 on 2 cores; the unit sets none.
  console.log(`mlsd UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 'unset (libuv default: 4 threads)'}, as in the systemd unit.`);
  console.log(`mlsd runs with the node flags of its systemd unit: ${(await unitNodeFlags()).join(' ') || '(none)'}`);
  console.log('mlsd is measured on its second start (the first one makes its certificate, as a box does once at first boot).');
  console.log('modes: conn = one message per connection (smtp-source default); session = smtp-source -d, each of the -s connections sends messages until -m is used up.');

  let mlsd: Awaited<ReturnType<typeof startBenchMlsd>> | null = null;
  let pfStarted = false;
  const cleanup = async () => {
    await mlsd?.stop();
    if (mlsd) await rm(mlsd.root, { recursive: true, force: true });
    mlsd = null;
    if (pfStarted) await run('bash', [PF_SCRIPT, 'stop']);
    pfStarted = false;
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => void cleanup().finally(() => process.exit(130)));

  try {
    const r = await run('bash', [PF_SCRIPT, 'start', String(PF_PORT), 'maildir']);
    pfStarted = true;
    if (r.code !== 0) throw new Error(`postfix-reference.sh start failed: ${r.out}`);
    const mlsdPort = await freePort(MLSD_HOST);
    mlsd = await startBenchMlsd(mlsdPort);
    const servers: Server[] = [
      { name: 'mlsd', host: MLSD_HOST, port: mlsdPort, box: mlsd.box },
      { name: 'postfix', host: PF_HOST, port: PF_PORT, box: PF_BOX },
    ];
    // Warm-up: JIT for mlsd, process pools and caches for Postfix; creates both mailboxes.
    for (const s of servers) await oneRun(s, { size: 1024, conc: 10, mode: 'session', count: 200 });

    const head = ['size', 'conc', 'mode', 'msgs', 'mlsd msg/s', 'postfix msg/s', 'ratio', 'mlsd to-box/s', 'pf to-box/s', 'mlsd HWM MB'];
    const widths = [6, 5, 8, 5, 11, 14, 6, 14, 12, 12];
    const row = (cols: string[]) => cols.map((c, i) => c.padStart(widths[i]!)).join(' ');
    console.log('\n' + row(head));
    const results: { cell: Cell; m: Run; p: Run }[] = [];
    // Runs alternate which server goes first, so neither always inherits the other's
    // leftovers (dirty page cache, journal commits, CPU frequency).
    let turn = 0;
    const median = (runs: Run[]) => [...runs].sort((a, b) => a.accepted - b.accepted)[runs.length >> 1]!;
    for (const cell of todo) {
      const got: Record<Server['name'], Run[]> = { mlsd: [], postfix: [] };
      for (let r = 0; r < REPEAT; r++)
        for (const s of turn++ % 2 === 0 ? servers : [...servers].reverse()) got[s.name].push(await oneRun(s, cell));
      const m = median(got.mlsd);
      const p = median(got.postfix);
      results.push({ cell, m, p });
      const hwm = (await vmHwmKiB(mlsd.pid)) / 1024;
      console.log(row([`${cell.size / 1024}KiB`, String(cell.conc), cell.mode, String(cell.count), fmt(m.accepted), fmt(p.accepted), fmt(m.accepted / p.accepted, 2), fmt(m.toBox), fmt(p.toBox), fmt(hwm, 1)]));
    }

    console.log(`\ncommit latency, end of DATA to 250 (1 KiB, ${LAT_CONC} sessions x ${LAT_PER} messages), ms:`);
    console.log(['server', 'p50', 'p90', 'p99', 'max'].map((c) => c.padStart(8)).join(' '));
    const lat: Record<string, number[]> = {};
    for (const s of servers) lat[s.name] = await latencyRun(s);
    for (const s of servers) {
      const l = lat[s.name]!;
      console.log([s.name, ...[50, 90, 99, 100].map((p) => fmt(pct(l, p), 1))].map((c) => c.padStart(8)).join(' '));
    }
    console.log(`ratio p50 ${fmt(pct(lat.mlsd!, 50) / pct(lat.postfix!, 50), 2)}, p99 ${fmt(pct(lat.mlsd!, 99) / pct(lat.postfix!, 99), 2)} (mlsd/postfix; lower is better)`);

    // The cost of counting: all four thresholds set too high to trip, against all off,
    // switched live with `mlsd config set`, alternating, same cells.
    const high = { perIpMessagesPerMinute: 1e9, perIpRecipientsPerMinute: 1e9, perIpMessagesPerDay: 1e9, perAccountMessagesPerDay: 1e9 };
    const off = { perIpMessagesPerMinute: 0, perIpRecipientsPerMinute: 0, perIpMessagesPerDay: 0, perAccountMessagesPerDay: 0 };
    const setThresholds = async (v: Record<string, number>) => {
      for (const [k, n] of Object.entries(v)) {
        const r = await runCli(['config', 'set', `thresholds.${k}`, String(n), '--config-dir', mlsd!.configDir]);
        if (r.code !== 0) throw new Error(`config set thresholds.${k}: ${r.stderr}`);
      }
    };
    console.log('\nthreshold counting cost (all four thresholds set, never tripping, vs all off; mlsd only):');
    console.log(['cell', 'off msg/s', 'on msg/s', 'on/off'].map((c, i) => c.padStart(i === 0 ? 16 : 10)).join(' '));
    const mlsdServer = servers[0]!;
    for (const cell of [{ size: 1024, conc: 10, mode: 'session' as const, count: Math.round(2000 * SCALE) }, { size: 1024, conc: 50, mode: 'session' as const, count: Math.round(2000 * SCALE) }]) {
      const runs: Record<'on' | 'off', Run[]> = { on: [], off: [] };
      for (let r = 0; r < Math.max(REPEAT, 3); r++)
        for (const which of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
          await setThresholds(which === 'on' ? high : off);
          runs[which].push(await oneRun(mlsdServer, cell));
        }
      await setThresholds(off);
      const a = median(runs.off).accepted;
      const b = median(runs.on).accepted;
      console.log([`${cell.size / 1024}KiB c${cell.conc} ${cell.mode}`.padStart(16), fmt(a).padStart(10), fmt(b).padStart(10), fmt(b / a, 3).padStart(10)].join(' '));
    }

    // Outbound scanning: the bench's client becomes a company PC (relay.allowIps), so its mail
    // is scanned as local senders' mail is. Off, the built-in layer alone, and with spamd.
    console.log('\noutbound scanning cost (1 KiB, clients in relay.allowIps; mlsd only; latency = end of DATA to 250):');
    console.log(['mode', 'msg/s', 'vs off', 'p50 ms', 'p99 ms', '+p50 ms', '+p99 ms'].map((c, i) => c.padStart(i === 0 ? 10 : 8)).join(' '));
    const spamd = await SpamdServer.start({ host: '127.0.3.20' });
    try {
      const set = async (key: string, v: unknown) => {
        const r = await runCli(['config', 'set', key, JSON.stringify(v), '--config-dir', mlsd!.configDir]);
        if (r.code !== 0) throw new Error(`config set ${key}: ${r.stderr}`);
      };
      await set('relay.allowIps', ['127.0.0.0/8']);
      const modes = [
        { name: 'off', scan: { enabled: false }, spamassassin: false },
        { name: 'built-in', scan: { enabled: true }, spamassassin: false },
        { name: '+spamd', scan: { enabled: true }, spamassassin: true },
      ];
      const cell = { size: 1024, conc: 10, mode: 'session' as const, count: Math.max(10, Math.round(1000 * SCALE)) };
      let base: { rate: number; lat: number[] } | null = null;
      for (const m of modes) {
        await set('scan.outbound.enabled', m.scan.enabled);
        await set('scan.spamassassin', { enabled: m.spamassassin, host: spamd.host, port: spamd.port });
        const rates: number[] = [];
        for (let r = 0; r < REPEAT; r++) rates.push((await oneRun(servers[0]!, cell)).accepted);
        const rate = [...rates].sort((a, b) => a - b)[rates.length >> 1]!;
        const lat = await latencyRun(servers[0]!);
        base ??= { rate, lat };
        console.log(
          [m.name.padStart(10), fmt(rate).padStart(8), fmt(rate / base.rate, 2).padStart(8), fmt(pct(lat, 50), 1).padStart(8), fmt(pct(lat, 99), 1).padStart(8), fmt(pct(lat, 50) - pct(base.lat, 50), 1).padStart(8), fmt(pct(lat, 99) - pct(base.lat, 99), 1).padStart(8)].join(' '),
        );
      }
      await set('scan.outbound.enabled', true);
      await set('scan.spamassassin', { enabled: false, host: '127.0.0.1', port: 783 });
      await set('relay.allowIps', []);
    } finally {
      await spamd.stop();
    }

    const peakMB = (await vmHwmKiB(mlsd.pid)) / 1024;
    console.log(`\nmlsd peak RSS (VmHWM of pid ${mlsd.pid} over the whole benchmark): ${fmt(peakMB, 1)} MB`);
    if (REPEAT > 1) console.log(`each figure is the median of ${REPEAT} runs (by accepted msg/s).`);
    console.log('every run: all messages verified in the mailbox new/ before the next run; mailboxes emptied between runs.');
    console.log('\ntargets:');
    const check = (label: string, ok: boolean, detail: string) => console.log(`  ${ok ? 'MET   ' : 'MISSED'} ${label}: ${detail}`);
    for (const { cell, m, p } of results) {
      const ratio = m.accepted / p.accepted;
      if (cell.mode === 'session' && cell.conc >= 10) check(`${cell.label} >= 1.5x postfix`, ratio >= 1.5, `${fmt(ratio, 2)}x`);
      if (cell.mode === 'conn' && cell.conc === 50) check(`${cell.label} >= 1.0x postfix`, ratio >= 1.0, `${fmt(ratio, 2)}x`);
    }
    check('mlsd peak RSS < 150 MB', peakMB < 150, `${fmt(peakMB, 1)} MB`);
  } finally {
    await cleanup();
  }
}

main().catch((err: Error) => {
  console.error(`smtp-accept: ${err.message}`);
  process.exitCode = 1;
});
