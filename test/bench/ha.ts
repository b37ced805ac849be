/**
 * HA benchmark: how fast a real-time pair fails over under `kill -9`, and what synchronous
 * replication costs the accept path, beside HA off and beside the reference Postfix.
 *
 * 1. Failover. A pair at the default timing (heartbeatMs 200, deadMs 1500) on 127.0.60.x,
 *    built by test/helpers/ha-pair.ts (heartbeat cable a socat pty pair, shared service address;
 *    the network link direct, see startPair). STREAM_CLIENTS clients keep sending to the service
 *    address, one message per connection, for the whole part. Each round: wait until the pair
 *    is in sync and has taken a few messages, SIGKILL the active, and time from the kill to
 *    the first 250 on a connection made after it (only the survivor can have answered that).
 *    Every message acknowledged so far must then be in the survivor's Maildir. The killed box
 *    is restarted, rejoins as standby, and the next round starts once it is back in sync.
 * 2. Accept cost. smtp-source (1 KiB, -s 10, session mode) to a local Maildir: one mlsd with
 *    ha.enabled false (127.0.62.1), the active of an in-sync pair through the service address
 *    (127.0.61.x), and Postfix from postfix-reference.sh (maildir mode, 127.0.0.1:2526).
 *    Alternatives run back to back, their order rotated per repetition; medians of REPEAT
 *    runs. Commit latency (end of DATA to 250) from a client of our own, sequential and
 *    10 concurrent sessions, pooled over the repetitions.
 *
 * Every mlsd runs with its systemd unit's node flags and logs to a file (as to journald), as
 * in lib.ts's startMlsd; the boxes are TestDaemons (their configs and data dirs), started here.
 *
 *   node dist/test/bench/ha.js             (root: it starts/stops Postfix)
 *   BENCH_KILLS=10     failover rounds
 *   BENCH_ONLY=failover|accept   one part only
 *   BENCH_SCALE=0.5    scale message counts of part 2
 *   BENCH_REPEAT=3     runs per alternative in part 2 (median reported)
 *   BENCH_KEEP_LOGS=1  keep the daemons' logs (they are kept anyway when something went wrong)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, TestDaemon, type LogLine } from '../helpers/daemon.js';
import { startHaPair, waitInSync, type HaPair } from '../helpers/ha-pair.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { PF_SCRIPT, SMTP_SOURCE, run, unitNodeFlags, vmHwmKiB } from './lib.js';

const NET_FAILOVER = '127.0.60';
const NET_PAIR = '127.0.61';
const SOLO_HOST = '127.0.62.1';
const LAT_CLIENT = '127.0.62.30';
const PF_HOST = '127.0.0.1';
const PF_PORT = 2526;
const PF_RCPT = 'u@bench.test';
const PF_BOX = '/var/mail/vhosts/bench.test/u';
const RCPT = 'u@example.test';
const KILLS = Math.max(1, Number(process.env.BENCH_KILLS ?? '10'));
const SCALE = Number(process.env.BENCH_SCALE ?? '1');
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? '3'));
const ONLY = process.env.BENCH_ONLY ?? '';
/** Two clients, ~50 msg/s on this machine: each rejoin snapshot (what the killed box missed) stays small. */
const STREAM_CLIENTS = 2;
/** Messages the pair takes in each round before the kill, so the kill lands mid-stream. */
const ACKS_BEFORE_KILL = 20;
const FAILOVER_TARGET_MS = 2000;
const HA_RATIO_TARGET = 0.7;

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const boxOf = (d: TestDaemon, rcpt = RCPT) => {
  const [user, domain] = rcpt.split('@') as [string, string];
  return join(d.dataDir, 'mail', domain, user, 'Maildir');
};

async function until<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------
// Boxes: a TestDaemon's dirs, started as the appliance starts mlsd (unit flags, log file).

let logDir = '';
const logPath = (d: TestDaemon) => join(logDir, `${d.host}.log`);

/**
 * Starts mlsd on a TestDaemon's config and data dirs with the unit's node flags, logging to
 * a file that each restart appends to, and resolves once this start logged daemon.ready.
 * The process goes into d.proc, so TestDaemon.kill9/stop/cleanup and HaPair.active work on it.
 */
async function launch(d: TestDaemon, timeoutMs = 30_000): Promise<void> {
  const path = logPath(d);
  const from = (await stat(path).catch(() => null))?.size ?? 0;
  const fh = await open(path, 'a');
  const proc = spawn(process.execPath, [...(await unitNodeFlags()), CLI, 'start', '--config-dir', d.configDir, '--data-dir', d.dataDir], {
    stdio: ['ignore', fh.fd, fh.fd],
  });
  await fh.close();
  d.proc = proc;
  try {
    await until(
      `daemon.ready of ${d.host}`,
      async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`mlsd ${d.host} exited (${proc.exitCode ?? proc.signalCode}); log: ${path}`);
        const fh2 = await open(path, 'r');
        try {
          const { size } = await fh2.stat();
          const buf = Buffer.alloc(size - from);
          await fh2.read(buf, 0, buf.length, from);
          return buf.includes('"evt":"daemon.ready"');
        } finally {
          await fh2.close();
        }
      },
      timeoutMs,
      25,
    );
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
}

async function logLines(d: TestDaemon): Promise<(LogLine & { time?: number })[]> {
  const text = await readFile(logPath(d), 'utf8').catch(() => '');
  const out: (LogLine & { time?: number })[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogLine & { time?: number });
    } catch {
      /* a line cut by SIGKILL */
    }
  }
  return out;
}

/** The HA, daemon and warn/error lines of both boxes in a time window: the evidence of an anomaly. */
async function evidence(boxes: TestDaemon[], from: number, to: number): Promise<string> {
  const out: string[] = [];
  for (const d of boxes) {
    const lines = (await logLines(d)).filter(
      (l) => (l.time ?? 0) >= from && (l.time ?? 0) <= to && (/^(ha|daemon)\./.test(String(l.evt ?? '')) || Number(l.level) >= 40),
    );
    out.push(`    --- ${d.host} (${logPath(d)}), ${lines.length} line(s):`);
    for (const l of lines.slice(-60)) out.push('    ' + JSON.stringify(l));
  }
  return out.join('\n');
}

async function patchConfig(d: TestDaemon, f: (cfg: Record<string, any>) => void): Promise<void> {
  const path = join(d.configDir, 'config.json');
  const cfg = JSON.parse(await readFile(path, 'utf8')) as Record<string, any>;
  f(cfg);
  await writeFile(path, JSON.stringify(cfg, null, 2));
}

/** As smtp-accept.ts: no greeting delay on the MX listener (Postfix greets at once too). */
const noGreetingDelay = (cfg: Record<string, any>) => {
  for (const l of cfg.smtp.listeners as { name: string; greetingDelayMs?: number }[]) if (l.name === 'mx') l.greetingDelayMs = 0;
};

async function addUser(d: TestDaemon, address: string): Promise<void> {
  const r = await d.cli(['user', 'add', address, '--password-stdin'], 'bench-password\n');
  if (r.code !== 0) throw new Error(`user add ${address} on ${d.host}: ${r.stderr}`);
}

/** Waits until the standby's replicated accounts know the address (else it would 550 after a takeover). */
async function userReplicated(d: TestDaemon, address: string): Promise<void> {
  await until(`${address} in ${d.host}'s accounts.json`, async () => (await readFile(join(d.configDir, 'accounts.json'), 'utf8').catch(() => '')).includes(address), 15_000, 100);
}

/**
 * The pair of ha-pair.ts, with the boxes' network link made direct (each dials the other's
 * ha.listen), as on the appliance. The helper's TcpProxy relays (there so that tests can cut
 * the network) do not set TCP_NODELAY: Nagle's algorithm against delayed ACKs then adds
 * ~80 ms to every replicated commit, a cost of the test relay and not of mlsd (whose own
 * sockets set it). The bench never cuts the network, so it leaves the relays idle.
 */
async function startPair(net: string): Promise<{ p: HaPair; active: TestDaemon; standby: TestDaemon }> {
  const p = await startHaPair({ net });
  const listenOf = async (d: TestDaemon) => (JSON.parse(await readFile(join(d.configDir, 'config.json'), 'utf8')) as { ha: { listen: { host: string; port: number } } }).ha.listen;
  const [la, lb] = [await listenOf(p.a), await listenOf(p.b)];
  const direct = (peer: { host: string; port: number }) => (cfg: Record<string, any>) => {
    noGreetingDelay(cfg);
    cfg.ha.peer = { host: peer.host, port: peer.port };
  };
  await Promise.all([patchConfig(p.a, direct(lb)), patchConfig(p.b, direct(la))]);
  await Promise.all([launch(p.a), launch(p.b)]);
  const { active, standby } = await waitInSync(p, 30_000);
  await addUser(active, RCPT);
  await userReplicated(standby, RCPT);
  return { p, active, standby };
}

// ---------------------------------------------------------------------------------------
// Part 1: failover under kill -9.

interface Ack { subject: string; at: number; connectedAt: number }

/** Clients sending to the service address until stopped, one message per connection. */
class Stream {
  readonly acked: Ack[] = [];
  /** Replies other than 250 to the final dot (a 4xx from a box going down or coming up). */
  refusals: { at: number; reply: string }[] = [];
  private stopped = false;
  private loops: Promise<void>[] = [];
  private seq = 0;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  start(n: number): void {
    this.loops = Array.from({ length: n }, (_, i) => this.loop(`${NET_FAILOVER}.${30 + i}`, i));
  }

  private async loop(local: string, i: number): Promise<void> {
    while (!this.stopped) {
      const subject = `f-${i}-${this.seq++}`;
      let c: RawSmtp | null = null;
      try {
        c = await RawSmtp.open(this.host, this.port, local);
        const connectedAt = Date.now();
        if (!(await c.reply()).startsWith('220')) throw new Error('no greeting');
        await c.cmd('EHLO stream.client.test');
        let ok = true;
        for (const line of ['MAIL FROM:<sender@remote.test>', `RCPT TO:<${RCPT}>`, 'DATA']) {
          if (!/^[23]/.test(await c.cmd(line))) {
            ok = false;
            break;
          }
        }
        if (!ok) throw new Error('refused before DATA');
        const r = await c.cmd(`Subject: ${subject}\r\nFrom: sender@remote.test\r\n\r\nbody ${subject}\r\n.`);
        if (r.startsWith('250 ')) this.acked.push({ subject, at: Date.now(), connectedAt });
        else if (r !== '(closed)') this.refusals.push({ at: Date.now(), reply: r.split('\n')[0]! });
        c.send('QUIT');
      } catch {
        await sleep(20);
      } finally {
        c?.close();
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

/** Subjects in a box's Maildir new/, read once per file name. */
class BoxIndex {
  private readonly seen = new Map<string, string>();
  constructor(readonly d: TestDaemon) {}

  async subjects(): Promise<Map<string, number>> {
    const dir = join(boxOf(this.d), 'new');
    for (const n of await readdir(dir).catch(() => [] as string[])) {
      if (this.seen.has(n)) continue;
      const text = await readFile(join(dir, n), 'utf8').catch(() => null);
      if (text === null) continue;
      this.seen.set(n, /^Subject: (.*)$/m.exec(text)?.[1]?.trim() ?? '');
    }
    const count = new Map<string, number>();
    for (const s of this.seen.values()) count.set(s, (count.get(s) ?? 0) + 1);
    return count;
  }

  /** Acknowledged subjects not (yet) in the box, after waiting up to timeoutMs for them. */
  async missing(want: string[], timeoutMs: number): Promise<{ missing: string[]; dups: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const have = await this.subjects();
      const missing = want.filter((s) => !have.has(s));
      if (missing.length === 0 || Date.now() > deadline) {
        const dups = [...have.values()].filter((n) => n > 1).length;
        return { missing, dups };
      }
      await sleep(200);
    }
  }
}

interface Round { n: number; killed: string; failoverMs: number; promotedMs: number; activateMs: number; swept: number; acked: number; missing: number; dups: number; refusals: number; rejoinMs: number }

async function failoverPart(): Promise<{ rounds: Round[]; problems: string[] }> {
  const rounds: Round[] = [];
  const problems: string[] = [];
  console.log(`\n== 1. failover under kill -9 (heartbeatMs 200, deadMs 1500: the defaults; serial cable + network link) ==`);
  console.log(`${STREAM_CLIENTS} clients send to the service address all along, one message per connection; ${KILLS} kills of whichever box is active;`);
  console.log('the killed box is restarted right after the survivor\'s first 250 and must be back in sync (rejoin ms) before the next kill.');
  console.log('failover = SIGKILL of the active -> first 250 on a connection opened after the kill (only the survivor can give it).');
  console.log('promoted = SIGKILL -> the survivor logs ha.promoted (detection + role change); activate = its mail services starting (from that log line);');
  console.log('swept    = spool files the survivor removed as unreferenced while starting its services (its spool.sweep log line); a standby');
  console.log('           keeps every replicated message\'s spool file until it is promoted, so activate grows with the mail taken since it last joined.');
  console.log('missing  = messages acknowledged so far (all rounds) that are not in the survivor\'s Maildir new/ (waited up to 20 s for delivery).');
  const { p, active: first, standby: second } = await startPair(NET_FAILOVER);
  let active = first;
  let standby = second;
  const index = new Map<TestDaemon, BoxIndex>([
    [p.a, new BoxIndex(p.a)],
    [p.b, new BoxIndex(p.b)],
  ]);
  const stream = new Stream(p.service, p.ports.mx);
  const head = ['round', 'killed', 'failover ms', 'promoted ms', 'activate ms', 'swept', 'acked', 'missing', 'dup subj', '4xx', 'rejoin ms'];
  const widths = [5, 6, 11, 11, 11, 6, 6, 7, 8, 4, 9];
  const row = (cols: string[]) => cols.map((c, i) => c.padStart(widths[i]!)).join(' ');
  try {
    stream.start(STREAM_CLIENTS);
    console.log('\n' + row(head));
    for (let n = 1; n <= KILLS; n++) {
      const base = stream.acked.length;
      await until('the pair to take messages before the kill', () => stream.acked.length >= base + ACKS_BEFORE_KILL, 30_000);
      const refusedBefore = stream.refusals.length;
      const killed = active;
      const survivor = standby;
      const tKill = Date.now();
      await killed.kill9();
      let first: Ack;
      try {
        first = await until('a 250 from the survivor', () => stream.acked.find((a) => a.connectedAt > tKill), 20_000, 5);
      } catch (err) {
        const st = await p.status(survivor).catch((e: Error) => ({ error: e.message }));
        problems.push(`round ${n}: no 250 from the survivor ${survivor.host} within 20 s of killing ${killed.host}; its status: ${JSON.stringify(st)}\n${await evidence([killed, survivor], tKill - 3000, Date.now())}`);
        throw err;
      }
      const failoverMs = first.at - tKill;
      const st = await p.status(survivor);
      if (st.role !== 'active') problems.push(`round ${n}: the survivor ${survivor.host} says it is ${st.role} after answering 250`);
      const since = (await logLines(survivor)).filter((l) => (l.time ?? 0) >= tKill);
      const promoted = since.find((l) => l.evt === 'ha.promoted');
      const swept = since.find((l) => l.evt === 'spool.sweep');
      // The killed box comes back at once and rejoins as the standby, the stream going on;
      // meanwhile the survivor is checked for every message acknowledged so far.
      const t0 = Date.now();
      const relaunched = launch(killed);
      relaunched.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
      const want = stream.acked.map((a) => a.subject);
      const { missing, dups } = await index.get(survivor)!.missing(want, 20_000);
      await relaunched;
      if (missing.length) problems.push(`round ${n}: ${missing.length} acknowledged message(s) missing from the survivor ${survivor.host}: ${missing.slice(0, 10).join(', ')}\n${await evidence([killed, survivor], tKill - 3000, Date.now())}`);
      if (failoverMs > FAILOVER_TARGET_MS) problems.push(`round ${n}: failover took ${failoverMs} ms (> ${FAILOVER_TARGET_MS})\n${await evidence([killed, survivor], tKill - 1000, first.at + 500)}`);
      const refusals = stream.refusals.slice(refusedBefore);
      let synced: { active: TestDaemon; standby: TestDaemon };
      try {
        synced = await waitInSync(p, 60_000);
      } catch (err) {
        problems.push(`round ${n}: ${killed.host} did not get back in sync within 60 s of its restart\n${await evidence([killed, survivor], t0, Date.now())}`);
        throw err;
      }
      // From the killed box's start to its 'standby, in sync' log line (the bench's own
      // Maildir check above runs meanwhile and is not part of it).
      const back = (await logLines(killed)).filter((l) => (l.time ?? 0) >= t0);
      const startedAt = back.find((l) => l.evt === 'ha.start')?.time;
      const syncedAt = back.find((l) => l.evt === 'ha.role' && l.to === 'standby')?.time;
      const rejoinMs = startedAt && syncedAt ? syncedAt - startedAt : Date.now() - t0;
      if (synced.active !== survivor) problems.push(`round ${n}: after the rejoin ${synced.active.host} is active, not the survivor ${survivor.host}`);
      ({ active, standby } = synced);
      rounds.push({
        n,
        killed: killed === p.a ? 'a' : 'b',
        failoverMs,
        promotedMs: promoted?.time !== undefined ? promoted.time - tKill : NaN,
        activateMs: Number(promoted?.ms ?? NaN),
        swept: Number(swept?.removed ?? 0),
        acked: want.length,
        missing: missing.length,
        dups,
        refusals: refusals.length,
        rejoinMs,
      });
      const r = rounds[rounds.length - 1]!;
      console.log(row([String(n), r.killed, String(r.failoverMs), fmt(r.promotedMs), fmt(r.activateMs), String(r.swept), String(r.acked), String(r.missing), String(r.dups), String(r.refusals), String(r.rejoinMs)]));
      if (refusals.length) console.log(`      4xx replies in round ${n}: ${[...new Set(refusals.map((x) => x.reply))].join(' | ')}`);
    }
    await stream.stop();
    // The end: every acknowledged message on both disks.
    const want = stream.acked.map((a) => a.subject);
    for (const d of [active, standby]) {
      const { missing, dups } = await index.get(d)!.missing(want, 30_000);
      console.log(`after the stream: ${d === active ? 'active ' : 'standby'} ${d.host} holds ${want.length - missing.length} of ${want.length} acknowledged messages (${dups} subject(s) twice)`);
      if (missing.length) problems.push(`end: ${missing.length} acknowledged message(s) missing on ${d.host}: ${missing.slice(0, 10).join(', ')}`);
    }
    const f = rounds.map((r) => r.failoverMs);
    console.log(`\nfailover over ${rounds.length} kills: median ${median(f)} ms, max ${Math.max(...f)} ms, min ${Math.min(...f)} ms`);
    console.log(`promoted (kill -> ha.promoted): median ${fmt(median(rounds.map((r) => r.promotedMs)))} ms; rejoin of the killed box (its start -> standby in sync, from its log): median ${fmt(median(rounds.map((r) => r.rejoinMs)))} ms`);
    console.log(`acknowledged messages missing from the survivor after each kill: ${rounds.map((r) => r.missing).join(', ')} (total ${rounds.reduce((s, r) => s + r.missing, 0)})`);
    // Nothing is cut in this bench: every link fault reported is a false alarm.
    const faults = (await Promise.all([p.a, p.b].map(logLines))).flat().filter((l) => l.kind === 'ha.linkFault');
    console.log(`ha.linkFault events (critical) logged by the two boxes, though no link was cut: ${faults.length} (${[...new Set(faults.map((l) => String(l.msg).replace(/;.*$/, '')))].join(' | ')})`);
    console.log(`peak RSS (VmHWM): ${p.a.host} ${fmt((await vmHwmKiB(p.a.proc!.pid!)) / 1024, 1)} MB, ${p.b.host} ${fmt((await vmHwmKiB(p.b.proc!.pid!)) / 1024, 1)} MB (since each box's last restart)`);
  } finally {
    await stream.stop();
    await p.cleanup();
  }
  return { rounds, problems };
}

// ---------------------------------------------------------------------------------------
// Part 2: accept throughput and commit latency.

interface Server { name: string; host: string; port: number; box: string; rcpt: string; pids: Record<string, number> }
interface Tput { rate: number; cpuMsPerMsg: Record<string, number>; busy: number; iowait: number }

/** utime + stime of a process, ms. */
async function cpuMs(pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

/** Jiffies of the whole machine: all, and idle and iowait among them. */
async function machineTicks(): Promise<{ all: number; idle: number; iowait: number }> {
  const v = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  return { all: v.reduce((a, b) => a + b, 0), idle: v[3]!, iowait: v[4]! };
}

async function newFiles(box: string): Promise<string[]> {
  return readdir(join(box, 'new')).catch(() => []);
}

async function cleanBox(box: string): Promise<void> {
  const dir = join(box, 'new');
  await Promise.all((await newFiles(box)).map((f) => rm(join(dir, f), { force: true })));
}

async function waitDelivered(box: string, want: number, timeoutMs = 120_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = (await newFiles(box)).length;
    if (n >= want || Date.now() > deadline) return n;
    await sleep(20);
  }
}

const CELL = { size: 1024, conc: 10, count: Math.max(50, Math.round(2000 * SCALE)) };

/**
 * smtp-source in session mode (-d); msg/s of accepted messages, all checked in new/ after.
 * Also the CPU each mlsd process spent per message, and how busy the machine was, over the
 * smtp-source run.
 */
async function throughputRun(s: Server, count = CELL.count): Promise<Tput> {
  await cleanBox(s.box);
  const args = ['-s', String(CELL.conc), '-l', String(CELL.size), '-m', String(count), '-d', '-f', 'a@client.test', '-t', s.rcpt, `${s.host}:${s.port}`];
  const cpu0 = await Promise.all(Object.values(s.pids).map(cpuMs));
  const m0 = await machineTicks();
  const t0 = process.hrtime.bigint();
  const r = await run(SMTP_SOURCE, args);
  const t1 = process.hrtime.bigint();
  const m1 = await machineTicks();
  const cpu1 = await Promise.all(Object.values(s.pids).map(cpuMs));
  if (r.code !== 0) throw new Error(`${s.name}: smtp-source ${args.join(' ')} failed (${r.code}): ${r.out.trim()}`);
  const n = await waitDelivered(s.box, count);
  if (n !== count) throw new Error(`${s.name}: ${n} of ${count} messages delivered to ${s.box}/new`);
  const files = await newFiles(s.box);
  const sz = (await stat(join(s.box, 'new', files[0]!))).size;
  if (sz < CELL.size * 0.97) throw new Error(`${s.name}: delivered file is ${sz} bytes, payload was ${CELL.size}`);
  const all = m1.all - m0.all;
  return {
    rate: count / (Number(t1 - t0) / 1e9),
    cpuMsPerMsg: Object.fromEntries(Object.keys(s.pids).map((k, i) => [k, (cpu1[i]! - cpu0[i]!) / count])),
    busy: (100 * (all - (m1.idle - m0.idle) - (m1.iowait - m0.iowait))) / all,
    iowait: (100 * (m1.iowait - m0.iowait)) / all,
  };
}

/** End of DATA (the final dot) to the 250, per message: conc sessions of `per` messages each. */
async function latencyRun(s: Server, conc: number, per: number): Promise<number[]> {
  await cleanBox(s.box);
  const line = 'The quarterly figures are attached; please review them before Monday.';
  const body = (id: string) =>
    `From: Alice <a@client.test>\r\nTo: <${s.rcpt}>\r\nSubject: latency\r\nDate: ${new Date().toUTCString().replace('GMT', '+0000')}\r\nMessage-ID: <${id}@client.test>\r\n\r\n` + (line + '\r\n').repeat(13) + '.\r\n';
  const ms: number[] = [];
  await Promise.all(
    Array.from({ length: conc }, async (_, k) => {
      const c = await RawSmtp.open(s.host, s.port, LAT_CLIENT);
      try {
        await c.reply();
        await c.cmd('EHLO bench.client.test');
        for (let i = 0; i < per; i++) {
          await c.cmd('MAIL FROM:<a@client.test>');
          await c.cmd(`RCPT TO:<${s.rcpt}>`);
          const d = await c.cmd('DATA');
          if (!d.startsWith('354')) throw new Error(`${s.name}: DATA refused: ${d}`);
          const t0 = process.hrtime.bigint();
          c.writeRaw(body(`${k}.${i}.${Math.random().toString(36).slice(2)}`));
          const r = await c.reply();
          ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
          if (!r.startsWith('250')) throw new Error(`${s.name}: ${r}`);
        }
        await c.cmd('QUIT');
      } finally {
        c.close();
      }
    }),
  );
  const n = await waitDelivered(s.box, conc * per);
  if (n !== conc * per) throw new Error(`${s.name}: ${n} of ${conc * per} latency messages delivered`);
  return ms;
}

async function acceptPart(): Promise<{ problems: string[]; ratio: number }> {
  const problems: string[] = [];
  console.log(`\n== 2. accept throughput and commit latency: HA in sync vs HA off vs Postfix ==`);
  console.log(`smtp-source -s ${CELL.conc} -l ${CELL.size} -m ${CELL.count} -d (session mode) to a local Maildir user; msg/s = accepted messages / smtp-source wall clock; all verified in new/ after each run.`);
  console.log('mlsd HA = the active of an in-sync pair, through the service address: every 250 waits for the standby\'s fsync (ha.onPeerLost accept, syncTimeoutMs 2000).');
  console.log(`both boxes of the pair share this machine's ${availableParallelism()} cores and its one disk with each other and the client (on the appliance each box has its own).`);

  let solo: TestDaemon | null = null;
  let pair: HaPair | null = null;
  let pfStarted = false;
  const cleanup = async () => {
    await solo?.cleanup();
    solo = null;
    await pair?.cleanup();
    pair = null;
    if (pfStarted) await run('bash', [PF_SCRIPT, 'stop']);
    pfStarted = false;
  };
  cleanupHooks.push(cleanup);
  try {
    const pf = await run('bash', [PF_SCRIPT, 'start', String(PF_PORT), 'maildir']);
    pfStarted = true;
    if (pf.code !== 0) throw new Error(`postfix-reference.sh start failed: ${pf.out}`);
    solo = await TestDaemon.create({ host: SOLO_HOST });
    await patchConfig(solo, noGreetingDelay);
    await launch(solo);
    await addUser(solo, RCPT);
    const started = await startPair(NET_PAIR);
    pair = started.p;
    const { active, standby } = started;
    const servers: Server[] = [
      { name: 'mlsd', host: SOLO_HOST, port: solo.ports.mx, box: boxOf(solo), rcpt: RCPT, pids: { mlsd: solo.proc!.pid! } },
      { name: 'mlsd HA', host: pair.service, port: pair.ports.mx, box: boxOf(active), rcpt: RCPT, pids: { active: active.proc!.pid!, standby: standby.proc!.pid! } },
      { name: 'postfix', host: PF_HOST, port: PF_PORT, box: PF_BOX, rcpt: PF_RCPT, pids: {} },
    ];
    const haStatus = () => pair!.status(active);
    let haSent = 0;
    const checkInSync = async (what: string) => {
      const st = await haStatus();
      if (!st.replication.startsWith('in sync') || st.oneDiskOnly !== 0)
        problems.push(`${what}: the pair was not in sync (replication "${st.replication}", ${st.oneDiskOnly} message(s) on one disk only), so HA figures are not what they claim\n${await evidence([active, standby], Date.now() - 120_000, Date.now())}`);
    };
    const rotate = <T>(xs: T[], r: number) => xs.map((_, i) => xs[(i + r) % xs.length]!);
    // Warm-up: JIT, Postfix's process pools, the mailboxes.
    for (const s of servers) {
      await throughputRun(s, 200);
      if (s.name === 'mlsd HA') haSent += 200;
    }
    await checkInSync('warm-up');

    const runs: Record<string, Tput[]> = Object.fromEntries(servers.map((s) => [s.name, []]));
    for (let r = 0; r < REPEAT; r++)
      for (const s of rotate(servers, r)) {
        runs[s.name]!.push(await throughputRun(s));
        if (s.name === 'mlsd HA') {
          haSent += CELL.count;
          await checkInSync(`throughput run ${r + 1}`);
        }
      }
    const col = (c: string, i: number) => c.padStart(i === 0 ? 10 : 10);
    console.log('\n' + ['server', 'msg/s', 'runs', 'vs no-HA', 'vs postfix'].map(col).join(' '));
    const m = Object.fromEntries(servers.map((s) => [s.name, median(runs[s.name]!.map((x) => x.rate))])) as Record<string, number>;
    for (const s of servers)
      console.log([s.name, fmt(m[s.name]!), runs[s.name]!.map((x) => fmt(x.rate)).join('/'), fmt(m[s.name]! / m.mlsd!, 2), fmt(m[s.name]! / m.postfix!, 2)].map(col).join(' '));
    const ratio = m['mlsd HA']! / m.mlsd!;
    console.log(`HA/no-HA throughput ratio: ${fmt(ratio, 2)} (target >= ${HA_RATIO_TARGET}); mlsd/postfix ${fmt(m.mlsd! / m.postfix!, 2)}, mlsd HA/postfix ${fmt(m['mlsd HA']! / m.postfix!, 2)}`);
    console.log('\nwhere the time goes (medians over the runs): CPU ms per message of each mlsd process; the machine\'s busy and iowait share of its cores:');
    for (const s of servers) {
      const rs = runs[s.name]!;
      const cpu = Object.keys(s.pids).map((k) => `${k} ${fmt(median(rs.map((x) => x.cpuMsPerMsg[k]!)), 2)}`);
      console.log(`  ${s.name.padEnd(8)} ${(cpu.join(', ') || '(several processes, not counted)').padEnd(36)} busy ${fmt(median(rs.map((x) => x.busy)))}%, iowait ${fmt(median(rs.map((x) => x.iowait)))}%`);
    }

    const LAT = [
      { conc: 1, per: Math.max(20, Math.round(200 * SCALE)) },
      { conc: 10, per: Math.max(10, Math.round(100 * SCALE)) },
    ];
    for (const { conc, per } of LAT) {
      const lat: Record<string, number[]> = Object.fromEntries(servers.map((s) => [s.name, []]));
      for (let r = 0; r < REPEAT; r++)
        for (const s of rotate(servers, r)) {
          lat[s.name]!.push(...(await latencyRun(s, conc, per)));
          if (s.name === 'mlsd HA') {
            haSent += conc * per;
            await checkInSync(`latency run c${conc}`);
          }
        }
      console.log(`\ncommit latency, end of DATA to 250, ms (1 KiB; ${conc === 1 ? 'one session, sequential' : `${conc} concurrent sessions`}, ${per} messages each, ${REPEAT} runs pooled: ${conc * per * REPEAT} samples):`);
      console.log(['server', 'p50', 'p90', 'p99', 'max'].map((c, i) => c.padStart(i === 0 ? 10 : 8)).join(' '));
      const sorted = Object.fromEntries(servers.map((s) => [s.name, lat[s.name]!.sort((a, b) => a - b)])) as Record<string, number[]>;
      for (const s of servers) console.log([s.name.padStart(10), ...[50, 90, 99, 100].map((p) => fmt(pct(sorted[s.name]!, p), 2).padStart(8))].join(' '));
      const ha = sorted['mlsd HA']!;
      console.log(`HA added: p50 +${fmt(pct(ha, 50) - pct(sorted.mlsd!, 50), 2)} ms, p99 +${fmt(pct(ha, 99) - pct(sorted.mlsd!, 99), 2)} ms; mlsd HA/postfix p50 ${fmt(pct(ha, 50) / pct(sorted.postfix!, 50), 2)}, p99 ${fmt(pct(ha, 99) / pct(sorted.postfix!, 99), 2)}`);
    }

    // The standby got every message the active delivered (its Maildir is never cleaned here).
    const onStandby = await waitDelivered(boxOf(standby), haSent, 30_000);
    console.log(`\nstandby ${standby.host} Maildir holds ${onStandby} of the ${haSent} messages the active took in part 2`);
    if (onStandby !== haSent) problems.push(`part 2: the standby holds ${onStandby} of ${haSent} messages`);
    const spoolFiles = async (d: TestDaemon) => (await readdir(join(d.dataDir, 'spool')).catch(() => [] as string[])).filter((n) => n.endsWith('.eml')).length;
    console.log(`spool .eml files at the end (all mail delivered): active ${await spoolFiles(active)}, standby ${await spoolFiles(standby)}`);
    const st = await haStatus();
    console.log(`pair at the end: active ${active.host} replication "${st.replication}", oneDiskOnly ${st.oneDiskOnly}, epoch ${st.epoch}`);
    const hwm = async (d: TestDaemon) => fmt((await vmHwmKiB(d.proc!.pid!)) / 1024, 1);
    console.log(`peak RSS (VmHWM over part 2): HA active ${await hwm(active)} MB, HA standby ${await hwm(standby)} MB, mlsd without HA ${await hwm(solo)} MB`);
    return { problems, ratio };
  } finally {
    await cleanup();
  }
}

const cleanupHooks: (() => Promise<void>)[] = [];

async function main(): Promise<void> {
  const t0 = Date.now();
  logDir = await mkdtemp(join(tmpdir(), 'mlsd-bench-ha-logs-'));
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void Promise.all(cleanupHooks.map((f) => f())).finally(() => process.exit(130)));
  console.log(`ha: nproc ${availableParallelism()}, node ${process.version}; mlsd runs with its unit's node flags (${(await unitNodeFlags()).join(' ') || 'none'}), logs to ${logDir}`);
  console.log('MX listeners without greeting delay (as in smtp-accept; the MX default is 100 ms), so no client waits for a greeting.');
  const problems: string[] = [];
  let rounds: Round[] = [];
  let ratio = NaN;
  if (!ONLY || ONLY === 'failover') {
    try {
      const r = await failoverPart();
      rounds = r.rounds;
      problems.push(...r.problems);
    } catch (err) {
      problems.push(`failover part aborted: ${(err as Error).message}`);
    }
  }
  if (!ONLY || ONLY === 'accept') {
    try {
      const r = await acceptPart();
      ratio = r.ratio;
      problems.push(...r.problems);
    } catch (err) {
      problems.push(`accept part aborted: ${(err as Error).stack ?? (err as Error).message}`);
    }
  }
  console.log('\ntargets:');
  const check = (label: string, ok: boolean, detail: string) => console.log(`  ${ok ? 'MET   ' : 'MISSED'} ${label}: ${detail}`);
  if (rounds.length) {
    const f = rounds.map((r) => r.failoverMs);
    check(`failover <= ${FAILOVER_TARGET_MS} ms on every kill`, Math.max(...f) <= FAILOVER_TARGET_MS, `max ${Math.max(...f)} ms over ${rounds.length} kills`);
    check('no acknowledged message lost', rounds.every((r) => r.missing === 0), `${rounds.reduce((s, r) => s + r.missing, 0)} missing`);
  }
  if (Number.isFinite(ratio)) check(`HA/no-HA throughput >= ${HA_RATIO_TARGET}`, ratio >= HA_RATIO_TARGET, fmt(ratio, 2));
  if (problems.length) {
    console.log(`\nproblems (${problems.length}); logs kept in ${logDir}:`);
    for (const p of problems) console.log('  - ' + p);
    process.exitCode = 1;
  } else if (!process.env.BENCH_KEEP_LOGS) await rm(logDir, { recursive: true, force: true });
  console.log(`\nha bench took ${fmt((Date.now() - t0) / 1000)} s`);
}

main().catch((err: Error) => {
  console.error(`ha: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
