// Stopping the panel while a command started from it is still running: nothing of the panel may
// live on after stop() (no timer re-armed by the command's answer, no redraw).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { ManualClock } from '../helpers/clock.js';
import { simGpioPanel } from '../../src/hw/gpio-sim.js';
import { memoryDisplay } from '../../src/hw/lcd-memory.js';
import { Panel } from '../../src/panel/panel.js';
import type { ControlRequest, ControlResponse } from '../../src/commands/control.js';
import type { ButtonName } from '../../src/hw/gpio.js';
import { SERVING } from '../helpers/panel-samples.js';

test('a command answering after stop() re-arms no menu timer', async () => {
  const clock = new ManualClock();
  const log = pino({ level: 'silent' });
  const gpio = simGpioPanel(log, clock);
  const display = memoryDisplay(20, 4);
  let release: (r: ControlResponse) => void = () => undefined;
  const run = async (req: ControlRequest): Promise<ControlResponse> => {
    if (req.argv[0] === 'status') return { ok: true, text: '', json: SERVING };
    if (req.argv.join(' ') === 'network show') return { ok: true, text: '', json: { address: '10.1.2.3' } };
    if (req.argv.join(' ') === 'ha switchover') return new Promise((r) => (release = r));
    return { ok: false, error: 'unknown' };
  };
  const settings = { cycleSeconds: 5, menuTimeoutSeconds: 60, debounceMs: 5, pollSeconds: 3600 };
  const panel = new Panel({ gpio, display, run, settings: () => settings, hostname: () => 'h', adminPort: 8443, clock, log });
  await panel.start();
  const press = async (b: ButtonName) => {
    const p = gpio.press(b, { bounces: 0, holdMs: 20 });
    await clock.advance(30);
    await p;
  };
  // Menu, down to "HA switchover", Enter, Enter = yes: the command runs and does not answer yet.
  for (const b of ['enter', 'down', 'down', 'down', 'enter', 'enter'] as ButtonName[]) await press(b);
  assert.equal(display.screen()[0]!.trim(), 'Switching over...');
  const stopped = panel.stop();
  release({ ok: true, text: 'switchover started' });
  await stopped;
  assert.equal(clock.pending, 0, 'no timer of the panel left after stop()');
  assert.deepEqual(display.screen().map((r) => r.trim()), ['', '', '', ''], 'the screen stays blank');
});
