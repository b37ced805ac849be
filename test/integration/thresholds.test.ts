import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// Daemon on 127.0.10.1. 127.0.10.5 is a LAN PC in relay.allowIps (not exempt from limits),
// 127.0.10.6 another PC, 127.0.10.7 the exempt scanner, 127.0.10.8 a connection hog.
const HOST = '127.0.10.1';
const PC = '127.0.10.5';
const OTHER = '127.0.10.6';
const SCANNER = '127.0.10.7';
const HOG = '127.0.10.8';
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({
    host: HOST,
    config: {
      relay: { allowIps: ['127.0.10.0/24'], allowRecipientDomains: [], allowAuthenticated: true },
      thresholds: { alert: false, perIpMessagesPerMinute: 2, perAccountMessagesPerDay: 2, perIpConcurrentConnections: 2, exemptIps: [SCANNER] },
    },
  });
  await d.start();
  await d.addUser('bob@example.test', 'bob-secret-1');
});
after(async () => d.cleanup());

async function session(from: string, opts: { port?: number; tls?: boolean; login?: [string, string] } = {}) {
  const c = await RawSmtp.open(HOST, opts.port ?? d.ports.mx, from, opts.tls);
  await c.reply();
  await c.cmd('EHLO pc.example.test');
  if (opts.login) {
    const r = await c.cmd(`AUTH PLAIN ${Buffer.from(`\0${opts.login[0]}\0${opts.login[1]}`).toString('base64')}`);
    assert.equal(r, '235 2.7.0 Authentication successful');
  }
  return c;
}

async function send(c: RawSmtp, from: string, to: string): Promise<string> {
  const m = await c.cmd(`MAIL FROM:<${from}>`);
  if (!m.startsWith('250')) return m;
  const r = await c.cmd(`RCPT TO:<${to}>`);
  if (!r.startsWith('250')) return r;
  return c.data(`From: ${from}\r\nSubject: t\r\n\r\nx`);
}

test('per-IP messages per minute: a relay-allowed LAN PC is stopped at MAIL with 450 4.7.1 naming the limit', async () => {
  const c = await session(PC);
  assert.match(await send(c, 'pc@example.test', 'x@remote.test'), /^250 /);
  assert.match(await send(c, 'pc@example.test', 'x@remote.test'), /^250 /);
  assert.equal(
    await c.cmd('MAIL FROM:<pc@example.test>'),
    `450 4.7.1 Error: too many messages from ${PC} in the last minute (limit thresholds.perIpMessagesPerMinute = 2), try again later`,
  );
  c.close();
  const o = await session(OTHER);
  assert.match(await send(o, 'pc2@example.test', 'bob@example.test'), /^250 /);
  o.close();
  const s = await session(SCANNER);
  for (let i = 0; i < 4; i++) assert.match(await send(s, 'scanner@example.test', 'bob@example.test'), /^250 /);
  s.close();
  const evs = JSON.parse((await d.cli(['events', 'list', '--json'])).stdout) as { kind: string; ip?: string; limit?: string }[];
  assert.ok(evs.some((e) => e.kind === 'threshold.tripped' && e.ip === PC && e.limit === 'thresholds.perIpMessagesPerMinute'));
});

test('a live config change lifts the limit without a restart', async () => {
  assert.equal((await d.cli(['config', 'set', 'thresholds.perIpMessagesPerMinute', '0'])).code, 0);
  const c = await session(PC);
  assert.match(await send(c, 'pc@example.test', 'x@remote.test'), /^250 /);
  c.close();
});

test('per-account day quota survives a restart', async () => {
  const c = await session(OTHER, { port: d.ports.smtps, tls: true, login: ['bob@example.test', 'bob-secret-1'] });
  assert.match(await send(c, 'bob@example.test', 'x@remote.test'), /^250 /);
  assert.match(await send(c, 'bob@example.test', 'x@remote.test'), /^250 /);
  c.close();
  await d.stop();
  await d.start();
  const again = await session(PC, { port: d.ports.smtps, tls: true, login: ['bob@example.test', 'bob-secret-1'] });
  assert.match(await again.cmd('MAIL FROM:<bob@example.test>'), /^450 4\.7\.1 Error: too many messages from bob@example\.test today \(limit thresholds\.perAccountMessagesPerDay = 2\)/);
  again.close();
});

test('concurrent connections per IP: the third is refused at connect with 421 4.7.0', async () => {
  const a = await session(HOG);
  const b = await session(HOG);
  const c = await RawSmtp.open(HOST, d.ports.mx, HOG);
  assert.equal(await c.reply(), `421 4.7.0 Error: too many open connections from ${HOG} (limit thresholds.perIpConcurrentConnections = 2), try again later`);
  a.close();
  // Once the server has seen the close, the slot is free again.
  let greeting = '';
  for (let i = 0; i < 50 && !greeting.startsWith('220'); i++) {
    const e = await RawSmtp.open(HOST, d.ports.mx, HOG);
    greeting = await e.reply();
    e.close();
    if (!greeting.startsWith('220')) await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(greeting, /^220 /);
  b.close();
});

test('recipients per minute, messages per day and connections per minute, each over real SMTP', async () => {
  const set = async (k: string, v: number) => assert.equal((await d.cli(['config', 'set', `thresholds.${k}`, String(v)])).code, 0);
  await set('perIpRecipientsPerMinute', 2);
  await set('perIpMessagesPerDay', 1);
  await set('perIpConnectionsPerMinute', 3);
  try {
    const RCPTS = '127.0.10.21';
    const c = await session(RCPTS);
    await c.cmd('MAIL FROM:<pc@example.test>');
    assert.equal(await c.cmd('RCPT TO:<a@remote.test>'), '250 2.1.5 Accepted');
    assert.equal(await c.cmd('RCPT TO:<b@remote.test>'), '250 2.1.5 Accepted');
    assert.equal(await c.cmd('RCPT TO:<c@remote.test>'), `452 4.5.3 Error: too many recipients from ${RCPTS} in the last minute (limit thresholds.perIpRecipientsPerMinute = 2), try again later`);
    // the two accepted ones still go: the message is committed and counts for the day
    assert.match(await c.data('From: pc@example.test\r\nSubject: t\r\n\r\nx'), /^250 /);
    assert.match(await c.cmd('MAIL FROM:<pc@example.test>'), new RegExp(`^450 4\\.7\\.1 Error: too many messages from ${RCPTS.replace(/\./g, '\\.')} today \\(limit thresholds\\.perIpMessagesPerDay = 1\\)`));
    c.close();

    const CONNS = '127.0.10.22';
    for (let i = 0; i < 3; i++) {
      const ok = await RawSmtp.open(HOST, d.ports.mx, CONNS);
      assert.match(await ok.reply(), /^220 /);
      ok.close();
    }
    const fourth = await RawSmtp.open(HOST, d.ports.mx, CONNS);
    assert.equal(await fourth.reply(), `421 4.7.0 Error: too many connections from ${CONNS} in the last minute (limit thresholds.perIpConnectionsPerMinute = 3), try again later`);
    fourth.close();
  } finally {
    await set('perIpRecipientsPerMinute', 0);
    await set('perIpMessagesPerDay', 0);
    await set('perIpConnectionsPerMinute', 0);
  }
});
