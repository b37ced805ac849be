// The buttons: the sim GPIO's bouncing presses through the debouncer, on a ManualClock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { ManualClock } from '../helpers/clock.js';
import { Debouncer } from '../../src/panel/debounce.js';
import { simGpioPanel } from '../../src/hw/gpio-sim.js';
import type { ButtonName } from '../../src/hw/gpio.js';

const DEBOUNCE = 30;

function rig() {
  const clock = new ManualClock();
  const presses: ButtonName[] = [];
  const deb = new Debouncer(clock, () => DEBOUNCE, (b) => presses.push(b));
  return { clock, presses, deb };
}

test('a clean press counts once, only after the contact has been closed debounceMs', async () => {
  const { clock, presses, deb } = rig();
  deb.edge('enter', true);
  await clock.advance(DEBOUNCE - 1);
  assert.deepEqual(presses, []);
  await clock.advance(1);
  assert.deepEqual(presses, ['enter']);
  await clock.advance(1000); // held: still one press (no auto-repeat)
  deb.edge('enter', false);
  await clock.advance(DEBOUNCE);
  assert.deepEqual(presses, ['enter']);
});

test('bounce on closing and opening makes one press; a tap shorter than debounceMs makes none', async () => {
  const { clock, presses, deb } = rig();
  for (let i = 0; i < 5; i++) {
    deb.edge('up', true);
    await clock.advance(1);
    deb.edge('up', false);
    await clock.advance(1);
  }
  deb.edge('up', true);
  await clock.advance(DEBOUNCE + 5);
  deb.edge('up', false);
  await clock.advance(1);
  deb.edge('up', true); // release chatter
  await clock.advance(1);
  deb.edge('up', false);
  await clock.advance(DEBOUNCE * 3);
  assert.deepEqual(presses, ['up']);
  // A glitch: closed for less than the debounce time.
  deb.edge('down', true);
  await clock.advance(DEBOUNCE - 5);
  deb.edge('down', false);
  await clock.advance(DEBOUNCE * 3);
  assert.deepEqual(presses, ['up']);
});

test('a flood of edges yields no press until the contact settles, and then at most one', async () => {
  const { clock, presses, deb } = rig();
  for (let i = 0; i < 10_000; i++) {
    deb.edge('esc', i % 2 === 0);
    await clock.advance(i % 7 === 0 ? 3 : 1);
  }
  assert.deepEqual(presses, [], 'no stable level: no press');
  assert.ok(clock.pending <= 1, 'one timer per button, never a pile');
  deb.edge('esc', true);
  await clock.advance(DEBOUNCE);
  assert.deepEqual(presses, ['esc']);
  // Reopened and closed again without a stable open in between: still the same press.
  deb.edge('esc', false);
  await clock.advance(2);
  deb.edge('esc', true);
  await clock.advance(DEBOUNCE * 2);
  assert.deepEqual(presses, ['esc']);
  // A stable open, then a new close: a second press.
  deb.edge('esc', false);
  await clock.advance(DEBOUNCE);
  deb.edge('esc', true);
  await clock.advance(DEBOUNCE);
  assert.deepEqual(presses, ['esc', 'esc']);
});

test('buttons are debounced independently', async () => {
  const { clock, presses, deb } = rig();
  deb.edge('up', true);
  await clock.advance(10);
  deb.edge('down', true);
  await clock.advance(DEBOUNCE);
  assert.deepEqual(presses, ['up', 'down']);
});

test('the sim GPIO presses with bounce: every edge reaches the listener, the debouncer counts one press', async () => {
  const clock = new ManualClock();
  const gpio = simGpioPanel(pino({ level: 'silent' }), clock);
  const edges: string[] = [];
  const presses: ButtonName[] = [];
  const deb = new Debouncer(clock, () => DEBOUNCE, (b) => presses.push(b));
  gpio.onButton((b, closed) => {
    edges.push(`${b}:${closed ? 1 : 0}`);
    deb.edge(b, closed);
  });
  const done = gpio.press('enter', { holdMs: 100, bounces: 4 });
  await clock.advance(200);
  await done;
  assert.equal(edges.filter((e) => e === 'enter:1').length, 1 + 4 + 1, 'closing bounce and one release chatter');
  assert.equal(edges[0], 'enter:1');
  assert.equal(edges.at(-1), 'enter:0');
  await clock.advance(DEBOUNCE);
  assert.deepEqual(presses, ['enter']);
  gpio.setLed('status', true);
  assert.deepEqual(gpio.leds(), { status: true, ha: false, disk: false, activity: false });
});

test('the sim GPIO: presses of one button at the same time hold one contact; it opens after the last, and counts once', async () => {
  const clock = new ManualClock();
  const gpio = simGpioPanel(pino({ level: 'silent' }), clock);
  const edges: string[] = [];
  const presses: ButtonName[] = [];
  const deb = new Debouncer(clock, () => DEBOUNCE, (b) => presses.push(b));
  gpio.onButton((b, closed) => {
    edges.push(`${b}:${closed ? 1 : 0}`);
    deb.edge(b, closed);
  });
  const first = gpio.press('down', { holdMs: 100, bounces: 2 });
  await clock.advance(50);
  const second = gpio.press('down', { holdMs: 100, bounces: 2 });
  await clock.advance(60);
  await first;
  assert.equal(edges.at(-1), 'down:1', 'still held by the second press');
  await clock.advance(200);
  await second;
  assert.equal(edges.filter((e) => e === 'down:1').length, 1 + 2 + 1, 'one closing bounce, one release chatter');
  assert.equal(edges.at(-1), 'down:0');
  await clock.advance(DEBOUNCE);
  assert.deepEqual(presses, ['down']);
});
