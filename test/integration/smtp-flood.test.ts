import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { TestDaemon, eventually } from '../helpers/daemon.js';
import { RawSmtp, timedDelivery } from '../helpers/smtp-client.js';

// Issue 12 finding 11: an idle-connection flood must not lock out the MX or submission.
// Daemon on 127.1.255.1. The flood comes from 250 addresses spread over 50 /24s
// (127.1.10-59.1-5), 12 connections each: under every per-address and per-/24 limit.
// The good MX client is 127.1.254.1, the submission client 127.1.254.2.
const HOST = '127.1.255.1';
const MX_CLIENT = '127.1.254.1';
const SUBMIT_CLIENT = '127.1.254.2';
/** Connected before the flood, talks (NOOP) every 2 s but never reaches MAIL: it is not idle. */
const TALKER = '127.1.254.3';
const PER_ADDRESS = 12;
const FLOOD_ADDRESSES = Array.from({ length: 250 }, (_, i) => `127.1.${10 + Math.floor(i / 5)}.${1 + (i % 5)}`);
const BOUND_MS = 2000;

interface FloodConn {
  sock: Socket;
  /** Everything the server wrote. */
  got: string;
  closed: boolean;
}

let d: TestDaemon;
const flood: FloodConn[] = [];

before(async () => {
  d = await TestDaemon.create({ host: HOST, config: { smtp: { maxClients: 500 }, thresholds: { alert: false } } });
  await d.start();
  await d.addUser('bob@example.test', 'bob-secret-1');
});

after(async () => {
  for (const f of flood) f.sock.destroy();
  await d.cleanup();
});

/** An idle client: connects and never says a word. */
function idle(localAddress: string): Promise<FloodConn> {
  return new Promise((resolve) => {
    const f: FloodConn = { sock: connect({ host: HOST, port: d.ports.mx, localAddress }), got: '', closed: false };
    f.sock.on('data', (b: Buffer) => (f.got += b.toString('latin1')));
    f.sock.on('error', () => undefined);
    f.sock.on('close', () => {
      f.closed = true;
      resolve(f);
    });
    f.sock.once('connect', () => resolve(f));
  });
}

async function openFlood(): Promise<void> {
  const addrs = FLOOD_ADDRESSES.flatMap((a) => Array<string>(PER_ADDRESS).fill(a));
  // A few hundred connects in flight at a time: the listen backlog is the daemon's, not ours to overflow.
  for (let i = 0; i < addrs.length; i += 250) flood.push(...(await Promise.all(addrs.slice(i, i + 250).map(idle))));
}

test('an idle-connection flood of 3,000 connections from 250 addresses: a new MX client and an authenticated submission client each send within 2 s; idle flood sessions are closed with 421 4.7.0 and stress mode comes and goes', async (t) => {
  const talker = await RawSmtp.open(HOST, d.ports.mx, TALKER);
  assert.match(await talker.reply(), /^220 /);
  assert.match(await talker.cmd('EHLO talker.example.net'), /^250/);
  const noops: string[] = [];
  const talking = setInterval(() => void talker.cmd('NOOP').then((r) => noops.push(r), (e: Error) => noops.push(e.message)), 2000);
  t.after(() => {
    clearInterval(talking);
    talker.close();
  });
  await openFlood();
  // Let the flood pass the greeting delay and the connect stage.
  await new Promise((r) => setTimeout(r, 1000));
  const held = flood.filter((f) => !f.closed).length;
  assert.ok(held > 0, 'the flood holds connections open');

  const mx = await timedDelivery({ host: HOST, from: MX_CLIENT, port: d.ports.mx, sender: 'partner@remote.test', subject: `during the flood (${MX_CLIENT})` });
  assert.ok(mx.ms <= BOUND_MS, `the MX client took ${mx.ms} ms (bound ${BOUND_MS} ms):\n${mx.transcript.join('\n')}`);
  const sub = await timedDelivery({ host: HOST, from: SUBMIT_CLIENT, port: d.ports.submission, login: ['bob@example.test', 'bob-secret-1'], sender: 'bob@example.test', subject: `during the flood (${SUBMIT_CLIENT})` });
  assert.ok(sub.ms <= BOUND_MS, `the submission client took ${sub.ms} ms (bound ${BOUND_MS} ms):\n${sub.transcript.join('\n')}`);
  t.diagnostic(`flood connections held open: ${held}; MX client ${mx.ms} ms, submission client ${sub.ms} ms`);
  await eventually('both messages in the mailbox', async () => (await d.mailbox('bob')).length === 2);

  const on = await d.waitFor((l) => l.evt === 'smtp.stress.on', 1000);
  assert.equal(on.maxClients, 500);

  // The idle flood sessions do not stay for the 300 s idle timeout: under stress they are
  // closed (10 s before MAIL), each told why first.
  await eventually('every flood connection closed by the server', async () => flood.every((f) => f.closed), 30000);
  const idleClosed = flood.filter((f) => /^421 4\.7\.0 .*closing idle connection/m.test(f.got));
  assert.ok(idleClosed.length > 0, `flood sessions closed as idle with 421 4.7.0: ${idleClosed.length}`);
  const unexplained = flood.filter((f) => !/^421 /m.test(f.got));
  assert.equal(unexplained.length, 0, `flood connections closed without a 421, e.g. ${JSON.stringify(unexplained[0]?.got)}`);

  const off = await d.waitFor((l) => l.evt === 'smtp.stress.off', 15000);
  t.diagnostic(`closed as idle: ${idleClosed.length}; stress off: ${JSON.stringify(off)}`);
  clearInterval(talking);
  assert.ok(noops.length >= 5 && noops.every((r) => r.startsWith('250')), `the talking session kept its place: ${JSON.stringify(noops)}`);
  assert.match(await talker.cmd('NOOP'), /^250/);
  const evs = JSON.parse((await d.cli(['events', 'list', '--json'])).stdout) as { kind: string }[];
  assert.ok(evs.some((e) => e.kind === 'smtp.stress.on'), 'stress on is in the event log');
  assert.ok(evs.some((e) => e.kind === 'smtp.stress.off'), 'stress off is in the event log');
});
