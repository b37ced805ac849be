import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlidingMinute, localDay } from '../../src/policy/window.js';
import { ThresholdPolicy, type DayCount } from '../../src/policy/thresholds.js';
import { validateConfig } from '../../src/config/config.js';
import { formatReply } from '../../src/policy/reply.js';
import type { EventInput } from '../../src/events/events.js';
import type { SessionFacts } from '../../src/policy/types.js';

test('sliding minute: an event counts for 60 s to the second, not until the clock minute turns', () => {
  const w = new SlidingMinute();
  const t0 = Date.parse('2026-11-30T10:00:59.900Z'); // just before a minute boundary
  w.add(t0);
  w.add(t0);
  assert.equal(w.count(t0 + 200), 2); // a fixed minute would have reset here
  assert.equal(w.count(t0 + 59_000), 2);
  assert.equal(w.count(t0 + 59_099), 2); // 10:01:58.999: still inside the event's 60 s
  assert.equal(w.count(Date.parse('2026-11-30T10:01:59.000Z')), 0); // 60 s after its second began
  assert.equal(w.idle(Date.parse('2026-11-30T10:01:59.000Z')), true);
});

test('local day rolls over at local midnight of the configured timezone', () => {
  assert.equal(localDay(Date.parse('2026-11-30T15:59:59Z'), 'Asia/Taipei'), '2026-11-30');
  assert.equal(localDay(Date.parse('2026-11-30T16:00:00Z'), 'Asia/Taipei'), '2026-12-01');
  assert.equal(localDay(Date.parse('2026-11-30T16:00:00Z'), 'UTC'), '2026-11-30');
});

function setup(thresholds: Record<string, unknown>, timezone = 'Asia/Taipei') {
  let t = Date.parse('2026-11-30T15:59:00Z'); // 23:59 in Taipei
  let cfg = validateConfig({ timezone, thresholds: { alert: true, ...thresholds } });
  const events: EventInput[] = [];
  const saved = new Map<string, DayCount>();
  const p = new ThresholdPolicy(() => cfg, (e) => events.push(e), { save: (k, v) => saved.set(k, v) }, () => t);
  return {
    p,
    events,
    saved,
    advance: (ms: number) => (t += ms),
    set: (th: Record<string, unknown>) => {
      cfg = validateConfig({ timezone, thresholds: { ...cfg.thresholds, ...th } });
      p.reload();
    },
  };
}
const pc = (ip = '192.0.2.7', login: string | null = null): SessionFacts => ({ clientIp: ip, login, listener: 'mx', tls: false });
const show = (v: ReturnType<ThresholdPolicy['mail']>) => (v.ok ? 'accept' : formatReply(v.reply));

test('per-IP messages per minute: the limit-th message passes, the next gets 450 4.7.1 naming the limit', () => {
  const { p, events } = setup({ perIpMessagesPerMinute: 3 });
  for (let i = 0; i < 3; i++) {
    assert.equal(show(p.mail(pc())), 'accept');
    p.committed(pc());
  }
  assert.equal(show(p.mail(pc())), '450 4.7.1 Error: too many messages from 192.0.2.7 in the last minute (limit thresholds.perIpMessagesPerMinute = 3), try again later');
  assert.equal(show(p.mail(pc('192.0.2.8'))), 'accept');
  assert.deepEqual(events.map((e) => e.kind), ['threshold.warning', 'threshold.tripped']);
  assert.equal(events[1]!.ip, '192.0.2.7');
  assert.equal(events[1]!.limit, 'thresholds.perIpMessagesPerMinute');
});

test('recipients per minute refuse with 452 4.5.3 at RCPT and count only accepted recipients', () => {
  const { p } = setup({ perIpRecipientsPerMinute: 2 });
  assert.equal(show(p.rcpt(pc())), 'accept');
  assert.equal(show(p.rcpt(pc())), 'accept');
  assert.equal(show(p.rcpt(pc())), '452 4.5.3 Error: too many recipients from 192.0.2.7 in the last minute (limit thresholds.perIpRecipientsPerMinute = 2), try again later');
  assert.equal(show(p.rcpt(pc())), show(p.rcpt(pc()))); // refusals are not counted
});

test('per-account day limit holds until local midnight, then a new day starts', () => {
  const { p, advance } = setup({ perAccountMessagesPerDay: 2 });
  const bob = pc('192.0.2.1', 'bob@example.test');
  p.committed(bob);
  p.committed({ ...bob, clientIp: '198.51.100.9' }); // the account is counted over all its IPs
  assert.match(show(p.mail({ ...bob, clientIp: '203.0.113.3' })), /^450 4\.7\.1 Error: too many messages from bob@example\.test today \(limit thresholds\.perAccountMessagesPerDay = 2\)/);
  advance(59_999); // 23:59:59.999 Taipei
  assert.notEqual(show(p.mail(bob)), 'accept');
  advance(1); // midnight in Taipei
  assert.equal(show(p.mail(bob)), 'accept');
});

test('day counters are saved and restored: a restart hands out no fresh quota', () => {
  const a = setup({ perIpMessagesPerDay: 2 });
  a.p.committed(pc());
  a.p.committed(pc());
  const b = setup({ perIpMessagesPerDay: 2 });
  b.p.restore(a.saved);
  assert.notEqual(show(b.p.mail(pc())), 'accept');
  const c = setup({ perIpMessagesPerDay: 2 });
  c.advance(24 * 3600_000);
  c.p.restore(a.saved); // yesterday's counts are not restored
  assert.equal(show(c.p.mail(pc())), 'accept');
});

test('exemptions and live changes; 0 means no limit', () => {
  const { p, set } = setup({ perIpMessagesPerMinute: 1, exemptIps: ['192.0.2.0/28'], exemptAccounts: ['news@example.test'] });
  p.committed(pc('192.0.2.200'));
  assert.notEqual(show(p.mail(pc('192.0.2.200'))), 'accept');
  for (let i = 0; i < 5; i++) p.committed(pc('192.0.2.5'));
  assert.equal(show(p.mail(pc('192.0.2.5'))), 'accept');
  for (let i = 0; i < 5; i++) p.committed(pc('203.0.113.50', 'news@example.test'));
  assert.equal(show(p.mail(pc('203.0.113.50', 'news@example.test'))), 'accept');
  set({ perIpMessagesPerMinute: 0 });
  assert.equal(show(p.mail(pc('192.0.2.200'))), 'accept');
});

test('connections: per-minute rate and concurrent count, released at close', () => {
  const { p } = setup({ perIpConcurrentConnections: 2, perIpConnectionsPerMinute: 5 });
  assert.equal(show(p.connect(pc())), 'accept');
  assert.equal(show(p.connect(pc())), 'accept');
  assert.equal(show(p.connect(pc())), '421 4.7.0 Error: too many open connections from 192.0.2.7 (limit thresholds.perIpConcurrentConnections = 2), try again later');
  p.disconnect(pc());
  assert.equal(show(p.connect(pc())), 'accept');
  p.disconnect(pc());
  assert.equal(show(p.connect(pc())), 'accept'); // the 5th attempt (refused ones count too)
  p.disconnect(pc());
  assert.equal(show(p.connect(pc())), '421 4.7.0 Error: too many connections from 192.0.2.7 in the last minute (limit thresholds.perIpConnectionsPerMinute = 5), try again later');
});

test('memory stays bounded with thousands of client IPs', () => {
  let t = 0;
  const cfg = validateConfig({ thresholds: { perIpMessagesPerMinute: 100 } });
  const p = new ThresholdPolicy(() => cfg, () => undefined, { save: () => undefined }, () => t, 500);
  for (let i = 0; i < 20000; i++) {
    t += 10;
    p.committed(pc(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`));
  }
  const s = p.stats();
  assert.ok(s.minuteWindows <= 500 && s.dayCounters <= 500, JSON.stringify(s));
});

test('open connections per network: addresses of one /24 (or IPv6 /64) share a limit; another network, a relay.allowIps LAN and an exempt client do not count in it', () => {
  const at = (ip: string): SessionFacts => ({ clientIp: ip, listener: 'mx', login: null, tls: false });
  const { p } = setup({ perIpConcurrentConnections: 2, perSubnetConcurrentConnections: 3, exemptIps: ['198.51.100.9'] });
  assert.equal(p.connect(at('192.0.2.1')).ok, true);
  assert.equal(p.connect(at('192.0.2.2')).ok, true);
  assert.equal(p.connect(at('::ffff:192.0.2.3')).ok, true);
  assert.equal(show(p.connect(at('192.0.2.4'))), '421 4.7.0 Error: too many open connections from 192.0.2.0/24 (limit thresholds.perSubnetConcurrentConnections = 3), try again later');
  assert.equal(p.connect(at('192.0.3.4')).ok, true, 'the next /24 has its own');
  p.disconnect(at('192.0.2.2'));
  assert.equal(p.connect(at('192.0.2.4')).ok, true, 'a closed connection frees its network slot');
  // One customer's /64: every address in it is the same client.
  for (const ip of ['2001:db8:1:2::1', '2001:db8:1:2:ffff::7', '2001:db8:1:2:0:0:0:abcd']) assert.equal(p.connect(at(ip)).ok, true);
  assert.match(show(p.connect(at('2001:db8:1:2::99'))), /too many open connections from 2001:db8:1:2:0:0:0:0\/64 /);
  assert.equal(p.connect(at('2001:db8:1:3::1')).ok, true);
  for (let i = 0; i < 5; i++) assert.equal(p.connect(at('198.51.100.9')).ok, true, 'exempt');
});

test('relay.allowIps clients are not counted per network (a LAN), but still per address', () => {
  const at = (ip: string): SessionFacts => ({ clientIp: ip, listener: 'mx', login: null, tls: false });
  const cfg = validateConfig({ relay: { allowIps: ['10.1.1.0/24'] }, thresholds: { perIpConcurrentConnections: 1, perSubnetConcurrentConnections: 1 } });
  const p = new ThresholdPolicy(() => cfg, () => undefined, { save: () => undefined });
  for (let i = 1; i <= 5; i++) assert.equal(p.connect(at(`10.1.1.${i}`)).ok, true);
  assert.match(show(p.connect(at('10.1.1.1'))), /perIpConcurrentConnections = 1/);
});

test('per-network limits have defaults a NAT site does not reach: 50 per address, 100 per /24 or /64', () => {
  const t = validateConfig({}).thresholds;
  assert.deepEqual([t.perIpConcurrentConnections, t.perSubnetConcurrentConnections, t.subnetPrefixV4, t.subnetPrefixV6], [50, 100, 24, 64]);
  assert.throws(() => validateConfig({ thresholds: { subnetPrefixV6: 200 } }), /thresholds\.subnetPrefixV6/);
  assert.throws(() => validateConfig({ smtp: { stress: { threshold: 1.5 } } }), /smtp\.stress\.threshold/);
});

test('near their limits: counters at half their limit or more, closest first, at most 10; unlimited and past days left out', () => {
  const { p, advance } = setup({ perIpMessagesPerDay: 10, perAccountMessagesPerDay: 4, perIpMessagesPerMinute: 0 });
  // Yesterday (Taipei) 192.0.2.99 sent 9 of 10: a new day starts it at 0.
  for (let i = 0; i < 9; i++) p.committed(pc('192.0.2.99'));
  advance(120_000); // 00:01 in Taipei, the next day
  for (let i = 0; i < 4; i++) p.committed(pc('192.0.2.1')); // 4/10: below half
  for (let i = 0; i < 6; i++) p.committed(pc('192.0.2.2')); // 6/10
  for (let i = 0; i < 3; i++) p.committed(pc('2001:db8::7', 'alice@example.test')); // ip 3/10; account 3/4
  const near = p.nearLimits();
  assert.deepEqual(near, [
    { limit: 'thresholds.perAccountMessagesPerDay', account: 'alice@example.test', count: 3, max: 4 },
    { limit: 'thresholds.perIpMessagesPerDay', ip: '192.0.2.2', count: 6, max: 10 },
  ]);
  // A flood of distinct clients at 5 to 7 of 10: the ten closest are kept, alice (3/4) first.
  for (let n = 0; n < 15; n++) for (let i = 0; i < 5 + (n % 3); i++) p.committed(pc(`198.51.100.${n}`));
  const top = p.nearLimits();
  assert.equal(top.length, 10);
  assert.ok(top.every((x, i) => i === 0 || x.count / x.max <= top[i - 1]!.count / top[i - 1]!.max));
  assert.equal(top[0]!.account, 'alice@example.test');
});
