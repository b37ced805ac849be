// The front panel on an HA pair: a switchover started by button presses on the active box's panel
// (`mlsd panel press`, the real CLI), the roles swapping, and both panels' HA screens and HA LEDs
// following. Each box's LCD is a socat pty pair with the LK emulator on the other end, and every
// screen is checked on the emulator too. (The config document is shared by the pair, so after the
// first sync both config files name box a's device; `panel.lcdDevice` is read at start only, so
// each box keeps the device it opened.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, type TestDaemon } from '../helpers/daemon.js';
import { startHaPair, startedInSync, type HaPair } from '../helpers/ha-pair.js';
import { PanelDriver } from '../helpers/panel.js';
import { startPtyPair, type PtyPair } from '../helpers/socat.js';
import { startLcdEmulator, type LcdEmulator } from '../helpers/lcd-emulator.js';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

let pair: HaPair;
let active: TestDaemon;
let standby: TestDaemon;
const lcds = new Map<TestDaemon, { pair: PtyPair; lcd: LcdEmulator }>();

const panelOf = (d: TestDaemon) => new PanelDriver(d, lcds.get(d)!.lcd);

/** Esc until the first status screen, then Down to the HA screen. */
async function haScreen(p: PanelDriver): Promise<string[]> {
  for (let i = 0; i < 10 && !(await p.text()).startsWith('mail.example.test'); i++) await p.press('esc');
  await p.press('esc');
  return p.press('down');
}

async function haLed(d: TestDaemon): Promise<string> {
  return (await panelOf(d).leds()).ha.pattern;
}

before(async () => {
  pair = await startHaPair({ net: '127.0.66', config: { panel: { cycleSeconds: 300, menuTimeoutSeconds: 600, debounceMs: 10, pollSeconds: 1 } } });
  for (const d of [pair.a, pair.b]) {
    const lcdPair = await startPtyPair(d.root, 'lcd');
    const path = join(d.configDir, 'config.json');
    const cfg = JSON.parse(await readFile(path, 'utf8'));
    cfg.panel.lcdDevice = lcdPair.a;
    await writeFile(path, JSON.stringify(cfg, null, 2));
    lcds.set(d, { pair: lcdPair, lcd: await startLcdEmulator(lcdPair.b, { cols: 20, rows: 4 }) });
  }
  ({ active, standby } = await startedInSync(pair, 30000));
  for (const d of [pair.a, pair.b]) await d.waitFor((l) => l.evt === 'panel.start' && l.lcd === lcds.get(d)!.pair.a);
});

after(async () => {
  for (const { lcd } of lcds.values()) await lcd.close();
  await pair?.cleanup();
  for (const { pair: p } of lcds.values()) await p.stop();
});

test('both panels show their HA role: screens and the ha LED (steady active, slow standby)', async () => {
  await eventually('ha LEDs of an in-sync pair', async () => (await haLed(active)) === 'steady' && (await haLed(standby)) === 'slow');
  assert.deepEqual(await haScreen(panelOf(active)), ['HA: active', 'Peer: standby', 'in sync', 'One disk only: 0']);
  assert.deepEqual(await haScreen(panelOf(standby)), ['HA: standby', 'Peer: active', 'in sync', '']);
  // A standby serves no mail: its queue screen says where mail runs.
  assert.deepEqual(await panelOf(standby).press('down'), ['Queue: on the', 'active box', '', '']);
});

test("the standby's panel shows the refusal of what only the active box may do", async () => {
  const p = panelOf(standby);
  await p.press('esc');
  await p.press('enter');
  for (let i = 0; i < 4; i++) await p.press('down');
  await p.presses('enter', 'enter');
  const refused = await p.press('enter');
  assert.equal(refused[0], 'Refused:');
  assert.match(refused.slice(1, 3).join(' '), /^this box is the HA standby box/);
  await p.press('esc');
});

test('a switchover started from the active box panel: the roles swap, both panels and ha LEDs follow', async () => {
  // The standby's panel is left on its HA screen: it must change with no press.
  assert.equal((await haScreen(panelOf(standby)))[0], 'HA: standby');
  const p = panelOf(active);
  await p.press('esc');
  assert.deepEqual(await p.press('enter'), ['>Network', ' Admin URL', ' Alarms', ' HA switchover']);
  await p.presses('down', 'down', 'down');
  assert.deepEqual(await p.press('enter'), ['Start HA switchover?', 'Enter=yes Esc=no', '', '']);
  const answer = await p.press('enter');
  assert.equal(answer[0], 'Switchover:', answer.join('\n'));
  const [was, now] = [active, standby];
  await eventually('roles swapped', async () => (await pair.status(was)).role === 'standby' && (await pair.status(now)).role === 'active', 30000);
  await eventually('ha LEDs swapped', async () => (await haLed(was)) === 'slow' && (await haLed(now)) === 'steady', 30000);
  await eventually('the new active box panel shows it', async () => (await panelOf(now).text()).startsWith('HA: active\nPeer: standby'), 15000);
  assert.deepEqual((await haScreen(panelOf(was))).slice(0, 2), ['HA: standby', 'Peer: active']);
  for (const { lcd } of lcds.values()) assert.deepEqual(lcd.display.problems, []);
  assert.equal((await panelOf(now).press('down'))[0], 'Queue: 0 msg', 'it serves mail now');
});
