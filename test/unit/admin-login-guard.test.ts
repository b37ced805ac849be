// The web admin's login guard: attempts counted as they start, per network (IPv4 address,
// IPv6 /64), a box-wide cap on password checks under way, a lock that expires.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoginGuard } from '../../src/admin/login-guard.js';
import { ManualClock } from '../helpers/clock.js';

const settings = () => ({ failures: 3, lockMs: 60_000 });

test('attempts count as they start: three in flight at once lock the network for the fourth, before any check fails', () => {
  const guard = new LoginGuard(new ManualClock(0), settings, 10_000, 10);
  const a = [guard.begin('192.0.2.7'), guard.begin('192.0.2.7'), guard.begin('192.0.2.7')];
  assert.deepEqual(a.map((x) => x.ok && x.locks), [false, false, true]);
  const fourth = guard.begin('192.0.2.7');
  assert.equal(fourth.ok, false);
  assert.equal(!fourth.ok && fourth.busy, false);
  // Another address is another network.
  assert.equal(guard.begin('192.0.2.8').ok, true);
});

test('one IPv6 /64 is one network, however many addresses it uses; an IPv4-mapped address is its IPv4 address', () => {
  const guard = new LoginGuard(new ManualClock(0), settings, 10_000, 100);
  for (let i = 1; i <= 3; i++) {
    const at = guard.begin(`2001:db8:0:1::${i.toString(16)}`);
    assert.ok(at.ok);
    at.done(false);
  }
  assert.equal(guard.begin('2001:db8:0:1:ffff:ffff:ffff:ffff').ok, false);
  assert.equal(guard.begin('2001:db8:0:2::1').ok, true);
  for (let i = 0; i < 3; i++) guard.begin('::ffff:198.51.100.9');
  assert.equal(guard.begin('198.51.100.9').ok, false);
});

test('the lock expires; the right password clears the count (and a lock its own attempt set)', async () => {
  const clock = new ManualClock(0);
  const guard = new LoginGuard(clock, settings, 10_000, 100);
  for (let i = 0; i < 3; i++) (guard.begin('192.0.2.1') as { done(s: boolean): void }).done(false);
  assert.equal(guard.begin('192.0.2.1').ok, false);
  await clock.advance(60_001);
  const after = guard.begin('192.0.2.1');
  assert.ok(after.ok && !after.locks, 'a new period starts from zero');
  after.done(true);
  const two = [guard.begin('192.0.2.1'), guard.begin('192.0.2.1')];
  assert.ok(two.every((x) => x.ok && !x.locks), 'a success cleared the count');
  const third = guard.begin('192.0.2.1');
  assert.ok(third.ok && third.locks);
  third.done(true);
  assert.equal(guard.begin('192.0.2.1').ok, true, 'the right password on the locking attempt unlocks');
});

test('box-wide, at most N password checks at once: the next is told to wait, from any network', () => {
  const guard = new LoginGuard(new ManualClock(0), () => ({ failures: 100, lockMs: 60_000 }), 10_000, 2);
  const a = guard.begin('10.0.0.1');
  const b = guard.begin('10.0.0.2');
  const c = guard.begin('10.0.0.3');
  assert.ok(a.ok && b.ok);
  assert.ok(!c.ok && c.busy);
  if (a.ok) {
    a.done(false);
    a.done(false); // a second done changes nothing
  }
  assert.equal(guard.begin('10.0.0.3').ok, true);
  assert.equal(guard.begin('10.0.0.4').ok, false);
});
