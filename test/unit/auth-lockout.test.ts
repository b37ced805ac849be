import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthLockout } from '../../src/policy/authLockout.js';

const MIN = 60_000;
function setup(maxFailures = 3) {
  let t = 1_000_000;
  const lock = new AuthLockout(() => ({ maxFailures, windowMs: 10 * MIN, lockMs: 15 * MIN }), () => t);
  return { lock, advance: (ms: number) => (t += ms) };
}

test('the failure that reaches maxFailures locks the IP, not one before', () => {
  const { lock } = setup(3);
  assert.equal(lock.recordFailure('192.0.2.1', 'a@x.test').locked, null);
  assert.equal(lock.recordFailure('192.0.2.1', 'b@x.test').locked, null);
  assert.equal(lock.lockedBy('192.0.2.1', 'c@x.test'), null);
  assert.equal(lock.recordFailure('192.0.2.1', 'c@x.test').locked, 'ip');
  assert.equal(lock.lockedBy('192.0.2.1', 'anyone@x.test'), 'ip');
  assert.equal(lock.lockedBy('192.0.2.2', 'a@x.test'), null);
});

test('failures older than the window do not count (sliding window)', () => {
  const { lock, advance } = setup(3);
  lock.recordFailure('192.0.2.1', 'a@x.test');
  advance(6 * MIN);
  lock.recordFailure('192.0.2.1', 'a@x.test');
  advance(4 * MIN + 1); // the first failure is now 10 min + 1 ms old
  assert.equal(lock.recordFailure('192.0.2.1', 'a@x.test').locked, null);
  assert.equal(lock.recordFailure('192.0.2.1', 'a@x.test').locked, 'ip');
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
  assert.equal(out.locked, 'account');
  for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) assert.equal(lock.lockedBy(ip, 'boss@x.test'), 'account');
  assert.equal(lock.lockedBy('192.0.2.50', 'boss@x.test'), null);
  assert.equal(lock.lockedBy('198.51.100.1', 'clerk@x.test'), null);
});

test('maxFailures 0 never locks; state stays bounded with many IPs', () => {
  const off = setup(0);
  for (let i = 0; i < 50; i++) assert.equal(off.lock.recordFailure('192.0.2.1', 'a@x.test').locked, null);
  let t = 0;
  const small = new AuthLockout(() => ({ maxFailures: 5, windowMs: MIN, lockMs: MIN }), () => t, 100);
  for (let i = 0; i < 5000; i++) {
    t += 1;
    small.recordFailure(`10.0.${i >> 8}.${i & 255}`, `u${i}@x.test`);
  }
  const sizes = small as unknown as { failures: Map<string, unknown>; locks: Map<string, unknown> };
  assert.ok(sizes.failures.size <= 100, `failures map holds ${sizes.failures.size}`);
  assert.ok(sizes.locks.size <= 100);
});
