import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon, swaks, freePort, eventually, type LogLine } from '../helpers/daemon.js';
import { SmtpSink } from '../helpers/smtp-sink.js';
import type { TrafficWindow } from '../../src/stats/traffic.js';
import type { NearLimit } from '../../src/policy/thresholds.js';

/**
 * `mail stats` through the real daemon and CLI: messages sent with swaks are counted in
 * when accepted, out when they reach a mailbox or the smarthost (smtp-sink), failed when
 * the smarthost refuses them for good; the counts survive a restart. `status --json` names
 * the client near its day limit; `events list --limit` gives the newest few.
 * Addresses: 127.0.151.1 mlsd, .2 the sending PC, .25 a smarthost that accepts, .26 one that refuses.
 */
const HOST = '127.0.151.1';
const PC = '127.0.151.2';
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function send(d: TestDaemon, to: string[]): Promise<string> {
  const r = await swaks(['--server', `${d.host}:${d.ports.mx}`, '--local-interface', PC, '--from', 'alice@example.test', '--to', to.join(','), '--h-Subject', 'stats test']);
  assert.equal(r.code, 0, r.out);
  return /queued as (\w+)/.exec(r.out)![1]!;
}

async function stats(d: TestDaemon): Promise<TrafficWindow> {
  const r = await d.cli(['mail', 'stats', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as TrafficWindow;
}

type Sums = { in: number; inRecipients: number; out: number; outLocal: number; outRemote: number; failed: number };
/** Summed over the window: the test may straddle an hour or a midnight. */
function sum(rows: Sums[]): Sums {
  const s: Sums = { in: 0, inRecipients: 0, out: 0, outLocal: 0, outRemote: 0, failed: 0 };
  for (const r of rows) for (const k of Object.keys(s) as (keyof Sums)[]) s[k] += r[k];
  return s;
}

const attempt = (id: string, result: string) => (l: LogLine) => l.evt === 'delivery.attempt' && l.id === id && l.result === result;

test('mail stats counts messages in, copies delivered locally and to the smarthost, and failures; a restart keeps them', async () => {
  const okPort = await freePort('127.0.151.25');
  const accepting = await SmtpSink.start({ host: '127.0.151.25', port: okPort });
  cleanups.push(() => accepting.stop());
  const badPort = await freePort('127.0.151.26');
  const refusing = await SmtpSink.start({ host: '127.0.151.26', port: badPort, reply: 'reject-rcpt', hardReply: '550 5.1.1 <dave@remote.test>: User unknown' });
  cleanups.push(() => refusing.stop());
  const d = await TestDaemon.create({
    host: HOST,
    config: {
      relay: { allowIps: [PC], allowRecipientDomains: [], allowAuthenticated: true },
      routing: { mode: 'smarthost', sourceAddress: HOST, smarthost: { host: '127.0.151.25', port: okPort, tls: 'none' } },
      thresholds: { perIpMessagesPerDay: 5 },
    },
  });
  cleanups.push(() => d.cleanup());
  await d.start();
  await d.addUser('alice@example.test', 'alice-password-1');
  await d.addUser('bob@example.test', 'bob-password-12');

  const empty = await stats(d);
  assert.equal(empty.hours.length, 24);
  assert.equal(empty.days.length, 30);
  assert.equal(empty.timezone, 'UTC');
  assert.deepEqual(sum(empty.hours), { in: 0, inRecipients: 0, out: 0, outLocal: 0, outRemote: 0, failed: 0 });
  assert.ok(Date.parse(empty.hours[23]!.start) <= Date.now() && Date.now() - Date.parse(empty.hours[23]!.start) < 3_600_000, 'the last hour is the one under way');

  // One message to two mailboxes, one to one mailbox, one to the smarthost.
  await send(d, ['alice@example.test', 'bob@example.test']);
  await send(d, ['alice@example.test']);
  const remote = await send(d, ['carol@remote.test']);
  await d.waitFor(attempt(remote, 'delivered'));
  // The smarthost now refuses: the recipient fails for good and alice gets the bounce.
  const set = await d.cli(['config', 'set', 'routing.smarthost', JSON.stringify({ host: '127.0.151.26', port: badPort, tls: 'none' })]);
  assert.equal(set.code, 0, set.stderr);
  const refused = await send(d, ['dave@remote.test']);
  await d.waitFor(attempt(refused, 'bounced'));
  await eventually('the mailbox copies and the bounce', async () => (await d.mailbox('alice')).length === 3 && (await d.mailbox('bob')).length === 1);

  const want = { in: 4, inRecipients: 5, out: 5, outLocal: 4, outRemote: 1, failed: 1 };
  const counted = await eventually('the counts', async () => {
    const s = await stats(d);
    return JSON.stringify(sum(s.hours)) === JSON.stringify(want) ? s : undefined;
  });
  assert.deepEqual(sum(counted.days), want);
  assert.deepEqual(Object.keys(counted.hours[0]!).sort(), ['failed', 'in', 'inRecipients', 'out', 'outLocal', 'outRemote', 'start']);
  assert.deepEqual(Object.keys(counted.days[0]!).sort(), ['date', 'failed', 'in', 'inRecipients', 'out', 'outLocal', 'outRemote']);

  // The client sent 4 of its 5 a day: the status names it near its limit (and 80% is an event).
  const st = await d.cli(['status', '--json']);
  assert.equal(st.code, 0, st.stderr);
  const near = (JSON.parse(st.stdout) as { thresholds: { nearLimit: NearLimit[] } }).thresholds.nearLimit;
  assert.deepEqual(near, [{ limit: 'thresholds.perIpMessagesPerDay', ip: PC, count: 4, max: 5 }]);
  const text = await d.cli(['mail', 'stats']);
  assert.match(text.stdout, /^last 24 hours: 4 in, 5 out, 1 failed$/m);

  // Hostile forms: an option it does not take, an argument it does not take.
  const bad = await d.cli(['mail', 'stats', '--hours', '48']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /hours/);
  const extra = await d.cli(['mail', 'stats', 'everything']);
  assert.notEqual(extra.code, 0);

  // The dashboard's newest events: `events list --limit N`, newest first; a bad N is refused.
  const all = await d.cli(['events', 'list', '--json']);
  const newest = await d.cli(['events', 'list', '--limit', '1', '--json']);
  assert.equal(newest.code, 0, newest.stderr);
  const allEvents = JSON.parse(all.stdout) as { id: string }[];
  assert.ok(allEvents.length >= 1, 'the 80% warning is an event');
  assert.deepEqual(JSON.parse(newest.stdout), allEvents.slice(0, 1));
  for (const n of ['0', '-1', '1001', '1e3', '../5', '']) {
    const r = await d.cli(['events', 'list', '--limit', n]);
    assert.notEqual(r.code, 0, `--limit ${n} is refused`);
    assert.match(r.stderr, /--limit/);
  }

  // A restart (SIGTERM: the counts are flushed at stop) keeps them.
  await d.stop();
  await d.start();
  assert.deepEqual(sum((await stats(d)).hours), want);
});
