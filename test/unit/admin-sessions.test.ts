// Web admin sessions: idle timeout, a page's own refreshes do not keep an unattended session
// alive, a hard maximum age, a bounded store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionStore, csrfMatches } from '../../src/admin/sessions.js';
import { ManualClock } from '../helpers/clock.js';

test('idle sessions end; a background refresh keeps nothing alive; activity does', async () => {
  const clock = new ManualClock();
  const store = new SessionStore(clock, () => 60_000);
  const a = store.create('admin', '192.0.2.1');
  const b = store.create('admin', '192.0.2.2');
  assert.notEqual(a.id, b.id);
  for (let i = 0; i < 2; i++) {
    await clock.advance(30_000);
    assert.ok(store.touch(a.id, false), 'a refresh within the idle time sees the session');
    assert.ok(store.touch(b.id));
  }
  await clock.advance(30_000);
  // a: only refreshed by the page for 90 s: gone; b: used at 60 s: still there.
  assert.equal(store.touch(a.id, false), null);
  assert.ok(store.touch(b.id, false));
  assert.equal(store.touch(a.id), null, 'an ended session does not come back');
  const c = store.create('admin', '192.0.2.3');
  await clock.advance(50_000);
  assert.ok(store.touch(c.id));
  await clock.advance(50_000);
  assert.ok(store.touch(c.id), 'activity restarts the idle clock');
});

test('twelve hours at most, however active; at most 32 sessions; unknown ids and CSRF tokens refused', async () => {
  const clock = new ManualClock();
  const store = new SessionStore(clock, () => 3_600_000);
  const s = store.create('admin', '192.0.2.1');
  for (let i = 0; i < 14; i++) {
    await clock.advance(3_000_000);
    assert.ok(store.touch(s.id), `alive at ${(i + 1) * 50} minutes`);
  }
  await clock.advance(3_000_000);
  assert.equal(store.touch(s.id), null, 'gone after 12 hours though used every 50 minutes');
  for (let i = 0; i < 40; i++) store.create('admin', '192.0.2.1');
  assert.equal(store.size, 32);
  assert.equal(store.touch('A'.repeat(43)), null);
  assert.equal(store.touch(undefined), null);
  const t = store.create('admin', '192.0.2.9');
  assert.ok(csrfMatches(t, t.csrf));
  assert.equal(csrfMatches(t, t.csrf.slice(1)), false);
  assert.equal(csrfMatches(t, undefined), false);
  assert.equal(csrfMatches(t, [t.csrf]), false);
});
