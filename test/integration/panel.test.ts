// The front panel of a real daemon on the sim board: its LCD on one end of a socat pty pair, the
// Matrix Orbital emulator on the other, the buttons pressed with `mlsd panel press` (the real CLI,
// through the sim GPIO's bounce and the debouncer). Every screen is asserted as the emulator
// decoded it and as `mlsd panel screen` reports it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { TestDaemon, eventually, CLI } from '../helpers/daemon.js';
import { startPtyPair, type PtyPair } from '../helpers/socat.js';
import { startLcdEmulator, type LcdEmulator } from '../helpers/lcd-emulator.js';
import { PanelDriver } from '../helpers/panel.js';
import { verifyAdmin } from '../../src/accounts/admin.js';

const HOST = '127.0.22.1';
const FIX = fileURLToPath(new URL('../../../test/fixtures/smartctl/', import.meta.url));
let d: TestDaemon;
let pair: PtyPair;
let lcd: LcdEmulator;
let panel: PanelDriver;
let disks: string;

const putDisk = (state: string) => copyFile(join(FIX, state, 'data.json'), join(disks, 'data.json'));

async function cli(args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `mlsd ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** From anywhere in the panel back to the first status screen (Esc until it stays there). */
async function home(): Promise<void> {
  for (let i = 0; i < 40; i++) {
    const before = await panel.text();
    const after = (await panel.press('esc')).join('\n');
    if (after === before && /^mail\.example\.test/.test(after)) return;
  }
  assert.fail('Esc never led back to the status screens');
}

/** Opens the menu item `label` from the status screens. */
async function openItem(label: string): Promise<string[]> {
  await home();
  let rows = await panel.press('enter');
  for (let i = 0; i < 10 && !rows.some((r) => r === `>${label}`); i++) rows = await panel.press('down');
  assert.ok(rows.includes(`>${label}`), `menu item ${label}:\n${rows.join('\n')}`);
  return panel.press('enter');
}

before(async () => {
  d = await TestDaemon.create({
    host: HOST,
    // The cycle and the menu timeout far beyond a test's length: the screen moves only by presses.
    config: { panel: { lcdDevice: 'PLACEHOLDER', cycleSeconds: 300, menuTimeoutSeconds: 600, debounceMs: 10, pollSeconds: 1 }, disk: { pollMinutes: 600, simFixtures: '' } },
  });
  pair = await startPtyPair(d.root, 'lcd');
  disks = join(d.root, 'disks');
  await mkdir(disks);
  await putDisk('healthy');
  const cfgPath = join(d.configDir, 'config.json');
  const cfg = JSON.parse(await readFile(cfgPath, 'utf8'));
  cfg.panel.lcdDevice = pair.a;
  cfg.disk.simFixtures = disks;
  await writeFile(cfgPath, JSON.stringify(cfg, null, 2));
  lcd = await startLcdEmulator(pair.b, { cols: 20, rows: 4 });
  panel = new PanelDriver(d, lcd);
  await d.start();
  await d.waitFor((l) => l.evt === 'panel.start' && l.lcd === pair.a);
  // The disk's first reading comes once the mail services run; the panel shows it at its next poll.
  await eventually('the first disk reading on the panel', async () => {
    await home();
    return (await panel.presses('down', 'down', 'down'))[0] === 'Disk: healthy';
  }, 30000);
  await home();
});

after(async () => {
  await lcd?.close();
  await d?.cleanup();
  await pair?.stop();
});

test('the LCD shows the status screens; Up/Down step through them, Esc goes to the first', async () => {
  await lcd.waitFor(/^mail\.example\.test {3}\nIP 127\.0\.0\.1 /);
  assert.deepEqual(await panel.screen(), ['mail.example.test', 'IP 127.0.0.1', '', '']);
  assert.deepEqual(await panel.cliPress('down'), ['HA: off', 'single box', '', '']);
  assert.deepEqual(await panel.cliPress('down'), ['Queue: 0 msg', 'Deferred: 0', 'Held: 0', '']);
  assert.deepEqual(await panel.cliPress('down'), ['Disk: healthy', 'Used: ' + JSON.parse(await cli(['disk', 'status', '--json'])).usedPercent + '%', '', '']);
  assert.deepEqual(await panel.cliPress('down'), ['Backup: not set up', '', '', '']);
  assert.deepEqual(await panel.cliPress('down'), ['mail.example.test', 'IP 127.0.0.1', '', ''], 'the cycle wraps');
  assert.deepEqual((await panel.cliPress('up'))[0], 'Backup: not set up');
  assert.deepEqual(await panel.cliPress('esc'), ['mail.example.test', 'IP 127.0.0.1', '', '']);
  assert.deepEqual(lcd.display.problems, [], 'nothing on the line the display could not decode');
});

test('the menu: Enter opens it, Up/Down move (wrapping), Esc goes back; unknown buttons are refused', async () => {
  await home();
  assert.deepEqual(await panel.press('enter'), ['>Network', ' Admin URL', ' Alarms', ' HA switchover']);
  assert.deepEqual(await panel.press('down'), [' Network', '>Admin URL', ' Alarms', ' HA switchover']);
  assert.deepEqual(await panel.press('up'), ['>Network', ' Admin URL', ' Alarms', ' HA switchover']);
  assert.deepEqual(await panel.press('up'), [' HA switchover', ' Reset admin passwd', ' Reboot', '>Shut down'], 'Up from the top wraps to the last item');
  assert.deepEqual(await panel.press('down'), ['>Network', ' Admin URL', ' Alarms', ' HA switchover']);
  assert.deepEqual(await panel.presses('down', 'enter'), ['Web admin:', 'https://127.0.0.1:84', '43/', '']);
  assert.deepEqual((await panel.press('esc'))[1], '>Admin URL', 'Esc goes back to the item it came from');
  assert.equal((await panel.press('esc'))[0], 'mail.example.test');
  for (const bad of ['left', 'ENTER', '\u00fe\u00fe', '../up']) {
    const r = await d.cli(['panel', 'press', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^mlsd: panel press: no button ".*" \(buttons: up, down, enter, esc\)\n$/);
  }
});

test('Set LAN through the panel: a refused setting is shown on the LCD; a good one reaches network show', async () => {
  assert.deepEqual(await openItem('Network'), ['IP 127.0.0.1', 'NM 255.0.0.0', 'GW 127.0.0.254', 'Enter: set LAN']);
  assert.deepEqual(await panel.press('enter'), ['LAN address', '127.000.000.001', '^', 'Up/Dn Ent> Esc<']);
  // First digit up twice: 327.0.0.1, which network set refuses.
  await panel.presses('up', 'up');
  for (let i = 0; i < 35; i++) await panel.press('enter');
  assert.deepEqual(await panel.screen(), ['LAN gateway', '127.000.000.254', '              ^', 'Up/Dn Ent> Esc<']);
  assert.deepEqual(await panel.press('enter'), ['Apply? Enter=yes', 'IP 327.0.0.1', 'NM 255.0.0.0', 'GW 127.0.0.254']);
  const refused = await panel.press('enter');
  assert.equal(refused[0], 'Refused:');
  assert.deepEqual(refused.slice(1, 3), ['address: "327.0.0.1"', 'is not an IPv4...']);
  assert.equal(refused[3], 'Esc: back');
  assert.equal(JSON.parse(await cli(['network', 'show', '--json'])).address, '127.0.0.1', 'nothing applied');
  // Back in the editor on the first digit, the values kept: 327 -> 127, last digit 1 -> 2.
  assert.deepEqual(await panel.press('esc'), ['LAN address', '327.000.000.001', '^', 'Up/Dn Ent> Esc<']);
  await panel.presses('down', 'down');
  for (let i = 0; i < 11; i++) await panel.press('enter');
  assert.deepEqual(await panel.press('up'), ['LAN address', '127.000.000.002', '              ^', 'Up/Dn Ent> Esc<']);
  for (let i = 0; i < 24; i++) await panel.press('enter');
  assert.deepEqual(await panel.press('enter'), ['Apply? Enter=yes', 'IP 127.0.0.2', 'NM 255.0.0.0', 'GW 127.0.0.254']);
  assert.deepEqual(await panel.press('enter'), ['LAN set', 'IP 127.0.0.2', 'NM 255.0.0.0', 'GW 127.0.0.254']);
  assert.deepEqual(JSON.parse(await cli(['network', 'show', '--json'])), { interface: 'lan0', address: '127.0.0.2', netmask: '255.0.0.0', gateway: '127.0.0.254' });
  await home();
  assert.deepEqual(await panel.screen(), ['mail.example.test', 'IP 127.0.0.2', '', ''], 'the status screen shows the new address');
});

test('Reset admin password: confirmed twice, the new one on the LCD until Esc, and it logs in', async () => {
  const first = (await readFile(join(d.configDir, 'initial-admin-password'), 'utf8')).trim();
  assert.ok(await verifyAdmin(d.configDir, 'admin', first));
  assert.deepEqual(await openItem('Reset admin passwd'), ['Reset admin password', 'Enter=yes Esc=no', '', '']);
  // Esc at the second question: nothing reset.
  assert.deepEqual(await panel.press('enter'), ['Really? The old one', 'stops working.', 'Enter=yes Esc=no', '']);
  assert.deepEqual(await panel.press('esc'), [' Admin URL', ' Alarms', ' HA switchover', '>Reset admin passwd']);
  assert.ok(await verifyAdmin(d.configDir, 'admin', first), 'Esc reset nothing');
  await panel.press('enter');
  await panel.press('enter');
  const shown = await panel.press('enter');
  assert.equal(shown[0], 'New admin password:');
  const end = shown.indexOf('Esc when noted');
  assert.ok(end > 1, shown.join('|'));
  const password = shown.slice(1, end).join('').trim();
  assert.ok(password.length >= 8, `a password on the LCD: ${shown.join('|')}`);
  assert.ok(await verifyAdmin(d.configDir, 'admin', password), 'the password shown logs in');
  assert.equal(await verifyAdmin(d.configDir, 'admin', first), false, 'the old one no longer does');
  assert.deepEqual(await panel.screen(), shown, 'still shown');
  assert.equal((await panel.press('esc'))[3], '>Reset admin passwd');
  assert.ok(!(await panel.screen()).join('').includes(password), 'gone after Esc');
});

test('a missing disk: disk and status LEDs blink fast; acknowledging the alarm from the panel clears the status LED', async () => {
  await eventually('LEDs of a healthy box', async () => {
    const l = await panel.leds();
    return l.status.pattern === 'steady' && l.disk.pattern === 'off' && l.ha.pattern === 'off';
  });
  await putDisk('missing');
  await cli(['disk', 'poll']);
  await eventually('alarm LEDs', async () => {
    const l = await panel.leds();
    return l.status.pattern === 'fast' && l.disk.pattern === 'fast';
  });
  await home();
  const screens: string[] = [];
  for (let i = 0; i < 8; i++) screens.push((await panel.press('down')).join('|'));
  assert.ok(screens.some((s) => s.startsWith('Disk: MISSING|')), screens.join('\n'));
  assert.ok(screens.some((s) => /^Alarms: 1 new\|the data disk is\|missing/.test(s)), screens.join('\n'));
  const page = await openItem('Alarms');
  assert.equal(page[0], 'Alarms: 1 new');
  assert.match(page.slice(1, 3).join(' '), /^the data disk is missing/);
  assert.equal(page[3], 'Enter: ack all');
  assert.deepEqual(await panel.press('enter'), ['Acknowledged: 1', 'Esc: back', '', '']);
  // The press returns once the panel polled again: the LED is already back.
  const l = await panel.leds();
  assert.equal(l.status.pattern, 'steady');
  assert.equal(l.disk.pattern, 'fast', 'the disk is still missing');
  assert.equal(JSON.parse(await cli(['status', '--json'])).alarms.unacknowledged, 0);
  await putDisk('healthy');
  await cli(['disk', 'poll']);
});

test('a flood of presses at once: every command answers, no press is counted twice, the LCD agrees', async () => {
  await home();
  const from = d.logs.length;
  const results = await Promise.all(Array.from({ length: 12 }, () => d.cli(['panel', 'press', 'down'])));
  for (const r of results) assert.ok(r.code === 0 || /^mlsd: panel press: (not counted|ignored)/.test(r.stderr), r.stderr);
  // Twelve overlapping presses of one button chatter into each other: the debouncer counts fewer
  // presses (never more), and a command whose press was absorbed says so instead of hanging.
  assert.ok(results.some((r) => r.code === 0), 'at least one press counted');
  const screens = ['mail.example.test', 'HA: off', 'Queue: 0 msg', 'Disk: healthy', 'Backup: not set up'];
  // Each press the debouncer counted moved one screen down, and none moved it twice.
  const counted = d.logs.slice(from).filter((l) => l.evt === 'panel.press').length;
  assert.ok(counted >= 1 && counted <= 12, `${counted} presses counted`);
  assert.equal((await panel.screen())[0], screens[counted % screens.length], `${counted} presses counted: the same screen on the LCD`);
  const rows = await panel.press('esc');
  assert.equal(rows[0], 'mail.example.test', 'the panel still answers');
  assert.deepEqual(lcd.display.problems, []);
});

test('Reboot asks first, then the sim board records the request', async () => {
  assert.deepEqual(await openItem('Reboot'), ['Reboot the box?', 'Enter=yes Esc=no', '', '']);
  assert.deepEqual(await panel.press('enter'), ['reboot requested', '', '', '']);
  assert.equal(d.proc?.exitCode, null, 'the sim board does not stop');
  assert.deepEqual(lcd.display.problems, []);
});

test('an LCD device that is also the console device stops the start, naming panel.lcdDevice', async () => {
  const other = await TestDaemon.create({ host: '127.0.22.2', config: { console: { device: join(d.root, 'shared-line') }, panel: { lcdDevice: join(d.root, 'shared-line') } } });
  try {
    const r = spawnSync(process.execPath, [CLI, 'start', '--config-dir', other.configDir, '--data-dir', other.dataDir], { encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, `mlsd: panel.lcdDevice: ${join(d.root, 'shared-line')} is already the console.device; the LCD needs its own serial line\n`);
  } finally {
    await other.cleanup();
  }
});
