import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthLockout } from '../../src/policy/authLockout.js';

const MIN = 60_000;
function setup(maxFailures = 3, ipv6Prefix = 64) {
  let t = 1_000_000;
  const lock = new AuthLockout(() => ({ maxFailures, windowMs: 10 * MIN, lockMs: 15 * MIN, ipv6Prefix }), () => t);
  return { lock, advance: (ms: number) => (t += ms) };
}

test('the failure that reaches maxFailures locks the IP, not one before', () => {
  const { lock } = setup(3);
  assert.equal(lock.recordFailure('192.0.2.1', 'a@x.test').ipLocked, false);
  assert.equal(lock.recordFailure('192.0.2.1', 'b@x.test').ipLocked, false);
  assert.equal(lock.lockedBy('192.0.2.1', 'c@x.test'), null);
  assert.equal(lock.recordFailure('192.0.2.1', 'c@x.test').ipLocked, true);
  assert.equal(lock.lockedBy('192.0.2.1', 'anyone@x.test'), 'ip');
  assert.equal(lock.lockedBy('192.0.2.2', 'a@x.test'), null);
});

test('failures older than the window do not count (sliding window)', () => {
  const { lock, advance } = setup(3);
  lock.recordFailure('192.0.2.1', 'a@x.test');
  advance(6 * MIN);
  lock.recordFailure('192.0.2.1', 'a@x.test');
  advance(4 * MIN + 1); // the first failure is now 10 min + 1 ms old
  assert.equal(lock.recordFailure('192.0.2.1', 'a@x.test').ipLocked, false);
  assert.equal(lock.recordFailure('192.0.2.1', 'a@x.test').ipLocked, true);
});

test('a lock lasts lockMs exactly, then AUTH is judged again', () => {
  const { lock, advance } = setup(2);
  lock.recordFailure('192.0.2.1', 'a@x.test');
  lock.recordFailure('192.0.2.1', 'a@x.test');
  advance(15 * MIN - 1);
  assert.equal(lock.lockedBy('192.0.2.1', 'a@x.test'), 'ip');
  advance(1);
  assert.equal(lock.lockedBy('192.0.2.1', 'a@x.test'), null);
});

test('a guessed account is locked for the guessing IPs only; its owner elsewhere still logs in', () => {
  const { lock } = setup(3);
  lock.recordFailure('198.51.100.1', 'boss@x.test');
  lock.recordFailure('198.51.100.2', 'boss@x.test');
  const out = lock.recordFailure('198.51.100.3', 'boss@x.test');
  assert.equal(out.accountLocked, true);
  assert.deepEqual(out.accountSources, ['198.51.100.1', '198.51.100.2', '198.51.100.3']);
  for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) assert.equal(lock.lockedBy(ip, 'boss@x.test'), 'account');
  assert.equal(lock.lockedBy('192.0.2.50', 'boss@x.test'), null);
  assert.equal(lock.lockedBy('198.51.100.1', 'clerk@x.test'), null);
});

test('maxFailures 0 never locks; state stays bounded with many IPs', () => {
  const off = setup(0);
  for (let i = 0; i < 50; i++) assert.equal(off.lock.recordFailure('192.0.2.1', 'a@x.test').ipLocked, false);
  let t = 0;
  const small = new AuthLockout(() => ({ maxFailures: 5, windowMs: MIN, lockMs: MIN, ipv6Prefix: 64 }), () => t, 100);
  for (let i = 0; i < 5000; i++) {
    t += 1;
    small.recordFailure(`10.0.${i >> 8}.${i & 255}`, `u${i}@x.test`);
  }
  // Every map, the per-account and per-source indexes too (an evicted entry's index entry goes with it).
  const maps = small as unknown as Record<'pairs' | 'bySource' | 'byAccount' | 'locks', Map<string, unknown>>;
  for (const name of ['pairs', 'bySource', 'byAccount', 'locks'] as const) assert.ok(maps[name].size <= 100, `${name} holds ${maps[name].size}`);
});

test('entries evicted by the cap take their index entries with them, also while their window is still open', () => {
  const t = 0;
  const small = new AuthLockout(() => ({ maxFailures: 5, windowMs: 60 * MIN, lockMs: MIN, ipv6Prefix: 64 }), () => t, 10);
  // All within one window (no expiry), each on its own account: only the cap can bound them.
  for (let i = 0; i < 1000; i++) small.recordFailure(`10.1.${i >> 8}.${i & 255}`, `victim${i}@x.test`);
  const maps = small as unknown as Record<'pairs' | 'bySource' | 'byAccount', Map<string, unknown>>;
  assert.equal(maps.pairs.size, 10);
  assert.equal(maps.bySource.size, 10);
  assert.equal(maps.byAccount.size, 10);
});

test('an IPv6 /64 is one source: fresh addresses from it share one count and one lock', () => {
  const { lock } = setup(3);
  assert.equal(lock.recordFailure('2001:db8:1:2::a', 'a@x.test').ipLocked, false);
  assert.equal(lock.recordFailure('2001:db8:1:2:ffff:ffff:ffff:ffff', 'b@x.test').ipLocked, false);
  const out = lock.recordFailure('2001:DB8:1:2:0:0:0:99', 'c@x.test');
  assert.equal(out.ipLocked, true);
  assert.equal(out.source, '2001:db8:1:2::/64');
  assert.equal(lock.lockedBy('2001:db8:1:2:1234::1', 'anyone@x.test'), 'ip');
  // The next /64 is another customer.
  assert.equal(lock.lockedBy('2001:db8:1:3::a', 'anyone@x.test'), null);
});

test('an account guessed from many addresses of one /64 is locked for the whole /64', () => {
  const { lock } = setup(3);
  for (let i = 1; i <= 3; i++) lock.recordFailure(`2001:db8:7:7::${i}`, 'boss@x.test');
  assert.equal(lock.lockedBy('2001:db8:7:7::4242', 'boss@x.test'), 'ip');
  assert.equal(lock.lockedBy('2001:db8:7:8::1', 'boss@x.test'), null);
});

test('the IPv6 prefix length is configurable; 128 counts each address, IPv4-mapped addresses are IPv4', () => {
  const perAddress = setup(3, 128);
  for (let i = 1; i <= 3; i++) assert.equal(perAddress.lock.recordFailure(`2001:db8::${i}`, `u${i}@x.test`).ipLocked, false);
  const wide = setup(3, 48);
  wide.lock.recordFailure('2001:db8:5:1::1', 'a@x.test');
  wide.lock.recordFailure('2001:db8:5:2::1', 'b@x.test');
  const out = wide.lock.recordFailure('2001:db8:5:ffff::1', 'c@x.test');
  assert.deepEqual([out.ipLocked, out.source], [true, '2001:db8:5::/48']);
  const v4 = setup(2);
  v4.lock.recordFailure('::ffff:192.0.2.7', 'a@x.test');
  assert.equal(v4.lock.recordFailure('192.0.2.7', 'b@x.test').ipLocked, true);
});

test('a success clears only its own (source, account) pair, not the source\'s failures on other accounts', () => {
  const { lock } = setup(3);
  lock.recordFailure('192.0.2.9', 'victim@x.test');
  lock.recordFailure('192.0.2.9', 'victim@x.test');
  lock.recordSuccess('192.0.2.9', 'mine@x.test'); // the guesser logs in to an account it owns
  assert.equal(lock.recordFailure('192.0.2.9', 'victim@x.test').ipLocked, true);
});

test('a success from one source does not clear the account\'s failures from other sources', () => {
  const { lock } = setup(3);
  lock.recordFailure('198.51.100.1', 'boss@x.test');
  lock.recordFailure('198.51.100.2', 'boss@x.test');
  lock.recordSuccess('192.0.2.50', 'boss@x.test'); // the owner logs in from the office
  const out = lock.recordFailure('198.51.100.3', 'boss@x.test');
  assert.equal(out.accountLocked, true);
  assert.equal(out.accountFailures, 3);
  assert.equal(lock.lockedBy('192.0.2.50', 'boss@x.test'), null);
});

test('a success forgets that pair: the source\'s failures on that account no longer count', () => {
  const { lock } = setup(3);
  lock.recordFailure('192.0.2.9', 'me@x.test');
  lock.recordFailure('192.0.2.9', 'me@x.test');
  lock.recordSuccess('192.0.2.9', 'me@x.test'); // a typo, then the right password
  assert.equal(lock.recordFailure('192.0.2.9', 'me@x.test').ipFailures, 1);
});

test("failures counted against the account only (a suspended account's) do not lock the source, and a later success forgets them", () => {
  const { lock } = setup(3);
  lock.recordFailure('192.0.2.1', 'sus@x.test', 'account');
  lock.recordFailure('192.0.2.1', 'sus@x.test', 'account');
  assert.equal(lock.recordFailure('192.0.2.1', 'other@x.test').ipLocked, false, 'the account-only failures counted against the source');
  // Unsuspended, the owner logs in: what was counted while suspended is gone, so one typo
  // afterwards does not lock the account again.
  lock.recordSuccess('192.0.2.1', 'sus@x.test');
  assert.equal(lock.recordFailure('192.0.2.1', 'sus@x.test').accountLocked, false);
  assert.equal(lock.lockedBy('192.0.2.1', 'sus@x.test'), null);
});
