import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon, eventually } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { ownSimDisk } from '../helpers/sim-disk.js';

// Daemon on 127.0.120.1; the sending client on 127.0.120.5.
const HOST = '127.0.120.1';
const CLIENT = '127.0.120.5';
let d: TestDaemon;
let disk: string;
let put: (state: string) => Promise<void>;

const space = (usedPercent: number) => writeFile(join(disk, 'space.json'), JSON.stringify({ totalBytes: 1e12, availableBytes: 1e12 * (1 - usedPercent / 100) }));

async function cli(args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `mlsd ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function adminMailKinds(): Promise<string[]> {
  const dir = join(d.dataDir, 'mail', 'example.test', 'admin', 'Maildir', 'new');
  const names = await readdir(dir).catch(() => [] as string[]);
  const mails = await Promise.all(names.map((n) => readFile(join(dir, n), 'utf8')));
  return mails.map((m) => /^X-Mlsd-Event: (.+)$/m.exec(m)?.[1]?.trim() ?? '');
}

/** `mlsd disk poll`, as the udev rule runs it, then the events that poll raised. */
async function pollRaises(kinds: string[]): Promise<void> {
  const from = d.logs.length;
  await cli(['disk', 'poll']);
  // An event is logged once it is written to the event log, which may be just after the poll answers.
  const raisedNow = () => d.logs.slice(from).filter((l) => l.evt === 'event' && String(l.kind).startsWith('disk.')).map((l) => String(l.kind));
  await eventually(`events ${kinds.join(', ')}`, async () => raisedNow().length >= kinds.length, 5000).catch(() => undefined);
  assert.deepEqual(raisedNow().sort(), [...kinds].sort());
  // Each becomes an administrator mail, in both languages.
  for (const k of kinds) await eventually(`alert mail ${k}`, async () => (await adminMailKinds()).includes(k));
}

before(async () => {
  d = await TestDaemon.create({
    host: HOST,
    config: {
      relay: { allowIps: [CLIENT], allowRecipientDomains: [], allowAuthenticated: true },
      thresholds: { alert: true },
      alerts: { adminEmails: ['admin@example.test'], periodMinutes: 60 },
      disk: { pollMinutes: 600, maxTemperatureC: 30, simFixtures: '' },
    },
  });
  // The fixture folder is the test's own, swapped between polls.
  ({ folder: disk, put } = await ownSimDisk(d));
  await put('healthy');
  await space(50);
  await d.start();
  await d.addUser('admin@example.test', 'admin-secret-1');
  await d.addUser('bob@example.test', 'bob-secret-1');
});
after(async () => d.cleanup());

test('each disk state raises its event and alert mail, and disk status shows it', async () => {
  await pollRaises([]);
  const healthy = JSON.parse(await cli(['disk', 'status', '--json']));
  assert.equal(healthy.disk.model, 'HGST HUS726020ALE614');
  assert.equal(healthy.disk.smart.passed, true);
  assert.equal(healthy.usedPercent, 50);
  assert.match(await cli(['status']), /^data disk: healthy, HGST HUS726020ALE614, 27 °C, 50% used$/m);

  await put('reallocated');
  await pollRaises(['disk.sectorsRising']);
  assert.match(await cli(['disk', 'status']), /^reallocated sectors: 8$/m);

  await space(85);
  await pollRaises(['disk.usage']);
  assert.match(await cli(['status']), /85% used \(over 80%\)/);

  await put('replaced'); // another model at 34 °C, over disk.maxTemperatureC 30
  await pollRaises(['disk.replaced', 'disk.temperature']);
  assert.match(await cli(['status']), /^data disk: healthy, WDC WD20EFRX-68EUZN0, 34 °C \(HOT\)/m);

  await put('missing');
  await pollRaises(['disk.missing']);
  assert.match(await cli(['status']), /^data disk: MISSING$/m);
  assert.match(await cli(['disk', 'status']), /Unable to detect device type/);

  await put('failing');
  await pollRaises(['disk.replaced', 'disk.failurePredicted', 'disk.temperature']);
  const failing = JSON.parse(await cli(['disk', 'status', '--json']));
  assert.equal(failing.failing, true);
  assert.match(await cli(['status']), /^data disk: FAILING \(SMART\), SAMSUNG MZWLL3T2HAJQ-00005/m);
  const mail = (await readdir(join(d.dataDir, 'mail', 'example.test', 'admin', 'Maildir', 'new'))).length;
  assert.ok(mail >= 7);

  await put('nvme');
  await pollRaises(['disk.replaced']);
  assert.match(await cli(['disk', 'status']), /^NVMe percentage used: 0$/m);
});

test('over 95% used, MAIL gets 452 4.3.1; mail already accepted is delivered', async () => {
  await space(50);
  await cli(['disk', 'poll']);
  const c = await RawSmtp.open(HOST, d.ports.mx, CLIENT);
  await c.reply();
  await c.cmd('EHLO client.example.test');
  assert.match(await c.cmd('MAIL FROM:<alice@remote.test>'), /^250/);
  assert.match(await c.cmd('RCPT TO:<bob@example.test>'), /^250/);
  // The disk fills while this transaction is under way: it is finished, not lost.
  await space(96);
  assert.match(await c.data('From: alice@remote.test\r\nSubject: begun before the disk filled\r\n\r\nhello'), /^250/);
  // The next one is not begun (the client keeps it and retries).
  assert.match(await c.cmd('RSET'), /^250/);
  assert.match(await c.cmd('MAIL FROM:<alice@remote.test>'), /^452 4\.3\.1 /);
  await c.cmd('QUIT');
  c.close();
  await eventually('the accepted message in bob\'s mailbox', async () => (await d.mailbox('bob')).some((m) => m.includes('begun before the disk filled')));
  // The poll reports the level, and that alert still reaches the administrator.
  await pollRaises(['disk.usage']);
  assert.match(await cli(['status']), /96% used \(over 95%\)/);
  // Room again: mail is accepted again, without a restart.
  await space(60);
  const c2 = await RawSmtp.open(HOST, d.ports.mx, CLIENT);
  await c2.reply();
  await c2.cmd('EHLO client.example.test');
  assert.match(await c2.cmd('MAIL FROM:<alice@remote.test>'), /^250/);
  await c2.cmd('QUIT');
  c2.close();
});

test('a bad disk setting is refused, naming the key', async () => {
  const r = await d.cli(['config', 'set', 'disk.maxTemperatureC', '500']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr + r.stdout, /disk\.maxTemperatureC/);
});

after(async () => rm(disk, { recursive: true, force: true }).catch(() => undefined));
