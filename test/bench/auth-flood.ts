/**
 * AUTH flood benchmark: does a flood of wrong passwords slow the commits of normal mail?
 *
 * Every password check is an scrypt run (N=2^15, tens of ms, 32 MiB) on libuv's thread
 * pool, the pool the spool's writes and fsyncs run on. mlsd bounds concurrent checks
 * (auth.maxConcurrentChecks, auth.maxQueuedChecks; past the queue AUTH gets 454 4.7.0 with no
 * check). This bench runs mlsd twice, with the bound as shipped and with it lifted
 * (maxConcurrentChecks 1000), and in each measures:
 *   commit   DATA end -> 250 of an authenticated submission session sending one 4 KiB
 *            message after another to a local mailbox (spool fsync + synced batch before 250)
 *   login    a legitimate login (new connection, STARTTLS, AUTH) every 10th message
 * first alone, then while FLOOD connections send wrong passwords as fast as they get replies.
 * The lockout is off (maxFailures 0): a flood from many addresses (a botnet, an IPv6 /48)
 * gets past per-source locks, and it is the checks themselves that are measured.
 *
 *   node dist/test/bench/auth-flood.js
 *   BENCH_MSGS=100   messages per phase
 *   BENCH_PHASE_SECONDS=120   a phase stops sending after this (at least 10 messages)
 *   BENCH_FLOOD=16   flooding connections
 *
 * No Postfix beside it: Postfix's AUTH (Cyrus SASL, sasldb) compares a stored password in
 * another process and has no slow hash and no check queue, so "Postfix under the same
 * flood" would measure a different design, not the same job done better or worse.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { startMlsd } from './lib.js';

const HOST = '127.0.95.1';
const CLIENT = '127.0.95.2';
const USER = 'u@bench.test';
const PASSWORD = 'bench-password'; // what startMlsd gives its users
const MSGS = Math.max(20, Number(process.env.BENCH_MSGS ?? '100'));
// Without the bound a flooded commit takes seconds: the flooded phase stops at this time
// (after at least 10 messages) so the bench ends in minutes; the table says how many ran.
const PHASE_LIMIT_MS = Number(process.env.BENCH_PHASE_SECONDS ?? '120') * 1000;
const FLOOD = Math.max(1, Number(process.env.BENCH_FLOOD ?? '16'));
const BODY = `From: ${USER}\r\nTo: ${USER}\r\nSubject: bench\r\n\r\n` + `${'x'.repeat(76)}\r\n`.repeat(52); // about 4 KiB

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

async function session(port: number, from: string): Promise<RawSmtp> {
  const c = await RawSmtp.open(HOST, port, from);
  await c.reply();
  await c.cmd('EHLO bench.client');
  await c.starttls();
  await c.cmd('EHLO bench.client');
  return c;
}

interface Phase {
  commitMs: number[];
  loginMs: number[];
  loginsRefused: number;
  floodReplies: Map<string, number>;
}

async function sendAll(port: number, phase: Phase): Promise<void> {
  const c = await session(port, CLIENT);
  const r = await c.cmd(`AUTH PLAIN ${plain(USER, PASSWORD)}`);
  if (!r.startsWith('235')) throw new Error(`bench login refused: ${r}`);
  const deadline = performance.now() + PHASE_LIMIT_MS;
  for (let i = 0; i < MSGS && (i < 10 || performance.now() < deadline); i++) {
    if (i % 10 === 0) {
      const t0 = performance.now();
      const l = await session(port, CLIENT);
      const reply = await l.cmd(`AUTH PLAIN ${plain(USER, PASSWORD)}`);
      l.close();
      if (reply.startsWith('235')) phase.loginMs.push(performance.now() - t0);
      else phase.loginsRefused++;
    }
    if (!(await c.cmd(`MAIL FROM:<${USER}>`)).startsWith('250')) throw new Error('MAIL refused');
    if (!(await c.cmd(`RCPT TO:<${USER}>`)).startsWith('250')) throw new Error('RCPT refused');
    if (!(await c.cmd('DATA')).startsWith('354')) throw new Error('DATA refused');
    const t0 = performance.now();
    c.writeRaw(`${BODY}.\r\n`);
    const done = await c.reply(60_000);
    if (!done.startsWith('250')) throw new Error(`message refused: ${done}`);
    phase.commitMs.push(performance.now() - t0);
  }
  await c.cmd('QUIT');
  c.close();
}

/** FLOOD connections sending wrong passwords until `stop`; each reconnects when dropped. */
function flood(port: number, phase: Phase, stop: { now: boolean }): Promise<void[]> {
  return Promise.all(
    Array.from({ length: FLOOD }, async (_, w) => {
      while (!stop.now) {
        let c: RawSmtp | undefined;
        try {
          c = await session(port, `127.0.95.${10 + w}`);
          for (let i = 0; !stop.now && !c.closed; i++) {
            const reply = await c.cmd(`AUTH PLAIN ${plain(`guess${w}@bench.test`, `wrong-${i}`)}`);
            const key = reply.slice(0, 9);
            phase.floodReplies.set(key, (phase.floodReplies.get(key) ?? 0) + 1);
          }
        } catch {
          await sleep(10);
        } finally {
          c?.close();
        }
      }
    }),
  );
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

async function measure(label: string, auth: Record<string, unknown>): Promise<{ alone: Phase; flooded: Phase }> {
  const port = await freePort(HOST);
  const mlsd = await startMlsd(
    {
      hostname: 'mx.bench.test',
      domains: ['bench.test'],
      smtp: { listeners: [{ name: 'submission', host: HOST, port, starttls: true, authRequired: true, greetingDelayMs: 0 }] },
      auth: { lockout: { maxFailures: 0 }, ...auth },
      scan: { outbound: { enabled: false } },
      spool: { minFreeBytes: 0 },
      routing: { sourceAddress: HOST },
    },
    [USER],
  );
  const empty = (): Phase => ({ commitMs: [], loginMs: [], loginsRefused: 0, floodReplies: new Map() });
  try {
    await sendAll(port, empty()); // warm-up: first Maildir, caches, JIT
    const alone = empty();
    await sendAll(port, alone);
    const flooded = empty();
    const stop = { now: false };
    const flooding = flood(port, flooded, stop);
    await sleep(1000); // the flood is in full swing before the first measured commit
    await sendAll(port, flooded);
    stop.now = true;
    await flooding;
    console.log(`${label}: flood replies ${JSON.stringify(Object.fromEntries(flooded.floodReplies))}`);
    return { alone, flooded };
  } finally {
    await mlsd.stop();
  }
}

const f = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');

async function main(): Promise<void> {
  console.log(`AUTH flood bench: ${MSGS} messages per phase, flood of ${FLOOD} connections of wrong passwords`);
  const bounded = await measure('bounded (as shipped)', {});
  const unbounded = await measure('unbounded (maxConcurrentChecks 1000)', { maxConcurrentChecks: 1000, maxQueuedChecks: 10000 });
  const head = ['config', 'phase', 'msgs', 'commit p50 ms', 'commit p99 ms', 'login p50 ms', 'logins ok/refused'];
  const widths = [12, 8, 5, 14, 14, 13, 18];
  const row = (cols: string[]) => cols.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' ');
  console.log('\n' + row(head));
  for (const [name, r] of [['bounded', bounded], ['unbounded', unbounded]] as const) {
    for (const [phase, p] of [['alone', r.alone], ['flood', r.flooded]] as const) {
      console.log(row([name, phase, String(p.commitMs.length), f(pct(p.commitMs, 50)), f(pct(p.commitMs, 99)), f(pct(p.loginMs, 50)), `${p.loginMs.length}/${p.loginsRefused}`]));
    }
  }
  const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : '-');
  console.log('\nratios (flood / alone, same config):');
  for (const [name, r] of [['bounded', bounded], ['unbounded', unbounded]] as const) {
    console.log(`  ${name.padEnd(10)} commit p50 x${ratio(pct(r.flooded.commitMs, 50), pct(r.alone.commitMs, 50))}  p99 x${ratio(pct(r.flooded.commitMs, 99), pct(r.alone.commitMs, 99))}`);
  }
  console.log('ratios (unbounded / bounded, under the flood):');
  console.log(`  commit p50 x${ratio(pct(unbounded.flooded.commitMs, 50), pct(bounded.flooded.commitMs, 50))}  p99 x${ratio(pct(unbounded.flooded.commitMs, 99), pct(bounded.flooded.commitMs, 99))}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
