// The menu state machine with a fake command layer and a ManualClock: every screen of a walk,
// the LAN editor, refusals and failures of commands, the cycle and the menu timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../helpers/clock.js';
import { Menu } from '../../src/panel/menu.js';
import { panelFacts, type PanelFacts } from '../../src/panel/facts.js';
import type { ControlResponse } from '../../src/commands/control.js';
import type { ButtonName } from '../../src/hw/gpio.js';
import { SERVING } from '../helpers/panel-samples.js';

type Answer = ControlResponse | ((argv: string[]) => ControlResponse | Promise<ControlResponse>);

/** A command layer that answers from a table keyed by the command's first two words, and records every call. */
class FakeRunner {
  calls: string[][] = [];
  constructor(readonly answers: Record<string, Answer>) {}
  async run(argv: string[]): Promise<ControlResponse> {
    this.calls.push(argv);
    const a = this.answers[argv.slice(0, 2).join(' ')];
    if (!a) return { ok: false, error: `unknown command: ${argv.join(' ')}` };
    return typeof a === 'function' ? a(argv) : a;
  }
}

const LAN = { interface: 'lan0', address: '192.168.1.10', netmask: '255.255.255.0', gateway: '192.168.1.1' };

function rig(answers: Record<string, Answer> = {}, opts: { cols?: number; rows?: number; status?: unknown } = {}) {
  const clock = new ManualClock();
  const runner = new FakeRunner({ 'network show': { ok: true, text: '', json: LAN }, ...answers });
  let facts: PanelFacts = panelFacts(opts.status ?? SERVING, LAN, 'h');
  let refreshes = 0;
  let changes = 0;
  const menu = new Menu({
    run: (argv) => runner.run(argv),
    facts: () => facts,
    refresh: async () => {
      refreshes++;
    },
    settings: () => ({ cycleSeconds: 5, menuTimeoutSeconds: 60 }),
    adminPort: 8443,
    cols: opts.cols ?? 20,
    rows: opts.rows ?? 4,
    clock,
    changed: () => changes++,
  });
  menu.start();
  const press = async (...buttons: ButtonName[]) => {
    for (const b of buttons) await menu.press(b);
    return menu.lines().map((l) => l.trimEnd());
  };
  return {
    clock,
    runner,
    menu,
    press,
    setFacts: (f: PanelFacts) => (facts = f),
    get refreshes() {
      return refreshes;
    },
    get changes() {
      return changes;
    },
  };
}

const times = (n: number, b: ButtonName): ButtonName[] => Array.from({ length: n }, () => b);

test('the status screens cycle on the clock; Up/Down step; Enter opens the menu; Esc goes back', async () => {
  const r = rig();
  assert.deepEqual(r.menu.lines(), ['mail.example.test', 'IP 192.168.1.10']);
  await r.clock.advance(5000);
  assert.deepEqual(r.menu.lines()[0], 'HA: off');
  assert.ok(r.changes >= 1, 'the panel is told to redraw');
  await r.clock.advance(5000);
  assert.deepEqual(r.menu.lines()[0], 'Queue: 3 msg');
  assert.deepEqual(await r.press('up'), ['HA: off', 'single box']);
  assert.deepEqual(await r.press('enter'), ['>Network', ' Admin URL', ' Alarms', ' HA switchover']);
  await r.clock.advance(20_000);
  assert.equal(r.menu.where, 'menu', 'no cycling inside the menu');
  assert.deepEqual(await r.press('down', 'down', 'down', 'down'), [' Admin URL', ' Alarms', ' HA switchover', '>Reset admin passwd']);
  assert.deepEqual((await r.press('esc'))[0], 'mail.example.test');
});

test('the menu goes back to the status screens after menuTimeoutSeconds idle; a press restarts the wait', async () => {
  const r = rig();
  await r.press('enter', 'down');
  await r.clock.advance(59_000);
  await r.press('down');
  await r.clock.advance(59_000);
  assert.equal(r.menu.where, 'menu');
  await r.clock.advance(1000);
  assert.equal(r.menu.where, 'status');
  assert.equal(r.menu.lines()[0], 'mail.example.test');
});

test('Network shows the settings; Set LAN edits digit by digit and applies with network set', async () => {
  const r = rig({ 'network set': (argv) => ({ ok: true, text: 'applied', json: { applied: { interface: 'lan0', address: argv[3], netmask: argv[5], gateway: argv[7] } } }) });
  assert.deepEqual(await r.press('enter', 'enter'), ['IP 192.168.1.10', 'NM 255.255.255.0', 'GW 192.168.1.1', 'Enter: set LAN']);
  assert.deepEqual(await r.press('enter'), ['LAN address', '192.168.001.010', '^', 'Up/Dn Ent> Esc<']);
  // 192.168.001.010 -> 192.168.001.020 (digit 11: tens of the last octet); Down wraps 0 -> 9.
  await r.press(...times(10, 'enter'));
  assert.deepEqual(await r.press('up'), ['LAN address', '192.168.001.020', '             ^', 'Up/Dn Ent> Esc<']);
  assert.deepEqual((await r.press('esc', 'down', 'enter'))[1], '192.168.001.920', 'Esc goes one digit back');
  await r.press('esc', 'up');
  await r.press(...times(2, 'enter'));
  assert.deepEqual((await r.press('enter'))[0], 'LAN netmask');
  await r.press(...times(12, 'enter'));
  assert.deepEqual(r.menu.lines()[0], 'LAN gateway');
  await r.press(...times(11, 'enter'));
  assert.deepEqual(await r.press('enter'), ['Apply? Enter=yes', 'IP 192.168.1.20', 'NM 255.255.255.0', 'GW 192.168.1.1']);
  assert.equal(r.runner.calls.filter((c) => c[1] === 'set').length, 0, 'nothing applied before the confirmation');
  const before = r.refreshes;
  assert.deepEqual(await r.press('enter'), ['LAN set', 'IP 192.168.1.20', 'NM 255.255.255.0', 'GW 192.168.1.1']);
  assert.deepEqual(r.runner.calls.at(-1), ['network', 'set', '--address', '192.168.1.20', '--netmask', '255.255.255.0', '--gateway', '192.168.1.1']);
  assert.equal(r.refreshes, before + 1, 'the status is read again');
  assert.deepEqual(await r.press('esc'), ['>Network', ' Admin URL', ' Alarms', ' HA switchover']);
});

test('a refused LAN setting is shown (two rows of the error); Esc returns to the editor with the values kept', async () => {
  const r = rig({ 'network set': { ok: false, error: 'network set: --gateway: 10.0.0.1 is outside the LAN 192.168.1.0/24' } });
  await r.press('enter', 'enter', 'enter');
  await r.press(...times(24, 'enter'), 'down', 'down'); // gateway's first digit 1 -> 9
  await r.press(...times(11, 'enter'));
  assert.equal((await r.press('enter'))[3], 'GW 992.168.1.1');
  assert.deepEqual(await r.press('enter'), ['Refused:', 'gateway: 10.0.0.1 is', 'outside the LAN...', 'Esc: back']);
  assert.deepEqual(await r.press('esc'), ['LAN address', '192.168.001.010', '^', 'Up/Dn Ent> Esc<']);
  // Esc on the first digit leaves the editor for the Network page.
  assert.deepEqual((await r.press('esc'))[3], 'Enter: set LAN');
});

test('a command that fails or throws is shown, and the panel goes on', async () => {
  const r = rig({
    'network show': { ok: false, error: 'mlsd: no answer from the daemon on /x/mlsd.sock within 30000 ms' },
    'ha switchover': () => {
      throw new Error('socket closed');
    },
  });
  assert.deepEqual(await r.press('enter', 'enter'), ['Refused:', 'no answer from the', 'daemon on...', 'Esc: back']);
  assert.deepEqual(await r.press('esc'), ['>Network', ' Admin URL', ' Alarms', ' HA switchover']);
  assert.deepEqual(await r.press('up', 'up', 'up', 'up', 'enter'), ['Start HA switchover?', 'Enter=yes Esc=no']);
  assert.deepEqual(await r.press('enter'), ['Refused:', 'socket closed', 'Esc: back']);
  assert.deepEqual((await r.press('esc'))[3], '>HA switchover');
});

test('HA switchover asks first, then shows the answer', async () => {
  const r = rig({ 'ha switchover': { ok: true, text: 'switched over: node b is active now' } });
  await r.press('enter', 'down', 'down', 'down');
  assert.deepEqual(await r.press('enter'), ['Start HA switchover?', 'Enter=yes Esc=no']);
  assert.deepEqual((await r.press('esc'))[3], '>HA switchover', 'Esc: nothing done');
  assert.equal(r.runner.calls.length, 0);
  assert.deepEqual(await r.press('enter', 'enter'), ['Switchover:', 'switched over: node', 'b is active now']);
  assert.deepEqual(r.runner.calls, [['ha', 'switchover']]);
});

test('Reset admin password: two confirmations; the password stays on the LCD past the menu timeout, until Esc (or five minutes)', async () => {
  const r = rig({ 'admin reset': { ok: true, text: 'new admin password: Kq7-x2Zp9mWd', json: { password: 'Kq7-x2Zp9mWd' } } });
  await r.press('enter', ...times(4, 'down'));
  assert.deepEqual(await r.press('enter'), ['Reset admin password', 'Enter=yes Esc=no']);
  assert.deepEqual(await r.press('enter'), ['Really? The old one', 'stops working.', 'Enter=yes Esc=no']);
  assert.equal(r.runner.calls.length, 0, 'nothing before the second yes');
  assert.deepEqual(await r.press('enter'), ['New admin password:', 'Kq7-x2Zp9mWd', 'Esc when noted']);
  await r.clock.advance(4 * 60_000);
  assert.deepEqual(r.menu.lines()[1], 'Kq7-x2Zp9mWd', 'not taken away by the 60 s menu timeout');
  assert.deepEqual((await r.press('up', 'enter'))[1], 'Kq7-x2Zp9mWd', 'nor by other buttons');
  assert.deepEqual((await r.press('esc'))[3], '>Reset admin passwd');
  assert.ok(!r.menu.lines().join('').includes('Kq7'));
});

test('a new admin password left on the LCD unattended goes away after five minutes', async () => {
  const r = rig({ 'admin reset': { ok: true, text: 'new admin password: Kq7-x2Zp9mWd', json: { password: 'Kq7-x2Zp9mWd' } } });
  await r.press('enter', ...times(4, 'down'), 'enter', 'enter');
  assert.deepEqual(await r.press('enter'), ['New admin password:', 'Kq7-x2Zp9mWd', 'Esc when noted']);
  await r.clock.advance(4 * 60_000 + 59_000);
  assert.equal(r.menu.lines()[1], 'Kq7-x2Zp9mWd');
  await r.clock.advance(2000);
  assert.ok(!r.menu.lines().join('').includes('Kq7'), r.menu.lines().join('|'));
  assert.equal(r.menu.lines()[0]?.trimEnd(), 'mail.example.test', 'back on the first status screen');
  // A refusal (on a standby) is shown like any other.
  const s = rig({ 'admin reset': { ok: false, error: 'this box is the HA standby box; run that on the active box' } });
  await s.press('enter', ...times(4, 'down'), 'enter', 'enter');
  assert.deepEqual(await s.press('enter'), ['Refused:', 'this box is the HA', 'standby box; run...', 'Esc: back']);
});

test('Alarms: count and latest from a fresh poll; Enter acknowledges all', async () => {
  const r = rig({ 'alarm ack': { ok: true, text: '', json: { acknowledged: 2 } } }, { status: { ...SERVING, alarms: { unacknowledged: 2, latest: 'the data disk is missing' } } });
  await r.press('enter', 'down', 'down');
  const before = r.refreshes;
  assert.deepEqual(await r.press('enter'), ['Alarms: 2 new', 'the data disk is', 'missing', 'Enter: ack all']);
  assert.equal(r.refreshes, before + 1);
  r.setFacts(panelFacts({ ...SERVING, alarms: { unacknowledged: 0, latest: null } }, LAN, 'h'));
  assert.deepEqual(await r.press('enter'), ['Acknowledged: 2', 'Esc: back']);
  assert.deepEqual(r.runner.calls.at(-1), ['alarm', 'ack']);
  assert.equal(r.refreshes, before + 2, 'polled again so the LED follows');
  assert.deepEqual(await r.press('esc', 'enter'), ['Alarms: none new']);
});

test('Admin URL from the LAN address; Reboot and Shut down are confirmed', async () => {
  const r = rig({ 'system reboot': { ok: true, text: 'reboot requested' }, 'system shutdown': { ok: true, text: 'shutdown requested' } });
  assert.deepEqual(await r.press('enter', 'down', 'enter'), ['Web admin:', 'https://192.168.1.10', ':8443/']);
  await r.press('esc', 'up', 'up', 'up');
  assert.deepEqual(await r.press('enter'), ['Reboot the box?', 'Enter=yes Esc=no']);
  await r.press('esc');
  assert.equal(r.runner.calls.filter((c) => c[0] === 'system').length, 0);
  assert.deepEqual(await r.press('enter', 'enter'), ['reboot requested']);
  assert.deepEqual(r.runner.calls.at(-1), ['system', 'reboot', '--confirm']);
  assert.deepEqual(await r.press('esc', 'down', 'enter', 'enter'), ['shutdown requested']);
  assert.deepEqual(r.runner.calls.at(-1), ['system', 'shutdown', '--confirm']);
});

test('presses while a command runs are ignored; the timeout does not leave a running command', async () => {
  let release!: (r: ControlResponse) => void;
  const r = rig({ 'ha switchover': () => new Promise<ControlResponse>((res) => (release = res)) });
  await r.press('enter', 'down', 'down', 'down', 'enter');
  const running = r.menu.press('enter');
  await r.clock.advance(0);
  assert.deepEqual(r.menu.lines().map((l) => l.trimEnd()), ['Switching over...']);
  await r.press('esc', 'down', 'enter', 'esc');
  await r.clock.advance(120_000);
  assert.equal(r.menu.where, 'busy');
  release({ ok: true, text: 'done' });
  await running;
  assert.deepEqual(r.menu.lines().map((l) => l.trimEnd()), ['Switchover:', 'done']);
  assert.equal(r.runner.calls.length, 1);
});

test('a 16x2 display: the menu scrolls in two rows, the editor shows the value and the cursor', async () => {
  const r = rig({}, { cols: 16, rows: 2 });
  assert.deepEqual(await r.press('enter'), ['>Network', ' Admin URL']);
  assert.deepEqual(await r.press('down', 'down'), [' Admin URL', '>Alarms']);
  assert.deepEqual(await r.press('up', 'up', 'enter', 'enter', 'enter'), ['192.168.001.010', ' ^']);
});
