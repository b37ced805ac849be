import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../helpers/clock.js';
import { Admission, type AdmissionSettings } from '../../src/smtp/admission.js';
import { formatReply, type Reply } from '../../src/smtp/reply.js';
import type { EventInput } from '../../src/events/events.js';
import type { Logger } from '../../src/log/logger.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as unknown as Logger;

function setup(over: Partial<AdmissionSettings> = {}) {
  const clock = new ManualClock();
  const settings: AdmissionSettings = { maxClients: 10, submissionReserve: 0.2, threshold: 0.8, idleTimeoutMs: 10_000, errorLimit: 1, alertAfterMs: 300_000, ...over };
  const events: EventInput[] = [];
  const closed: { id: string; reply: string }[] = [];
  const a: Admission = new Admission({
    settings: () => settings,
    clock,
    emit: (e) => events.push(e),
    log: quiet,
    // As the server does: the session closes, and its close releases it again (a no-op by then).
    close: (id: string, reply: Reply) => {
      closed.push({ id, reply: formatReply(reply) });
      a.release(id);
    },
  });
  return { a, clock, events, closed, settings, kinds: () => events.map((e) => e.kind) };
}

const IDLE = '421 4.7.0 Error: server busy, closing idle connection';

test('the MX listeners leave the submission reserve free; submission gets the whole budget', () => {
  const { a } = setup();
  for (let i = 0; i < 8; i++) assert.equal(a.admit(`mx${i}`, '192.0.2.1', 'mx').ok, true);
  for (let i = 0; i < 8; i++) a.dataStarted(`mx${i}`);
  // 8 = 10 - 20%: every MX session is inside DATA, none can be closed to make room.
  assert.equal(formatReply((a.admit('mx8', '192.0.2.2', 'mx') as { reply: Reply }).reply), '421 4.7.0 Error: too many connected clients, try again in a moment');
  assert.equal(a.admit('sub1', '198.51.100.1', 'submission').ok, true);
  assert.equal(a.admit('sub2', '198.51.100.1', 'submission').ok, true);
  assert.equal(a.size, 10);
});

test('stress starts at the threshold share (an event with the figures), not before', () => {
  const { a, events } = setup();
  for (let i = 0; i < 7; i++) a.admit(`s${i}`, '192.0.2.1', 'mx');
  assert.equal(a.underStress, false);
  assert.equal(a.errorLimit(10), 10);
  a.admit('s7', '192.0.2.1', 'mx');
  assert.equal(a.underStress, true);
  assert.equal(a.errorLimit(10), 1, 'one refusal ends a session under stress');
  assert.equal(events.length, 1);
  assert.equal(events[0]!.kind, 'smtp.stress.on');
  assert.match(events[0]!.text, /8 of 10 sessions/);
});

test('under stress every anonymous session idle for idleTimeoutMs is closed with 421 4.7.0, before MAIL or past it; one that keeps talking is not', async () => {
  const { a, clock, closed } = setup();
  for (let i = 0; i < 8; i++) a.admit(`s${i}`, '192.0.2.1', 'mx');
  a.reachedMail('s0'); // said MAIL FROM, then waits: the evasion of a flood
  await clock.advance(9_000);
  a.active('s1');
  assert.equal(closed.length, 0);
  await clock.advance(1_000);
  assert.deepEqual(closed.map((c) => c.id).sort(), ['s0', 's2', 's3', 's4', 's5', 's6', 's7']);
  assert.ok(closed.every((c) => c.reply === IDLE));
  await clock.advance(9_000);
  assert.equal(closed.some((c) => c.id === 's1'), true, 's1 idle for 10 s since its last command');
});

test('under stress a DATA is closed only when its bytes stop for idleTimeoutMs; one moving, or waiting for our reply, stays; none is closed to make room', async () => {
  const { a, clock, closed } = setup();
  for (let i = 0; i < 8; i++) {
    a.admit(`s${i}`, '192.0.2.1', 'mx');
    a.reachedMail(`s${i}`);
    a.dataStarted(`s${i}`);
  }
  assert.equal(a.admit('new', '203.0.113.9', 'mx').ok, false, 'a transfer is never closed to make room');
  a.busy('s2', true); // its final dot is in: the scan and the commit are ours to finish
  // Bytes keep coming on every transfer but s1's.
  for (let t = 0; t < 12; t++) {
    await clock.advance(5_000);
    for (let i = 0; i < 8; i++) if (i !== 1 && i !== 2) a.active(`s${i}`);
  }
  assert.deepEqual(closed.map((c) => c.id), ['s1'], 'only the transfer whose bytes stopped');
  a.dataEnded('s2');
  await clock.advance(9_000);
  assert.equal(closed.some((c) => c.id === 's2'), false);
  await clock.advance(1_000);
  assert.equal(closed.some((c) => c.id === 's2'), true, 'idle 10 s after its DATA got its reply');
});

test('under stress a logged-in session keeps the normal timeout: never closed for idleness', async () => {
  const { a, clock, closed } = setup();
  for (let i = 0; i < 8; i++) a.admit(`s${i}`, '192.0.2.1', i < 2 ? 'submission' : 'mx');
  a.authenticated('s0');
  a.authenticated('s1');
  a.reachedMail('s1');
  await clock.advance(60_000);
  assert.equal(closed.length, 6);
  assert.equal(closed.some((c) => c.id === 's0' || c.id === 's1'), false);
});

test('a full budget makes room by closing the longest-idle anonymous session before MAIL, then anonymous past MAIL, then logged in before MAIL; never inside DATA nor logged in past MAIL', async () => {
  const { a, clock, closed } = setup({ submissionReserve: 0 });
  for (let i = 0; i < 10; i++) {
    a.admit(`s${i}`, '192.0.2.1', i < 5 ? 'submission' : 'mx');
    await clock.advance(100);
  }
  a.authenticated('s0'); // the idlest, but logged in
  a.reachedMail('s1');
  a.active('s2');
  assert.equal(a.admit('new1', '203.0.113.9', 'mx').ok, true);
  assert.deepEqual(closed.map((c) => c.id), ['s3']);
  assert.equal(a.admit('new2', '203.0.113.9', 'mx').ok, true);
  assert.deepEqual(closed.map((c) => c.id), ['s3', 's4']);
  assert.equal(a.size, 10);
  // Now no anonymous session is before MAIL: the idlest anonymous one past MAIL goes.
  for (const id of ['new1', 'new2', 's2', 's5', 's6', 's7', 's8', 's9']) a.reachedMail(id);
  a.dataStarted('s9');
  assert.equal(a.admit('new3', '203.0.113.9', 'mx').ok, true);
  assert.deepEqual(closed.map((c) => c.id).at(-1), 's1', 'the idlest anonymous past MAIL (s9 is inside DATA)');
  a.reachedMail('new3');
  a.authenticated('s5');
  a.authenticated('s6');
  // The anonymous ones past MAIL: the idlest first (s2 talked after s7 and s8 connected).
  for (const id of ['s7', 's8', 's2', 'new1', 'new2', 'new3']) {
    assert.equal(a.admit(`n-${id}`, '198.51.100.1', 'mx').ok, true);
    a.active(`n-${id}`);
    a.reachedMail(`n-${id}`);
    a.authenticated(`n-${id}`);
  }
  assert.deepEqual(closed.map((c) => c.id).slice(3), ['s7', 's8', 's2', 'new1', 'new2', 'new3']);
  assert.equal(a.admit('last', '198.51.100.1', 'mx').ok, true);
  assert.equal(closed.at(-1)!.id, 's0', 'the logged-in session before MAIL, after every anonymous one');
  a.reachedMail('last');
  a.authenticated('last');
  assert.equal(a.admit('refused', '198.51.100.1', 'mx').ok, false, 'logged in past MAIL (s5, s6) or inside DATA (s9): nothing to close');
});

test('to make room, the address holding the most sessions loses first, even when a lone client has been idle longer', async () => {
  const { a, clock, closed } = setup({ submissionReserve: 0 });
  a.admit('lone', '203.0.113.1', 'mx'); // a real client pausing for a second
  await clock.advance(1_000);
  // 192.0.2.1 holds four (f0-f3), 192.0.2.2 three, 192.0.2.3 two.
  for (let i = 0; i < 9; i++) {
    a.admit(`f${i}`, i < 4 ? '192.0.2.1' : i < 7 ? '192.0.2.2' : '192.0.2.3', 'mx');
    await clock.advance(10);
  }
  a.active('f0');
  assert.equal(a.admit('f9', '198.51.100.7', 'mx').ok, true);
  assert.deepEqual(closed.map((c) => c.id), ['f1'], 'from 192.0.2.1, its idlest session (f0 just talked)');
  for (let i = 10; i < 16; i++) a.admit(`f${i}`, '192.0.2.9', 'mx');
  assert.equal(closed.some((c) => c.id === 'lone'), false);
});

test('an MX client at the MX cap makes room among MX sessions only: submission sessions keep the reserve', () => {
  const { a, closed } = setup();
  a.admit('sub', '198.51.100.1', 'submission');
  for (let i = 0; i < 8; i++) a.admit(`mx${i}`, '192.0.2.1', 'mx');
  assert.equal(a.admit('mx-new', '203.0.113.9', 'mx').ok, true);
  assert.deepEqual(closed.map((c) => c.id), ['mx0']);
});

test('stress ends after a whole idle period below three quarters of the start level, closing the flood\'s remaining idle sessions first', async () => {
  const { a, clock, kinds, events } = setup({ maxClients: 100, submissionReserve: 0 });
  for (let i = 0; i < 80; i++) a.admit(`f${i}`, '192.0.2.1', 'mx');
  a.admit('good', '203.0.113.9', 'mx');
  a.busy('good', true); // waiting for our reply to its command
  assert.equal(a.underStress, true);
  await clock.advance(5_000);
  for (let i = 0; i < 40; i++) a.release(`f${i}`); // half of the flood leaves: 41 < 60
  assert.equal(a.underStress, true, 'not at once');
  await clock.advance(5_000); // the rest has been idle for 10 s
  assert.equal(a.size, 1);
  assert.equal(a.underStress, true);
  await clock.advance(5_000);
  assert.equal(a.underStress, false);
  assert.deepEqual(kinds(), ['smtp.stress.on', 'smtp.stress.off']);
  assert.match(events[1]!.text, /40 idle session\(s\) closed/);
  assert.equal(clock.pending, 0, 'no timer left when not under stress');
});

test('stress that lasts alertAfterMs emits one critical smtp.stress.lasting event naming the busiest clients', async () => {
  const { a, clock, events } = setup({ alertAfterMs: 60_000 });
  for (let i = 0; i < 8; i++) {
    a.admit(`s${i}`, i < 6 ? '192.0.2.66' : '192.0.2.7', 'mx');
    a.busy(`s${i}`, true); // waiting for our reply, not idle: stress stays
  }
  await clock.advance(59_000);
  assert.equal(events.filter((e) => e.kind === 'smtp.stress.lasting').length, 0);
  await clock.advance(2_000);
  const lasting = events.filter((e) => e.kind === 'smtp.stress.lasting');
  assert.equal(lasting.length, 1);
  assert.equal(lasting[0]!.severity, 'critical');
  assert.match(lasting[0]!.text, /192\.0\.2\.66 \(6\), 192\.0\.2\.7 \(2\)/);
  await clock.advance(600_000);
  assert.equal(events.filter((e) => e.kind === 'smtp.stress.lasting').length, 1);
  a.stop();
  assert.equal(clock.pending, 0);
});

test('a short stress raises no alert', async () => {
  const { a, clock, kinds } = setup({ alertAfterMs: 60_000 });
  for (let i = 0; i < 8; i++) a.admit(`s${i}`, '192.0.2.1', 'mx');
  for (let i = 0; i < 8; i++) a.release(`s${i}`);
  await clock.advance(120_000);
  assert.deepEqual(kinds(), ['smtp.stress.on', 'smtp.stress.off']);
});
