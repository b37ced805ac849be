/**
 * What archiving costs SMTP acceptance, through real SMTP: mlsd (dist/src/cli.js start, as
 * the unit runs it) with archive.enabled false and true, and the reference Postfix without
 * and with a copy of every message for archiving (always_bcc to a local archive mailbox),
 * all fed the same corpus messages by the same clients (CONC sessions, each sending message
 * after message). A round runs each of the four once, alternating the order; each round
 * sends the next slice of the corpus, so the archive never sees a round's bytes twice.
 * Before the next run, every message is in its mailbox and (archive on) in the archive.
 */
import { readdir, rm, appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, runCli } from '../../helpers/daemon.js';
import { RawSmtp } from '../../helpers/smtp-client.js';
import { PF_SCRIPT, run, startMlsd, type BenchMlsd } from '../lib.js';
import { Corpus, type CorpusMessage } from './corpus.js';
import { fmt, now, pct, procKiB, row } from './measure.js';

const MLSD_OFF_HOST = '127.0.130.1';
const MLSD_ON_HOST = '127.0.130.2';
/** The reference Postfix's listener of this bench (added next to the script's 127.0.0.1 one). */
const PF_HOST = '127.0.130.9';
const PF_PORT = 2526;
/** Each client session connects from its own address. */
const clientAddress = (k: number) => `127.0.130.${100 + k}`;
const USERS = Array.from({ length: 10 }, (_, i) => `u${i}@bench.test`);
const PF_VHOSTS = '/var/mail/vhosts/bench.test';
const PF_ARCHIVE = 'archive@bench.test';
export const SMTP_TARGET_RATIO = 0.9;

interface Target {
  name: string;
  host: string;
  port: number;
  /** Maildir new/ folders the run's messages land in. */
  boxes: string[];
  /** How many files a run of n messages leaves in them. */
  files: (n: number) => number;
  /** Waits until the archive holds everything sent so far (mlsd, archive on). */
  settle?: () => Promise<void>;
}

interface RunFigures {
  rate: number;
  lat: number[];
  /** From the last 250 to every copy in its mailbox (and, archive on, in the archive). */
  settleMs: number;
}

/** A message on the wire: dot-stuffed, ending in the final dot. */
interface Wire {
  from: string;
  rcpt: string;
  data: Buffer;
}

function wire(m: CorpusMessage, i: number): Wire {
  const s = m.bytes.toString('latin1').replace(/^\./, '..').replace(/\r\n\./g, '\r\n..');
  return { from: m.rec.from, rcpt: USERS[i % USERS.length]!, data: Buffer.from(`${s.endsWith('\r\n') ? s : `${s}\r\n`}.\r\n`, 'latin1') };
}

async function countFiles(dirs: string[]): Promise<number> {
  let n = 0;
  for (const d of dirs) n += (await readdir(d).catch(() => [])).length;
  return n;
}

async function emptyBoxes(dirs: string[]): Promise<void> {
  for (const d of dirs) await Promise.all((await readdir(d).catch(() => [])).map((f) => rm(join(d, f), { force: true })));
}

/** Sends every message over `conc` sessions; latency = end of DATA to the 250. */
async function load(t: Target, msgs: Wire[], conc: number): Promise<RunFigures> {
  await emptyBoxes(t.boxes);
  const lat: number[] = [];
  let next = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: conc }, async (_, k) => {
      const c = await RawSmtp.open(t.host, t.port, clientAddress(k));
      const expect = async (line: string, code: string) => {
        const r = await c.cmd(line);
        if (!r.startsWith(code)) throw new Error(`${t.name}: ${line} -> ${r}`);
      };
      if (!(await c.reply()).startsWith('220')) throw new Error(`${t.name}: no greeting`);
      await expect('EHLO client.bench.test', '250');
      for (let i = next++; i < msgs.length; i = next++) {
        const m = msgs[i]!;
        await expect(`MAIL FROM:<${m.from}>`, '250');
        await expect(`RCPT TO:<${m.rcpt}>`, '250');
        await expect('DATA', '354');
        const s = now();
        c.writeRaw(m.data);
        const r = await c.reply(120_000);
        lat.push(now() - s);
        if (!r.startsWith('250')) throw new Error(`${t.name}: message ${i} -> ${r}`);
      }
      await c.cmd('QUIT');
      c.close();
    }),
  );
  const t1 = now();
  const want = t.files(msgs.length);
  for (const deadline = Date.now() + 600_000; (await countFiles(t.boxes)) < want; await sleep(50))
    if (Date.now() > deadline) throw new Error(`${t.name}: ${await countFiles(t.boxes)} of ${want} copies delivered after 10 min`);
  await t.settle?.();
  return { rate: msgs.length / ((t1 - t0) / 1000), lat: lat.sort((a, b) => a - b), settleMs: now() - t1 };
}

async function startMlsdFor(host: string, archive: boolean, parentDir: string): Promise<BenchMlsd & { port: number }> {
  const port = await freePort(host);
  const m = await startMlsd(
    {
      hostname: 'mx.bench.test',
      domains: ['bench.test'],
      smtp: { listeners: [{ name: 'mx', host, port, starttls: true, greetingDelayMs: 0 }] },
      spool: { minFreeBytes: 0 },
      archive: { enabled: archive },
    },
    USERS,
    parentDir,
  );
  return { ...m, port };
}

/** The archive's own state, from `mlsd status --json`: chain records, messages still in the intake, indexed up to. */
async function archiveState(m: BenchMlsd): Promise<{ records: number; intake: number; indexedUpTo: number }> {
  const r = await runCli(['status', '--json', '--config-dir', m.configDir]);
  if (r.code !== 0) throw new Error(`status: ${r.stderr}`);
  const s = (JSON.parse(r.stdout) as { archive?: { records: number; intake: number; indexedUpTo: number } }).archive;
  if (!s) throw new Error('status --json has no archive section');
  return s;
}

/** The reference Postfix with this bench's listener and, for the "bcc" runs, always_bcc to an archive mailbox. */
async function startPostfix(): Promise<{ setBcc: (on: boolean) => Promise<void>; stop: () => Promise<void> }> {
  const r = await run('bash', [PF_SCRIPT, 'start', String(PF_PORT), 'maildir']);
  if (r.code !== 0) throw new Error(`postfix-reference.sh start failed: ${r.out}`);
  const postconf = async (...args: string[]) => {
    const p = await run('postconf', args);
    if (p.code !== 0) throw new Error(`postconf ${args.join(' ')}: ${p.out}`);
  };
  const reload = async () => {
    const p = await run('postfix', ['reload']);
    if (p.code !== 0) throw new Error(`postfix reload: ${p.out}`);
    for (let i = 0; i < 100; i++) {
      const ok = await RawSmtp.open(PF_HOST, PF_PORT).then(
        (c) => (c.close(), true),
        () => false,
      );
      if (ok) return;
      await sleep(100);
    }
    throw new Error(`postfix: nothing listening on ${PF_HOST}:${PF_PORT}`);
  };
  // The archive mailbox joins the script's mailbox map; the listener on our own loopback address joins master.cf.
  const maps = '/etc/postfix/reference_mailboxes';
  if (!(await readFile(maps, 'utf8')).includes(PF_ARCHIVE)) await appendFile(maps, `${PF_ARCHIVE} bench.test/archive/\n`);
  const pm = await run('postmap', [maps]);
  if (pm.code !== 0) throw new Error(`postmap: ${pm.out}`);
  await postconf('-M', `${PF_HOST}:${PF_PORT}/inet=${PF_HOST}:${PF_PORT} inet n - n - - smtpd`);
  await postconf('-e', 'always_bcc =');
  await reload();
  return {
    setBcc: async (on) => {
      await postconf('-e', `always_bcc = ${on ? PF_ARCHIVE : ''}`);
      await reload();
    },
    stop: async () => {
      await run('postconf', ['-e', 'always_bcc =']);
      await run('postconf', ['-MX', `${PF_HOST}:${PF_PORT}/inet`]);
      const lines = (await readFile(maps, 'utf8')).split('\n').filter((l) => !l.startsWith(PF_ARCHIVE));
      await writeFile(maps, lines.join('\n'));
      await run('postmap', [maps]);
      await run('bash', [PF_SCRIPT, 'stop']);
    },
  };
}

export interface SmtpCostOptions {
  messages: number;
  rounds: number;
  conc: number;
  parentDir: string;
  log: (s: string) => void;
}

export async function smtpCost(o: SmtpCostOptions): Promise<void> {
  const { log } = o;
  const cleanup: (() => Promise<void>)[] = [];
  try {
    const off = await startMlsdFor(MLSD_OFF_HOST, false, o.parentDir);
    cleanup.push(async () => {
      await off.stop();
      await rm(off.root, { recursive: true, force: true });
    });
    const on = await startMlsdFor(MLSD_ON_HOST, true, o.parentDir);
    cleanup.push(async () => {
      await on.stop();
      await rm(on.root, { recursive: true, force: true });
    });
    const pf = await startPostfix();
    cleanup.push(pf.stop);
    const mlsdBoxes = (m: BenchMlsd) => USERS.map((u) => join(m.dataDir, 'mail', 'bench.test', u.split('@')[0]!, 'Maildir', 'new'));
    const pfBoxes = USERS.map((u) => join(PF_VHOSTS, u.split('@')[0]!, 'new'));
    let sent = 0;
    // Everything sent is out of the intake, in the chain and in the index.
    const settleArchive = async () => {
      for (const deadline = Date.now() + 1_800_000; ; await sleep(200)) {
        const s = await archiveState(on);
        if (s.intake === 0 && s.records >= sent && s.indexedUpTo >= s.records) return;
        if (Date.now() > deadline) throw new Error(`archive: ${s.records} records, ${s.intake} in the intake, indexed up to ${s.indexedUpTo} after 30 min`);
      }
    };
    const targets: Record<string, Target> = {
      'mlsd off': { name: 'mlsd archive off', host: MLSD_OFF_HOST, port: off.port, boxes: mlsdBoxes(off), files: (n) => n },
      'mlsd on': { name: 'mlsd archive on', host: MLSD_ON_HOST, port: on.port, boxes: mlsdBoxes(on), files: (n) => n, settle: settleArchive },
      'postfix': { name: 'postfix', host: PF_HOST, port: PF_PORT, boxes: pfBoxes, files: (n) => n },
      'postfix bcc': { name: 'postfix always_bcc', host: PF_HOST, port: PF_PORT, boxes: [...pfBoxes, join(PF_VHOSTS, 'archive', 'new')], files: (n) => 2 * n },
    };
    const corpus = new Corpus({ count: o.messages * (o.rounds + 1), ruleset: 'smtp' });
    const slice = (n: number) => Array.from({ length: n }, (_, i) => wire(corpus.next(), i));
    // Warm-up: JIT, caches, mailboxes made; the archive's first batch.
    const warm = slice(Math.min(500, o.messages));
    for (const name of Object.keys(targets)) {
      if (name === 'postfix bcc') await pf.setBcc(true);
      if (name === 'mlsd on') sent += warm.length;
      await load(targets[name]!, warm, o.conc);
      if (name === 'postfix bcc') await pf.setBcc(false);
    }
    const got: Record<string, RunFigures[]> = { 'mlsd off': [], 'mlsd on': [], postfix: [], 'postfix bcc': [] };
    const widths = [20, 6, 7, 9, 8, 8, 10];
    log(row(['run', 'round', 'msgs', 'msg/s', 'p50 ms', 'p95 ms', 'settle s'], widths));
    for (let r = 0; r < o.rounds; r++) {
      const msgs = slice(o.messages);
      const order = r % 2 === 0 ? ['mlsd off', 'mlsd on', 'postfix', 'postfix bcc'] : ['postfix bcc', 'postfix', 'mlsd on', 'mlsd off'];
      for (const name of order) {
        if (name === 'postfix bcc') await pf.setBcc(true);
        if (name === 'mlsd on') sent += msgs.length;
        const f = await load(targets[name]!, msgs, o.conc);
        if (name === 'postfix bcc') await pf.setBcc(false);
        got[name]!.push(f);
        log(row([targets[name]!.name, String(r + 1), String(msgs.length), fmt(f.rate), fmt(pct(f.lat, 50), 1), fmt(pct(f.lat, 95), 1), fmt(f.settleMs / 1000, 1)], widths));
      }
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
    const sum = (name: string) => {
      const runs = got[name]!;
      return { rate: median(runs.map((x) => x.rate)), p50: median(runs.map((x) => pct(x.lat, 50))), p95: median(runs.map((x) => pct(x.lat, 95))) };
    };
    const a = sum('mlsd off');
    const b = sum('mlsd on');
    const pa = sum('postfix');
    const pb = sum('postfix bcc');
    log(`\nmedians over ${o.rounds} rounds (${o.messages} corpus messages each, ${o.conc} sessions):`);
    const w2 = [22, 9, 8, 8];
    log(row(['', 'msg/s', 'p50 ms', 'p95 ms'], w2));
    for (const [label, s] of [['mlsd archive off', a], ['mlsd archive on', b], ['postfix', pa], ['postfix always_bcc', pb]] as const) log(row([label, fmt(s.rate), fmt(s.p50, 1), fmt(s.p95, 1)], w2));
    log(`mlsd archive on/off: accept rate ${fmt(b.rate / a.rate, 3)}, p50 latency ${fmt(b.p50 / a.p50, 2)}x, p95 ${fmt(b.p95 / a.p95, 2)}x`);
    log(`postfix always_bcc/plain: accept rate ${fmt(pb.rate / pa.rate, 3)}, p50 latency ${fmt(pb.p50 / pa.p50, 2)}x, p95 ${fmt(pb.p95 / pa.p95, 2)}x`);
    log(`mlsd/postfix: plain ${fmt(a.rate / pa.rate, 2)}x, archiving ${fmt(b.rate / pb.rate, 2)}x (accept rate)`);
    log(`target archive costs at most ${fmt((1 - SMTP_TARGET_RATIO) * 100)} % of the accept rate: ${b.rate / a.rate >= SMTP_TARGET_RATIO ? 'MET' : 'MISSED'} (on/off ${fmt(b.rate / a.rate, 3)})`);
    log(`peak RSS: mlsd archive off ${fmt((await procKiB('VmHWM', off.pid)) / 1024, 1)} MiB, archive on ${fmt((await procKiB('VmHWM', on.pid)) / 1024, 1)} MiB`);
  } finally {
    for (const c of cleanup.reverse()) await c().catch((err: Error) => log(`cleanup: ${err.message}`));
  }
}
