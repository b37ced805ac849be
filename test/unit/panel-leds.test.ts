// The LED patterns as a golden table: the facts of a status poll in, the four patterns out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { panelFacts } from '../../src/panel/facts.js';
import { Blinker, ledLevel, ledPatterns, BLINK_TICK_MS, type LedPatterns } from '../../src/panel/leds.js';
import { simGpioPanel } from '../../src/hw/gpio-sim.js';
import { ManualClock } from '../helpers/clock.js';
import { SERVING, haPart } from '../helpers/panel-samples.js';

const patterns = (status: unknown, moved = false, pollError: string | null = null) => ledPatterns(panelFacts(status, null, 'h', pollError), moved);

const TABLE: { what: string; status: unknown; moved?: boolean; pollError?: string; want: LedPatterns }[] = [
  { what: 'all well, no HA', status: SERVING, want: { status: 'steady', ha: 'off', disk: 'off', activity: 'off' } },
  { what: 'mail moved since the last poll', status: SERVING, moved: true, want: { status: 'steady', ha: 'off', disk: 'off', activity: 'fast' } },
  { what: 'a critical event unacknowledged', status: { ...SERVING, alarms: { unacknowledged: 2, latest: 'x' } }, want: { status: 'fast', ha: 'off', disk: 'off', activity: 'off' } },
  { what: 'the status cannot be read', status: null, pollError: 'no answer', want: { status: 'fast', ha: 'off', disk: 'off', activity: 'off' } },
  { what: 'HA active, in sync', status: { ...SERVING, ha: haPart('active', 'in sync') }, want: { status: 'steady', ha: 'steady', disk: 'off', activity: 'off' } },
  { what: 'HA active, frames in flight', status: { ...SERVING, ha: haPart('active', 'in sync (3 frame(s) in flight)') }, want: { status: 'steady', ha: 'steady', disk: 'off', activity: 'off' } },
  { what: 'HA active, standby out of sync', status: { ...SERVING, ha: haPart('active', 'standby out of sync') }, want: { status: 'steady', ha: 'fast', disk: 'off', activity: 'off' } },
  { what: 'HA standby, in sync', status: { ha: haPart('standby', 'in sync'), alarms: { unacknowledged: 0, latest: null } }, want: { status: 'steady', ha: 'slow', disk: 'off', activity: 'off' } },
  { what: 'HA standby, behind', status: { ha: haPart('standby', 'behind') }, want: { status: 'steady', ha: 'fast', disk: 'off', activity: 'off' } },
  { what: 'HA peer lost', status: { ...SERVING, ha: { ...haPart('active', 'standby out of sync'), peer: { role: 'unreachable' } } }, want: { status: 'steady', ha: 'fast', disk: 'off', activity: 'off' } },
  { what: 'HA link fault', status: { ...SERVING, ha: { ...haPart('active', 'in sync'), linkFault: 'serial' } }, want: { status: 'steady', ha: 'fast', disk: 'off', activity: 'off' } },
  { what: 'disk failing', status: { ...SERVING, disk: { failing: true, present: true, usedPercent: 10 } }, want: { status: 'steady', ha: 'off', disk: 'fast', activity: 'off' } },
  { what: 'disk missing', status: { ...SERVING, disk: { failing: false, present: false, usedPercent: null } }, want: { status: 'steady', ha: 'off', disk: 'fast', activity: 'off' } },
  { what: 'disk over 80 % used', status: { ...SERVING, disk: { failing: false, present: true, usedPercent: 85 } }, want: { status: 'steady', ha: 'off', disk: 'steady', activity: 'off' } },
  { what: 'restore running', status: { ...SERVING, restore: { running: true, percent: 40 } }, want: { status: 'steady', ha: 'off', disk: 'slow', activity: 'off' } },
  { what: 'restore running on a failing disk: the failure wins', status: { ...SERVING, restore: { running: true, percent: 40 }, disk: { failing: true, present: true, usedPercent: 1 } }, want: { status: 'steady', ha: 'off', disk: 'fast', activity: 'off' } },
];

for (const row of TABLE) {
  test(`LEDs: ${row.what}`, () => {
    assert.deepEqual(patterns(row.status, row.moved ?? false, row.pollError ?? null), row.want);
  });
}

test('blink levels: fast toggles every tick (4 Hz), slow every four (1 Hz)', () => {
  const seq = (p: 'off' | 'steady' | 'slow' | 'fast') => Array.from({ length: 8 }, (_, t) => (ledLevel(p, t) ? 1 : 0)).join('');
  assert.equal(seq('fast'), '10101010');
  assert.equal(seq('slow'), '11110000');
  assert.equal(seq('steady'), '11111111');
  assert.equal(seq('off'), '00000000');
  assert.equal(1000 / (2 * BLINK_TICK_MS), 4);
});

test('the blinker drives the pins on the clock and writes only changes', async () => {
  const clock = new ManualClock();
  const gpio = simGpioPanel(pino({ level: 'silent' }), clock);
  let writes = 0;
  const set = gpio.setLed.bind(gpio);
  gpio.setLed = (led, on) => {
    writes++;
    set(led, on);
  };
  const b = new Blinker(gpio, clock);
  b.start();
  b.set({ status: 'steady', ha: 'slow', disk: 'fast', activity: 'off' });
  const seen: string[] = [];
  for (let i = 0; i < 8; i++) {
    const l = gpio.leds();
    seen.push(`${+l.status}${+l.ha}${+l.disk}${+l.activity}`);
    await clock.advance(BLINK_TICK_MS);
  }
  assert.deepEqual(seen, ['1110', '1100', '1110', '1100', '1010', '1000', '1010', '1000']);
  // Only real changes were written: count the bits that changed from all-dark through every state seen.
  const l = gpio.leds();
  const states = ['0000', ...seen, `${+l.status}${+l.ha}${+l.disk}${+l.activity}`];
  const changes = states.slice(1).reduce((n, st, i) => n + [...st].filter((c, j) => c !== states[i]![j]).length, 0);
  assert.equal(writes, changes);
  b.stop();
  assert.deepEqual(gpio.leds(), { status: false, ha: false, disk: false, activity: false });
});
