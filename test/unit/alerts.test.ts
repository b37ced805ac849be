import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Alerter, type AlertSettings } from '../../src/alerts/alerts.js';
import type { MlsdEvent } from '../../src/events/events.js';

const MIN = 60_000;
const T0 = Date.parse('2025-03-01T02:00:00.000Z');

interface Sent {
  from: string;
  to: string[];
  message: Buffer;
}

function setup(over: Partial<AlertSettings> = {}, maxKeys?: number) {
  let t = T0;
  const settings: AlertSettings = { enabled: true, adminEmails: ['admin@example.test', 'boss@remote.test'], periodMinutes: 60, ...over };
  const sent: Sent[] = [];
  let fail = false;
  const alerter = new Alerter({
    settings: () => settings,
    hostname: () => 'mail.example.test',
    sink: async (from, to, message) => {
      if (fail) throw new Error('spool is full');
      sent.push({ from, to, message });
    },
    log: pino({ level: 'silent' }),
    now: () => new Date(t),
    ...(maxKeys !== undefined ? { maxKeys } : {}),
  });
  return {
    alerter,
    sent,
    settings,
    advance: (ms: number) => (t += ms),
    setFail: (f: boolean) => (fail = f),
  };
}

let seq = 0;
function tripped(over: Partial<MlsdEvent> = {}): MlsdEvent {
  return {
    id: `ev${++seq}`,
    time: new Date(T0).toISOString(),
    kind: 'threshold.tripped',
    severity: 'critical',
    text: 'client 192.0.2.7 sent 120 messages in 1 min (limit 100)',
    ip: '192.0.2.7',
    limit: 'thresholds.perIpMessagesPerMinute',
    data: { messages: 120, max: 100 },
    ...over,
  };
}

// --- a minimal RFC 5322 / MIME reader, so the test checks what a mail client would show ---

function decodeWords(v: string): string {
  // Whitespace between two adjacent encoded words is not part of the text (RFC 2047 6.2).
  return v
    .replace(/(=\?[^?]+\?[BbQq]\?[^?]*\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_m, charset: string, enc: string, data: string) => {
      assert.match(charset, /^utf-8$/i);
      if (enc.toUpperCase() === 'B') return Buffer.from(data, 'base64').toString('utf8');
      const bytes = data.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16)));
      return Buffer.from(bytes, 'latin1').toString('utf8');
    });
}

function parse(msg: Buffer): { headers: Map<string, string>; rawHeaders: Map<string, string>; body: string } {
  const s = msg.toString('latin1');
  const split = s.indexOf('\r\n\r\n');
  assert.ok(split > 0, 'header/body separator');
  const rawHeaders = new Map<string, string>();
  for (const line of s.slice(0, split).replace(/\r\n[ \t]/g, ' ').split('\r\n')) {
    const i = line.indexOf(':');
    rawHeaders.set(line.slice(0, i).toLowerCase(), line.slice(i + 1).trim());
  }
  const headers = new Map([...rawHeaders].map(([k, v]) => [k, decodeWords(v)]));
  const cte = (rawHeaders.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  const rawBody = s.slice(split + 4);
  let bytes: Buffer;
  if (cte === 'base64') bytes = Buffer.from(rawBody.replace(/\s+/g, ''), 'base64');
  else if (cte === 'quoted-printable')
    bytes = Buffer.from(rawBody.replace(/=\r\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  else bytes = Buffer.from(rawBody, 'latin1');
  return { headers, rawHeaders, body: bytes.toString('utf8') };
}

test('threshold.tripped mails all admins a bilingual, properly encoded message', async () => {
  const { alerter, sent } = setup();
  const out = await alerter.handle(tripped());
  assert.deepEqual(out, { sent: true, suppressed: 0 });
  assert.equal(sent.length, 1);
  const m = sent[0]!;
  assert.equal(m.from, 'mlsd@mail.example.test');
  assert.deepEqual(m.to, ['admin@example.test', 'boss@remote.test']);
  // Headers must be 7-bit: the non-ASCII subject travels as RFC 2047 encoded words.
  const headerBytes = m.message.subarray(0, m.message.indexOf('\r\n\r\n'));
  assert.ok(headerBytes.every((b) => b < 0x80), 'header section is ASCII only');
  // The spool takes the message as is, in wire form: every line ends in CRLF.
  assert.doesNotMatch(m.message.toString('latin1'), /[^\r]\n/, 'no bare LF');
  const { headers, rawHeaders, body } = parse(m.message);
  assert.match(rawHeaders.get('subject')!, /=\?utf-8\?[BQ]\?/i);
  assert.equal(
    headers.get('subject'),
    '[mlsd] ALERT: threshold tripped / 警示：已達郵件管制臨界值 (thresholds.perIpMessagesPerMinute, 192.0.2.7)',
  );
  assert.equal(headers.get('from'), 'MLS mail server <mlsd@mail.example.test>');
  assert.equal(headers.get('to'), 'admin@example.test, boss@remote.test');
  assert.equal(headers.get('auto-submitted'), 'auto-generated');
  assert.equal(headers.get('x-mlsd-event'), 'threshold.tripped');
  assert.match(headers.get('message-id')!, /^<[^@<>\s]+@mail\.example\.test>$/);
  assert.equal(Date.parse(headers.get('date')!), T0);
  assert.match(headers.get('content-type')!, /^text\/plain; charset=utf-8$/i);
  assert.match(rawHeaders.get('content-transfer-encoding')!, /^(8bit|quoted-printable|base64)$/i);

  // English first, then Traditional Chinese, each with the facts and what to do.
  const en = body.indexOf('What happened: client 192.0.2.7 sent 120 messages');
  const zh = body.indexOf('發生了什麼事：client 192.0.2.7 sent 120 messages');
  assert.ok(en >= 0 && zh > en, 'English section, then Chinese section');
  for (const part of [body.slice(en, zh), body.slice(zh)]) {
    assert.match(part, /192\.0\.2\.7/);
    assert.match(part, /thresholds\.perIpMessagesPerMinute/);
    assert.match(part, /messages: 120/);
    assert.match(part, /max: 100/);
    assert.match(part, /mlsd config set thresholds\.perIpMessagesPerMinute N/);
  }
  assert.match(body.slice(en, zh), /Check the PC at 192\.0\.2\.7 for malware/);
  assert.match(body.slice(en, zh), /resets as the window slides/);
  assert.match(body.slice(zh), /請檢查 192\.0\.2\.7 這台電腦/);
  assert.doesNotMatch(body, /suppressed|未寄出/);
});

test('each kind gets its own bilingual subject and advice', async () => {
  const cases: Array<[Partial<MlsdEvent>, RegExp, RegExp]> = [
    [{ kind: 'threshold.warning', severity: 'warning', ip: undefined, account: 'bob@example.test', limit: 'thresholds.perAccountMessagesPerDay' },
      /^\[mlsd\] WARNING: 80% .*已達臨界值 80% \(thresholds\.perAccountMessagesPerDay, bob@example\.test\)$/,
      /Change the password of bob@example\.test[\s\S]*resets at local midnight[\s\S]*請變更 bob@example\.test 的密碼/],
    [{ kind: 'auth.lockout', severity: 'warning', limit: 'auth.lockout.maxFailures' },
      /^\[mlsd\] WARNING: .*登入失敗次數過多，已鎖定 \(auth\.lockout\.maxFailures, 192\.0\.2\.7\)$/,
      /guessing passwords from 192\.0\.2\.7[\s\S]*saved in their mail client[\s\S]*ends by itself/],
    [{ kind: 'account.suspended', ip: undefined, account: 'bob@example.test', limit: undefined },
      /^\[mlsd\] ALERT: .*帳號已暫停寄信 \(bob@example\.test\)$/,
      /cannot send until `mlsd user unlock bob@example\.test`[\s\S]*keeps receiving[\s\S]*held, not lost/],
  ];
  for (const [over, subject, advice] of cases) {
    const { alerter, sent } = setup();
    assert.equal((await alerter.handle(tripped(over))).sent, true, over.kind);
    const { headers, body } = parse(sent[0]!.message);
    assert.match(headers.get('subject')!, subject);
    assert.match(body, advice);
    assert.equal(headers.get('x-mlsd-event'), over.kind);
  }
});

test('the same key within the period is suppressed; after it the next mail reports the count', async () => {
  const { alerter, sent, advance } = setup({ periodMinutes: 60 });
  assert.equal((await alerter.handle(tripped())).sent, true);
  advance(10 * MIN);
  assert.deepEqual(await alerter.handle(tripped()), { sent: false, suppressed: 1 });
  advance(49 * MIN);
  assert.deepEqual(await alerter.handle(tripped()), { sent: false, suppressed: 2 });
  assert.equal(sent.length, 1);
  advance(1 * MIN); // exactly one period after the first mail
  assert.deepEqual(await alerter.handle(tripped()), { sent: true, suppressed: 2 });
  assert.equal(sent.length, 2);
  const { body } = parse(sent[1]!.message);
  const m = /2 similar alerts were suppressed since (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) ([+-]\d\d:\d\d)/.exec(body);
  assert.ok(m, body);
  assert.equal(Date.parse(`${m[1]}T${m[2]}${m[3]}`), T0, 'since = time of the previous mail');
  assert.match(body, /另有 2 則相同警示未寄出/);
  // The count starts again from zero after being reported, and "since" moves to that mail.
  advance(5 * MIN);
  assert.deepEqual(await alerter.handle(tripped()), { sent: false, suppressed: 1 });
  advance(55 * MIN);
  assert.deepEqual(await alerter.handle(tripped()), { sent: true, suppressed: 1 });
  const m3 = /1 similar alert was suppressed since (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) ([+-]\d\d:\d\d)/.exec(parse(sent[2]!.message).body);
  assert.ok(m3);
  assert.equal(Date.parse(`${m3[1]}T${m3[2]}${m3[3]}`), T0 + 60 * MIN);
  // A quiet period in between: the next mail has nothing to report.
  advance(60 * MIN);
  assert.deepEqual(await alerter.handle(tripped()), { sent: true, suppressed: 0 });
  assert.doesNotMatch(parse(sent[3]!.message).body, /suppressed|未寄出/);
});

test('a different IP, account, limit or kind is a different key', async () => {
  const { alerter, sent } = setup();
  assert.equal((await alerter.handle(tripped())).sent, true);
  assert.equal((await alerter.handle(tripped({ ip: '192.0.2.8' }))).sent, true);
  assert.equal((await alerter.handle(tripped({ account: 'bob@example.test' }))).sent, true);
  assert.equal((await alerter.handle(tripped({ limit: 'thresholds.perIpMessagesPerDay' }))).sent, true);
  assert.equal((await alerter.handle(tripped({ kind: 'threshold.warning', severity: 'warning' }))).sent, true);
  assert.equal((await alerter.handle(tripped({ ip: '192.0.2.8' }))).sent, false);
  assert.equal(sent.length, 5);
});

test('nothing is sent when alerts are disabled or there are no admins', async () => {
  const a = setup({ enabled: false });
  assert.deepEqual(await a.alerter.handle(tripped()), { sent: false, suppressed: 0 });
  const b = setup({ adminEmails: [] });
  assert.deepEqual(await b.alerter.handle(tripped()), { sent: false, suppressed: 0 });
  assert.equal(a.sent.length + b.sent.length, 0);
  // Settings are read per event: enabling later sends, and the disabled time used no period.
  a.settings.enabled = true;
  assert.equal((await a.alerter.handle(tripped())).sent, true);
  assert.equal(a.sent.length, 1);
});

test('unrelated kinds send nothing', async () => {
  const { alerter, sent } = setup();
  for (const kind of ['auth.success', 'spool.full', 'threshold', 'event']) {
    assert.deepEqual(await alerter.handle(tripped({ kind, severity: 'critical' })), { sent: false, suppressed: 0 });
  }
  assert.equal(sent.length, 0);
  // ...and do not occupy the key of a real alert.
  assert.equal((await alerter.handle(tripped())).sent, true);
});

test('a sink failure is logged, returns sent:false and does not consume the period', async () => {
  const { alerter, sent, setFail, advance } = setup();
  assert.equal((await alerter.handle(tripped())).sent, true);
  advance(5 * MIN);
  assert.equal((await alerter.handle(tripped())).suppressed, 1);
  advance(60 * MIN);
  setFail(true);
  assert.deepEqual(await alerter.handle(tripped()), { sent: false, suppressed: 0 });
  setFail(false);
  advance(1000);
  // The retry is not suppressed and still reports the event held back before the failure.
  assert.deepEqual(await alerter.handle(tripped()), { sent: true, suppressed: 1 });
  assert.equal(sent.length, 2);
  assert.match(parse(sent[1]!.message).body, /1 similar alert was suppressed since /);
  // A first-ever mail that fails is retried by the next event too.
  setFail(true);
  assert.equal((await alerter.handle(tripped({ ip: '198.51.100.1' }))).sent, false);
  setFail(false);
  assert.equal((await alerter.handle(tripped({ ip: '198.51.100.1' }))).sent, true);
});

test('a failure log entry names the kind and error', async () => {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
  const alerter = new Alerter({
    settings: () => ({ enabled: true, adminEmails: ['admin@example.test'], periodMinutes: 60 }),
    hostname: () => 'mail.example.test',
    sink: async () => {
      throw new Error('spool is full');
    },
    log,
    now: () => new Date(T0),
  });
  assert.equal((await alerter.handle(tripped())).sent, false);
  const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const fail = entries.find((e) => e.evt === 'alert.fail');
  assert.ok(fail, lines.join(''));
  assert.equal(fail.kind, 'threshold.tripped');
  assert.equal(fail.err, 'spool is full');
  assert.equal(fail.level, 50);
  assert.ok(!entries.some((e) => e.evt === 'alert.sent'));
});

test('events racing in while the sink runs are suppressed, not mailed twice', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const calls: Buffer[] = [];
  const alerter = new Alerter({
    settings: () => ({ enabled: true, adminEmails: ['admin@example.test'], periodMinutes: 60 }),
    hostname: () => 'mail.example.test',
    sink: async (_f, _t, m) => {
      calls.push(m);
      await gate;
    },
    log: pino({ level: 'silent' }),
    now: () => new Date(T0),
  });
  const first = alerter.handle(tripped());
  const second = await alerter.handle(tripped());
  assert.deepEqual(second, { sent: false, suppressed: 1 });
  release();
  assert.deepEqual(await first, { sent: true, suppressed: 0 });
  assert.equal(calls.length, 1);
});

// 2,000 IPs against a cap of 50: 40 times the cap shows the bound (20,000 would take ~10 s,
// nearly all of it building the 20,000 mails).
test('the key map stays bounded under thousands of distinct IPs', async () => {
  const { alerter, sent, advance } = setup({ periodMinutes: 60 }, 50);
  const keys = (alerter as unknown as { keys: Map<string, unknown> }).keys;
  for (let i = 0; i < 2_000; i++) {
    await alerter.handle(tripped({ ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }));
    assert.ok(keys.size <= 50, `size ${keys.size} after ${i + 1} IPs`);
  }
  assert.equal(sent.length, 2_000);
  assert.equal(keys.size, 50);
  // The most recent keys are kept (still suppressed); the oldest were dropped.
  assert.equal((await alerter.handle(tripped({ ip: '10.0.7.207' }))).sent, false); // i = 1999
  assert.equal((await alerter.handle(tripped({ ip: '10.0.0.0' }))).sent, true); // i = 0, dropped
  // Once the period has passed, expired keys are dropped on growth rather than the new ones.
  advance(61 * MIN);
  await alerter.handle(tripped({ ip: '203.0.113.1' }));
  assert.equal(keys.size, 1);
});
