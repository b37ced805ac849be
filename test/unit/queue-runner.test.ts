import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDb, GroupCommitter, type Db } from '../../src/store/db.js';
import { OutboundQueue, QUEUE_SUBLEVEL, type QueueEntry } from '../../src/delivery/queue.js';
import { QueueRunner, enhancedStatus, type RunnerDeps } from '../../src/delivery/runner.js';
import type { FailedRecipient } from '../../src/delivery/bounce.js';
import { DnsClient } from '../../src/delivery/dns.js';
import { HostUnusable, type Destination, type Transaction, type TransactionResult } from '../../src/delivery/transport.js';
import { configSchema, type Config } from '../../src/config/schema.js';
import { DAY_MS, HOUR_MS } from '../../src/core/clock.js';
import { ManualClock } from '../helpers/clock.js';

/**
 * The queue runner's decisions (grouping, backoff, expiry, caps, budgets, restart) with a
 * scripted transport in place of the network; the real SMTP peers are in the integration
 * tests. The transport is the only stand-in: the queue and LevelDB are the real ones.
 * Time is a ManualClock: nothing sleeps, a wait the runner schedules happens when a test
 * advances the clock, and a test waits for the runner to settle (runner.idle()).
 */

type Script = (dest: Destination, tx: Transaction) => Promise<TransactionResult> | TransactionResult;

const reply = (rcpts: string[], klass: 2 | 4 | 5, text: string): TransactionResult => ({
  outcomes: rcpts.map((rcpt) => ({ rcpt, klass, reply: text })),
  remote: 'relay.test[127.0.0.9]:25',
  ms: 1,
});

async function setup(overrides: Record<string, unknown>, script: Script, clock = new ManualClock(Date.parse('2026-11-30T10:00:00Z'))) {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-runner-'));
  const db: Db = await openDb(join(dir, 'db'));
  const group = new GroupCommitter(db);
  const queue = new OutboundQueue(db);
  let cfg: Config = configSchema.parse({ domains: ['example.test'], ...overrides });
  const sends: { dest: Destination; tx: Transaction }[] = [];
  const bounces: { entry: QueueEntry; failed: FailedRecipient[] }[] = [];
  const events: { kind: string }[] = [];
  const faults = { bounce: 0 };
  let concurrent = 0;
  let maxConcurrent = 0;
  const make = (replace: Partial<RunnerDeps> = {}) =>
    new QueueRunner({
      queue,
      group,
      config: () => cfg,
      dns: new DnsClient(() => ({ servers: ['127.0.0.1:9'], timeoutSeconds: 1 })),
      client: {
        async send(dest, tx) {
          sends.push({ dest, tx });
          concurrent++;
          maxConcurrent = Math.max(maxConcurrent, concurrent);
          try {
            return await script(dest, tx);
          } finally {
            concurrent--;
          }
        },
      },
      dataPath: (id) => join(dir, `${id}.eml`),
      sign: async () => '',
      bounce: async (entry, failed) => {
        if (faults.bounce > 0 && faults.bounce--) throw new Error('ENOSPC: no space left on device');
        bounces.push({ entry: structuredClone(entry), failed });
      },
      deliverLocal: async () => false,
      isLocalDomain: (d) => cfg.domains.includes(d),
      reroute: () => false,
      emit: (ev) => void events.push(ev),
      log: pino({ level: 'silent' }),
      clock,
      ...replace,
    });
  let n = 0;
  const enqueue = async (runner: QueueRunner, rcpts: string[], extra: Partial<QueueEntry> = {}) => {
    const id = `m${++n}`;
    await writeFile(join(dir, `${id}.eml`), 'Subject: t\r\n\r\nhello\r\n');
    const now = new Date(clock.now()).toISOString();
    const entry: QueueEntry = {
      id,
      from: 'alice@example.test',
      login: null,
      held: false,
      queued: now,
      size: 22,
      recipients: rcpts.map((address) => ({ address, state: 'queued', attempts: 0, lastReply: null, nextAttempt: now })),
      ...extra,
    };
    await group.write([queue.enqueueOp(entry)]);
    runner.add(entry);
    return id;
  };
  return {
    dir, db, group, queue, sends, bounces, events, clock, make, enqueue, faults,
    setConfig: (o: Record<string, unknown>) => (cfg = configSchema.parse({ domains: ['example.test'], ...overrides, ...o })),
    maxConcurrent: () => maxConcurrent,
    async close() {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const smarthost = { routing: { mode: 'smarthost', smarthost: { host: '127.0.0.9', port: 25, tls: 'none' } } };

/** Waits until the runner has nothing under way and nothing due (what waits, waits on the clock). */
function settle(runner: QueueRunner): Promise<void> {
  return runner.idle();
}

/**
 * A transport that holds every transaction until opened: the first ones are surely
 * connected at once while the rest of the mail arrives, which is what the caps are about.
 */
function heldTransport() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const script: Script = async (_d, tx) => {
    await opened;
    return reply(tx.rcpts, 2, '250 ok');
  };
  return { script, open };
}

test('through a smarthost, all recipients of a message go in one transaction; delivered mail leaves queue and spool', async () => {
  const s = await setup(smarthost, (_d, tx) => reply(tx.rcpts, 2, '250 2.0.0 Ok: queued as X'));
  const runner = s.make();
  await runner.start();
  const id = await s.enqueue(runner, ['a@one.test', 'b@two.test', 'c@one.test']);
  await settle(runner);
  assert.equal(s.sends.length, 1);
  assert.deepEqual(s.sends[0]!.tx.rcpts.sort(), ['a@one.test', 'b@two.test', 'c@one.test']);
  assert.equal(s.sends[0]!.dest.address, '127.0.0.9');
  assert.equal(await s.queue.has(id), false);
  await assert.rejects(access(join(s.dir, `${id}.eml`)));
  await runner.stop();
  await s.close();
});

test('fixed per-domain routes: one transaction per destination domain', async () => {
  const s = await setup(
    { routing: { domains: { 'one.test': { host: '127.0.0.11', port: 2525, tls: 'none' }, 'two.test': { host: '127.0.0.12', port: 2525, tls: 'none' } } } },
    (_d, tx) => reply(tx.rcpts, 2, '250 ok'),
  );
  const runner = s.make();
  await runner.start();
  await s.enqueue(runner, ['a@one.test', 'b@two.test', 'c@one.test']);
  await settle(runner);
  const byHost = Object.fromEntries(s.sends.map((x) => [x.dest.address, x.tx.rcpts.sort()]));
  assert.deepEqual(byHost, { '127.0.0.11': ['a@one.test', 'c@one.test'], '127.0.0.12': ['b@two.test'] });
  await runner.stop();
  await s.close();
});

test('4xx defers with a doubling wait; 5xx bounces with the remote status; a mix is recorded per recipient', async () => {
  const s = await setup({ ...smarthost, delivery: { retryBaseSeconds: 60 } }, (_d, tx) => ({
    outcomes: tx.rcpts.map((rcpt) =>
      rcpt.startsWith('busy') ? { rcpt, klass: 4 as const, reply: '450 4.2.0 mailbox busy' } : rcpt.startsWith('gone') ? { rcpt, klass: 5 as const, reply: '550 5.1.1 no such user' } : { rcpt, klass: 2 as const, reply: '250 ok' },
    ),
    remote: 'relay.test[127.0.0.9]:25',
    ms: 1,
  }));
  const runner = s.make();
  await runner.start();
  const id = await s.enqueue(runner, ['ok@r.test', 'busy@r.test', 'gone@r.test']);
  await settle(runner);
  const e = runner.get(id)!;
  const by = Object.fromEntries(e.recipients.map((r) => [r.address, r]));
  assert.equal(by['ok@r.test']!.state, 'delivered');
  assert.equal(by['gone@r.test']!.state, 'bounced');
  assert.equal(by['busy@r.test']!.state, 'deferred');
  assert.equal(by['busy@r.test']!.lastReply, '450 4.2.0 mailbox busy');
  assert.equal(Date.parse(by['busy@r.test']!.nextAttempt) - s.clock.now(), 60_000);
  assert.equal(s.bounces.length, 1);
  assert.deepEqual(s.bounces[0]!.failed.map((f) => [f.recipient, f.status, f.diagnostic]), [['gone@r.test', '5.1.1', '550 5.1.1 no such user']]);
  // The durable record says the same: a restart must not send to ok@ or gone@ again.
  const stored = (await s.queue.list()).find((x) => x.id === id)!;
  assert.deepEqual(stored.recipients.map((r) => r.state), ['delivered', 'deferred', 'bounced']);

  // When the first wait is over the runner tries again by itself.
  await s.clock.advance(60_000);
  await settle(runner);
  assert.equal(s.sends.length, 2);
  assert.deepEqual(s.sends[1]!.tx.rcpts, ['busy@r.test']);
  assert.equal(Date.parse(runner.get(id)!.recipients[1]!.nextAttempt) - s.clock.now(), 120_000, 'second wait is twice the first');
  await runner.stop();
  await s.close();
});

test('a restart resumes only the recipients still pending', async () => {
  let accept = false;
  const s = await setup(smarthost, (_d, tx) => ({
    outcomes: tx.rcpts.map((rcpt) => ({ rcpt, klass: rcpt.startsWith('a') || accept ? (2 as const) : (4 as const), reply: accept ? '250 ok' : '451 later' })),
    remote: 'x',
    ms: 1,
  }));
  const first = s.make();
  await first.start();
  const id = await s.enqueue(first, ['a@r.test', 'b@r.test']);
  await settle(first);
  await first.stop();
  accept = true;
  const second = s.make();
  await second.start();
  second.flush();
  await settle(second);
  assert.deepEqual(s.sends.map((x) => x.tx.rcpts), [['a@r.test', 'b@r.test'], ['b@r.test']]);
  assert.equal(await s.queue.has(id), false);
  await second.stop();
  await s.close();
});

test('an attempt is logged only once its outcome is on record: after "delivered" in the log, a kill -9 sends nothing again', async () => {
  // Seen as a flake of the integration test that kill -9s the daemon after these lines: the
  // record still said "queued", the restart sent the delivered copy a second time.
  const s = await setup(smarthost, (_d, tx) => ({
    outcomes: tx.rcpts.map((rcpt) => (rcpt.startsWith('now') ? { rcpt, klass: 2 as const, reply: '250 2.0.0 Ok' } : { rcpt, klass: 4 as const, reply: '450 4.2.0 later' })),
    remote: 'relay.test[127.0.0.9]:25',
    ms: 1,
  }));
  // What the queue's records say once each write has reached LevelDB (null: record removed).
  const onRecord = new Map<string, QueueEntry | null>();
  const group: RunnerDeps['group'] = {
    write: (ops, o) => s.group.write(ops, o),
    async writeLazy(ops, o) {
      await s.group.writeLazy(ops, o);
      for (const op of ops) if (op.sublevel === QUEUE_SUBLEVEL) onRecord.set(op.key, op.type === 'put' ? structuredClone(op.value as QueueEntry) : null);
    },
  };
  // Each delivery.attempt line, with what the record said about that recipient when it was written.
  const told: { id: string; rcpt: string; result: string; recorded: string }[] = [];
  const log = pino({ level: 'info' }, {
    write(line: string) {
      const l = JSON.parse(line) as { evt?: string; id: string; rcpt: string; result: string };
      if (l.evt !== 'delivery.attempt') return;
      const rec = onRecord.get(l.id);
      const recorded = rec === null ? 'left the queue' : (rec?.recipients.find((r) => r.address === l.rcpt)?.state ?? 'nothing yet');
      told.push({ id: l.id, rcpt: l.rcpt, result: l.result, recorded });
    },
  });
  const runner = s.make({ group, log });
  await runner.start();
  const both = await s.enqueue(runner, ['now@one.test', 'later@two.test']);
  const done = await s.enqueue(runner, ['now2@one.test']);
  await settle(runner);
  const byRcpt = (a: { rcpt: string }, b: { rcpt: string }) => a.rcpt.localeCompare(b.rcpt);
  assert.deepEqual(told.sort(byRcpt), [
    { id: both, rcpt: 'later@two.test', result: 'deferred', recorded: 'deferred' },
    { id: both, rcpt: 'now@one.test', result: 'delivered', recorded: 'delivered' },
    { id: done, rcpt: 'now2@one.test', result: 'delivered', recorded: 'left the queue' },
  ]);
  await runner.stop();
  await s.close();
});

test('a DSN that cannot be written (full disk) keeps the recipient deferred; it bounces at a later attempt', async () => {
  const s = await setup({ ...smarthost, delivery: { retryBaseSeconds: 60 } }, (_d, tx) => reply(tx.rcpts, 5, '550 5.1.1 no such user'));
  const runner = s.make();
  await runner.start();
  s.faults.bounce = 1;
  const id = await s.enqueue(runner, ['gone@r.test']);
  await settle(runner);
  const r = runner.get(id)!.recipients[0]!;
  assert.equal(r.state, 'deferred');
  assert.equal(Date.parse(r.nextAttempt) - s.clock.now(), 60_000);
  assert.equal(s.bounces.length, 0);
  assert.equal((await s.queue.list())[0]!.recipients[0]!.state, 'deferred', 'never stored as bounced without its DSN');
  // Before the runner's own retry falls due: the operator's retry makes the later attempt.
  await s.clock.advance(30_000);
  runner.retry(id);
  await settle(runner);
  assert.equal(s.bounces.length, 1);
  assert.equal(await s.queue.has(id), false);
  await runner.stop();
  await s.close();
});

test('after a restart every pending recipient keeps its own due time (none is forgotten)', async () => {
  const s = await setup(smarthost, (_d, tx) => reply(tx.rcpts, 2, '250 ok'));
  const now = s.clock.now();
  await writeFile(join(s.dir, 'r1.eml'), 'Subject: t\r\n\r\nhello\r\n');
  const at = (ms: number) => new Date(now + ms).toISOString();
  await s.group.write([
    s.queue.enqueueOp({
      id: 'r1', from: 'alice@example.test', login: null, held: false, queued: at(-60_000), size: 22,
      recipients: [
        { address: 'a@one.test', state: 'deferred', attempts: 1, lastReply: '451 later', nextAttempt: at(150) },
        { address: 'b@two.test', state: 'deferred', attempts: 2, lastReply: '451 later', nextAttempt: at(400) },
      ],
    }),
  ]);
  const runner = s.make();
  await runner.start();
  await s.clock.advance(800);
  await settle(runner);
  assert.deepEqual(s.sends.map((x) => x.tx.rcpts), [['a@one.test'], ['b@two.test']]);
  assert.equal(await s.queue.has('r1'), false);
  await runner.stop();
  await s.close();
});

test('past delivery.maxQueueDays a deferral becomes a bounce with status 4.4.7', async () => {
  const s = await setup({ ...smarthost, delivery: { maxQueueDays: 1 } }, (_d, tx) => reply(tx.rcpts, 4, '451 4.3.0 try later'));
  const runner = s.make();
  await runner.start();
  const id = await s.enqueue(runner, ['x@r.test']);
  await settle(runner);
  assert.equal(runner.get(id)!.recipients[0]!.state, 'deferred');
  // The runner keeps retrying (waits doubling up to an hour); its first attempt past the
  // day, at the latest an hour after it, bounces.
  await s.clock.advance(DAY_MS + HOUR_MS);
  await settle(runner);
  assert.equal(runner.get(id), undefined);
  assert.equal(s.bounces.length, 1);
  assert.equal(s.bounces[0]!.failed[0]!.status, '4.4.7');
  assert.match(s.bounces[0]!.failed[0]!.diagnostic, /expired.*451 4.3.0 try later/);
  await runner.stop();
  await s.close();
});

test('connections to one destination stay within delivery.maxConnectionsPerDomain', async () => {
  const transport = heldTransport();
  const s = await setup({ ...smarthost, delivery: { maxConnectionsPerDomain: 2 } }, transport.script);
  const runner = s.make();
  await runner.start();
  for (let i = 0; i < 8; i++) await s.enqueue(runner, [`u${i}@r.test`]);
  transport.open();
  await settle(runner);
  assert.equal(s.sends.length, 8);
  assert.equal(s.maxConcurrent(), 2);
  await runner.stop();
  await s.close();
});

test('delivery.perDomainMessagesPerMinute paces one recipient domain; others are not held up', async () => {
  const routes = { 'one.test': { host: '127.0.0.11', port: 25, tls: 'none' }, 'two.test': { host: '127.0.0.12', port: 25, tls: 'none' } };
  const s = await setup({ routing: { domains: routes }, delivery: { perDomainMessagesPerMinute: 2 } }, (_d, tx) => reply(tx.rcpts, 2, '250 ok'));
  const runner = s.make();
  await runner.start();
  for (let i = 0; i < 3; i++) await s.enqueue(runner, [`u${i}@one.test`]);
  await s.enqueue(runner, ['v@two.test']);
  await settle(runner);
  const to = (d: string) => s.sends.filter((x) => x.tx.rcpts[0]!.endsWith(d)).length;
  assert.equal(to('one.test'), 2);
  assert.equal(to('two.test'), 1);
  await s.clock.advance(60_000);
  runner.flush();
  await settle(runner);
  assert.equal(to('one.test'), 3, 'sent once the minute has passed');
  await runner.stop();
  await s.close();
});

test('delivery.maxConnections caps connections over all destinations', async () => {
  const routes = Object.fromEntries(['a', 'b', 'c', 'd'].map((d, i) => [`${d}.test`, { host: `127.0.0.${20 + i}`, port: 25, tls: 'none' }]));
  const transport = heldTransport();
  const s = await setup({ routing: { domains: routes }, delivery: { maxConnections: 2 } }, transport.script);
  const runner = s.make();
  await runner.start();
  for (const d of ['a', 'b', 'c', 'd']) for (let i = 0; i < 2; i++) await s.enqueue(runner, [`u${i}@${d}.test`]);
  transport.open();
  await settle(runner);
  assert.equal(s.sends.length, 8);
  assert.equal(s.maxConcurrent(), 2);
  await runner.stop();
  await s.close();
});

test('queue delete is refused while the message is being delivered', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const inTransport = new Promise<void>((r) => (entered = r));
  const s = await setup(smarthost, async (_d, tx) => {
    entered();
    await gate;
    return reply(tx.rcpts, 2, '250 ok');
  });
  const runner = s.make();
  await runner.start();
  const id = await s.enqueue(runner, ['a@r.test']);
  await inTransport;
  await assert.rejects(runner.remove(id), /being delivered right now/);
  release();
  await settle(runner);
  assert.equal(await s.queue.has(id), false);
  await runner.stop();
  await s.close();
});

test("the smarthost's hourly budget holds mail in the queue without counting an attempt", async () => {
  const s = await setup({ routing: { ...smarthost.routing, smarthost: { ...smarthost.routing.smarthost, maxPerHour: 2 } } }, (_d, tx) => reply(tx.rcpts, 2, '250 ok'));
  const runner = s.make();
  await runner.start();
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push(await s.enqueue(runner, [`u${i}@r.test`]));
  await settle(runner);
  assert.equal(s.sends.length, 2);
  const waiting = runner.get(ids[2]!)!.recipients[0]!;
  assert.equal(waiting.attempts, 0);
  assert.equal(waiting.state, 'queued');
  assert.equal(runner.stats().smarthost.sentLastHour, 2);
  runner.flush();
  await settle(runner);
  assert.equal(s.sends.length, 2, 'a flush does not override the budget');
  await s.clock.advance(HOUR_MS);
  runner.flush();
  await settle(runner);
  assert.equal(s.sends.length, 3, 'sent once the hour has freed a slot');
  await runner.stop();
  await s.close();
});

test("the smarthost's budget survives a restart", async () => {
  const s = await setup({ routing: { ...smarthost.routing, smarthost: { ...smarthost.routing.smarthost, maxPerDay: 2 } } }, (_d, tx) => reply(tx.rcpts, 2, '250 ok'));
  const first = s.make();
  await first.start();
  for (let i = 0; i < 2; i++) await s.enqueue(first, [`u${i}@r.test`]);
  await settle(first);
  await first.stop();
  const second = s.make();
  await second.start();
  assert.equal(second.stats().smarthost.sentToday, 2);
  await s.enqueue(second, ['late@r.test']);
  await settle(second);
  assert.equal(s.sends.length, 2, 'the third message of the day waits, restart or not');
  await second.stop();
  await s.close();
});

test('a quota reply from the smarthost pauses the whole route and raises an event', async () => {
  const s = await setup({ ...smarthost, delivery: { retryBaseSeconds: 120 } }, (_d, tx) =>
    reply(tx.rcpts, 4, tx.rcpts[0]!.startsWith('full') ? '452 4.2.2 <full@r.test>: mailbox full' : '450 4.7.1 Error: too many messages, rate limit exceeded'),
  );
  const runner = s.make();
  await runner.start();
  await s.enqueue(runner, ['full@r.test']);
  await settle(runner);
  assert.equal(runner.stats().smarthost.pausedUntil, null, 'a full mailbox is about one message: no pause');
  await s.enqueue(runner, ['a@r.test']);
  await settle(runner);
  await s.enqueue(runner, ['b@r.test']);
  await settle(runner);
  assert.equal(s.sends.length, 2, 'the third message waits for the pause instead of being sent into the refusal');
  assert.equal(runner.stats().smarthost.pausedUntil, new Date(s.clock.now() + 120_000).toISOString());
  assert.deepEqual(s.events.map((e) => e.kind), ['smarthost.throttled']);
  await runner.stop();
  await s.close();
});

test("held mail (a suspended sender's) is not sent until released", async () => {
  const s = await setup(smarthost, (_d, tx) => reply(tx.rcpts, 2, '250 ok'));
  const runner = s.make();
  await runner.start();
  const id = await s.enqueue(runner, ['a@r.test'], { login: 'bob@example.test', held: true });
  await settle(runner);
  assert.equal(s.sends.length, 0);
  assert.throws(() => runner.retry(id), /held/);
  assert.equal(await runner.hold('bob@example.test', false), 1);
  await settle(runner);
  assert.equal(s.sends.length, 1);
  await runner.stop();
  await s.close();
});

test('no host usable: every recipient is deferred with the reason; queue delete removes the message', async () => {
  const s = await setup(smarthost, () => {
    throw new HostUnusable('down', '451 4.4.1 relay.test[127.0.0.9]:25: ECONNECTION: connect ECONNREFUSED');
  });
  const runner = s.make();
  await runner.start();
  const id = await s.enqueue(runner, ['a@r.test', 'b@r.test']);
  await settle(runner);
  assert.deepEqual(runner.get(id)!.recipients.map((r) => [r.state, r.lastReply]), [
    ['deferred', '451 4.4.1 relay.test[127.0.0.9]:25: ECONNECTION: connect ECONNREFUSED'],
    ['deferred', '451 4.4.1 relay.test[127.0.0.9]:25: ECONNECTION: connect ECONNREFUSED'],
  ]);
  await runner.remove(id);
  assert.equal(await s.queue.has(id), false);
  await assert.rejects(access(join(s.dir, `${id}.eml`)));
  await assert.rejects(runner.remove(id), /no message/);
  await runner.stop();
  await s.close();
});

test('enhancedStatus reads the code from a reply', () => {
  assert.equal(enhancedStatus('550 5.1.1 <x@y>: Recipient address rejected', '5.0.0'), '5.1.1');
  assert.equal(enhancedStatus('554 Transaction failed', '5.0.0'), '5.0.0');
  assert.equal(enhancedStatus('550-5.7.1 multi line', '5.0.0'), '5.7.1');
});
