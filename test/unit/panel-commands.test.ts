// The panel face end to end inside one process: the sim GPIO's bouncing press, the debouncer, the
// menu and the memory display, behind `panel press|screen|leds` as the registry runs them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { CommandRegistry } from '../../src/commands/registry.js';
import type { ControlRequest, ControlResponse } from '../../src/commands/control.js';
import { systemClock } from '../../src/core/clock.js';
import { simGpioPanel } from '../../src/hw/gpio-sim.js';
import { memoryDisplay } from '../../src/hw/lcd-memory.js';
import { Panel } from '../../src/panel/panel.js';
import { panelCommands } from '../../src/panel/commands.js';
import { SERVING } from '../helpers/panel-samples.js';

async function rig(board: { sim: boolean; model: string }, status: () => ControlResponse = () => ({ ok: true, text: '', json: SERVING })) {
  const log = pino({ level: 'silent' });
  const gpio = simGpioPanel(log);
  const display = memoryDisplay(20, 4);
  const calls: string[][] = [];
  const run = async (req: ControlRequest): Promise<ControlResponse> => {
    calls.push(req.argv);
    if (req.argv[0] === 'status') return status();
    if (req.argv.join(' ') === 'network show') return { ok: true, text: '', json: { address: '10.1.2.3' } };
    return { ok: false, error: `unknown command: ${req.argv.join(' ')}` };
  };
  const settings = { cycleSeconds: 300, menuTimeoutSeconds: 600, debounceMs: 5, pollSeconds: 3600 };
  const panel = new Panel({ gpio, display, run, settings: () => settings, hostname: () => 'h', adminPort: 8443, clock: systemClock, log });
  await panel.start();
  const registry = new CommandRegistry({ serving: () => true, role: () => 'active' });
  registry.register('panel', panelCommands(() => ({ panel, sim: board.sim ? gpio : null, board: board.model, debounceMs: () => settings.debounceMs })));
  return { panel, registry, calls, gpio };
}

test('panel press goes through the sim GPIO and the debouncer, and answers with the screen after it', async () => {
  const { panel, registry } = await rig({ sim: true, model: 'sim' });
  try {
    assert.deepEqual(await registry.run({ argv: ['panel', 'screen'] }), { ok: true, text: ['mail.example.test   ', 'IP 10.1.2.3         ', ' '.repeat(20), ' '.repeat(20)].join('\n'), json: { rows: ['mail.example.test   ', 'IP 10.1.2.3         ', ' '.repeat(20), ' '.repeat(20)] } });
    const r = await registry.run({ argv: ['panel', 'press', 'enter'] });
    assert.equal(r.ok, true);
    assert.equal((r as { text: string }).text.split('\n')[0], '>Network            ');
    const leds = await registry.run({ argv: ['panel', 'leds'] });
    assert.deepEqual(((leds as { json: Record<string, { pattern: string }> }).json).status!.pattern, 'steady');
  } finally {
    await panel.stop();
  }
});

test('panel press is refused on a board with real buttons, and for a button that does not exist', async () => {
  const { panel, registry } = await rig({ sim: false, model: 'mls-1000' });
  try {
    assert.deepEqual(await registry.run({ argv: ['panel', 'press', 'up'] }), { ok: false, error: 'panel press: the buttons of board mls-1000 are real; press them' });
    const bad = await registry.run({ argv: ['panel', 'press', 'x'.repeat(5000)] });
    assert.equal(bad.ok, false);
    assert.ok((bad as { error: string }).error.length < 120, 'the refusal quotes only the start of what was typed');
  } finally {
    await panel.stop();
  }
});

test('a status that cannot be read lights the status LED and says so on the LCD; the next good poll clears it', async () => {
  let up = false;
  const { panel, registry } = await rig({ sim: true, model: 'sim' }, () => (up ? { ok: true, text: '', json: SERVING } : { ok: false, error: 'the daemon is stopping' }));
  try {
    const screen = (await registry.run({ argv: ['panel', 'screen'] })) as { json: { rows: string[] } };
    assert.deepEqual(screen.json.rows.map((r) => r.trimEnd()), ['Status unreadable', 'the daemon is', 'stopping', '']);
    assert.equal(panel.leds().status.pattern, 'fast');
    up = true;
    await panel.refresh();
    assert.equal(panel.leds().status.pattern, 'steady');
    assert.equal(panel.screen()[0]!.trimEnd(), 'mail.example.test');
  } finally {
    await panel.stop();
  }
});

test('panel config: defaults, and every bad value refused naming its key', async () => {
  const { validateConfig } = await import('../../src/config/config.js');
  const base = { hostname: 'mail.example.test', domains: ['example.test'] };
  assert.deepEqual(validateConfig(base).panel, { enabled: true, lcdDevice: '', cycleSeconds: 5, menuTimeoutSeconds: 60, debounceMs: 30, pollSeconds: 5 });
  const bad: [Record<string, unknown>, string][] = [
    [{ debounceMs: 0 }, 'panel.debounceMs'],
    [{ debounceMs: 501 }, 'panel.debounceMs'],
    [{ cycleSeconds: 0.5 }, 'panel.cycleSeconds'],
    [{ menuTimeoutSeconds: 1 }, 'panel.menuTimeoutSeconds'],
    [{ pollSeconds: 1e9 }, 'panel.pollSeconds'],
    [{ lcdDevice: 7 }, 'panel.lcdDevice'],
    [{ enabled: 'yes' }, 'panel.enabled'],
    [{ buttons: {} }, 'panel'],
  ];
  for (const [panel, key] of bad) assert.throws(() => validateConfig({ ...base, panel }), (err: Error) => err.message.includes(key), JSON.stringify(panel));
});

test('the activity LED flashes after a poll that saw mail move, and goes dark after a quiet one', async () => {
  let sent = 7;
  const { panel } = await rig({ sim: true, model: 'sim' }, () => ({ ok: true, text: '', json: { ...SERVING, queue: { ...SERVING.queue, smarthost: { sentToday: sent } } } }));
  try {
    assert.equal(panel.leds().activity.pattern, 'off', 'the first poll has nothing to compare with');
    sent++;
    await panel.refresh();
    assert.equal(panel.leds().activity.pattern, 'fast');
    await panel.refresh();
    assert.equal(panel.leds().activity.pattern, 'off');
  } finally {
    await panel.stop();
  }
});
