import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// Daemon on 127.0.7.1; the sending PC 127.0.7.2 is in relay.allowIps.
const HOST = '127.0.7.1';
const PC = '127.0.7.2';
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function maildirTexts(dataDir: string, user: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['new', 'cur']) {
    const dir = join(dataDir, 'mail', 'example.test', user, 'Maildir', sub);
    for (const n of await readdir(dir).catch(() => [] as string[])) out.push(await readFile(join(dir, n), 'latin1'));
  }
  return out;
}

async function waitRouted(d: TestDaemon): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const s = JSON.parse((await d.cli(['status', '--json'])).stdout) as { spoolPending: number };
    if (s.spoolPending === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('spool never drained');
}

/** One sending connection: loops MAIL/RCPT/DATA until told to stop, recording every 250. */
async function sender(port: number, n: number, acked: Map<string, { id: string; remote: boolean }>, stop: { now: boolean }) {
  let c: RawSmtp;
  try {
    c = await RawSmtp.open(HOST, port, PC);
    await c.reply();
    await c.cmd('EHLO pc.example.test');
  } catch {
    return;
  }
  for (let i = 0; !stop.now; i++) {
    const token = `crash-${n}-${i}-${Math.random().toString(36).slice(2)}`;
    const remote = i % 3 === 2;
    try {
      if (!(await c.cmd('MAIL FROM:<pc@example.test>')).startsWith('250')) break;
      if (!(await c.cmd(`RCPT TO:<${remote ? 'partner@remote.test' : 'bob@example.test'}>`)).startsWith('250')) break;
      const r = await c.data(`Subject: ${token}\r\nFrom: pc@example.test\r\n\r\n${'line of text\r\n'.repeat(40)}`);
      const m = /^250 2\.0\.0 Ok: queued as (\w+)$/.exec(r);
      if (!m) break;
      acked.set(token, { id: m[1]!, remote });
    } catch {
      break;
    }
  }
  c.close();
}

test('kill -9 in the middle of a stream loses no message that got a 250', async () => {
  const d = await TestDaemon.create({ host: HOST, config: { relay: { allowIps: [PC], allowRecipientDomains: [], allowAuthenticated: true } } });
  cleanups.push(() => d.cleanup());
  await d.start();
  await d.addUser('bob@example.test', 'bob-secret-1');

  const acked = new Map<string, { id: string; remote: boolean }>();
  const stop = { now: false };
  const senders = Array.from({ length: 8 }, (_, n) => sender(d.ports.mx, n, acked, stop));
  // Let the stream run until a good number of messages are acknowledged, then crash.
  while (acked.size < 150) await new Promise((r) => setTimeout(r, 20));
  await d.kill9();
  stop.now = true;
  await Promise.all(senders);
  const ackedAtCrash = new Map(acked);
  assert.ok(ackedAtCrash.size >= 150);

  await d.start();
  await waitRouted(d);
  const texts = await maildirTexts(d.dataDir, 'bob');
  const queued = new Set((JSON.parse((await d.cli(['queue', 'list', '--json'])).stdout) as { id: string }[]).map((e) => e.id));
  const missing: string[] = [];
  for (const [token, { id, remote }] of ackedAtCrash) {
    const found = remote ? queued.has(id) : texts.some((t) => t.includes(`Subject: ${token}\r\n`));
    if (!found) missing.push(`${token} (${id})`);
  }
  assert.deepEqual(missing, [], `${missing.length} of ${ackedAtCrash.size} acknowledged messages lost`);
  const recovered = d.logs.find((l) => l.evt === 'spool.recover');
  process.stdout.write(`# acknowledged before kill -9: ${ackedAtCrash.size}; re-routed at restart: ${recovered?.messages ?? 0}\n`);
  // No stray files: every spool file left belongs to a queued message.
  const spoolFiles = (await readdir(join(d.dataDir, 'spool'))).filter((f) => f.endsWith('.eml')).map((f) => f.slice(0, -4));
  assert.deepEqual(spoolFiles.filter((id) => !queued.has(id)), []);
});

test('a full data disk answers 452 4.3.1 and keeps what it had', { skip: process.getuid?.() !== 0 ? 'needs root to mount a small tmpfs' : false }, async () => {
  const mnt = await mkdtemp(join(tmpdir(), 'mlsd-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mnt]);
  cleanups.push(async () => {
    execFileSync('umount', ['-l', mnt]);
    await rm(mnt, { recursive: true, force: true });
  });
  const d = await TestDaemon.create({ host: HOST, dataDir: join(mnt, 'data'), config: { spool: { minFreeBytes: 0 } } });
  cleanups.push(() => d.cleanup());
  await d.start();
  await d.addUser('bob@example.test', 'bob-secret-1');

  const c = await RawSmtp.open(HOST, d.ports.mx, PC);
  await c.reply();
  await c.cmd('EHLO pc.example.test');
  const body = 'Subject: keep-me\r\n\r\n' + 'a'.repeat(100) + '\r\n';
  await c.cmd('MAIL FROM:<a@remote.test>');
  await c.cmd('RCPT TO:<bob@example.test>');
  assert.match(await c.data(body), /^250 2\.0\.0 /);
  await waitRouted(d);

  // Fill the disk to about 1 MiB free (under disk.usageLevels' 95%, so MAIL is still
  // accepted), then send a message bigger than what is left: refused at the end of DATA.
  const free = await statfs(mnt);
  const fill = Math.floor((free.bavail * free.bsize - 1024 * 1024) / 65536);
  execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=64k', `count=${fill}`], { stdio: 'ignore' });
  assert.match(await c.cmd('MAIL FROM:<a@remote.test>'), /^250/);
  await c.cmd('RCPT TO:<bob@example.test>');
  const full = await c.data('Subject: no-room\r\n\r\n' + ('b'.repeat(998) + '\r\n').repeat(1200));
  assert.equal(full, '452 4.3.1 Insufficient system storage');
  c.close();

  // With the reserve configured, the refusal comes at MAIL, before any data is sent.
  assert.equal((await d.cli(['config', 'set', 'spool.minFreeBytes', String(1024 * 1024)])).code, 0);
  const c2 = await RawSmtp.open(HOST, d.ports.mx, PC);
  await c2.reply();
  await c2.cmd('EHLO pc.example.test');
  assert.equal(await c2.cmd('MAIL FROM:<a@remote.test>'), '452 4.3.1 Insufficient system storage');
  c2.close();

  const texts = await maildirTexts(d.dataDir, 'bob');
  assert.equal(texts.filter((t) => t.includes('Subject: keep-me')).length, 1);
  assert.equal(texts.filter((t) => t.includes('no-room')).length, 0);
  assert.deepEqual((await readdir(join(d.dataDir, 'spool'))).filter((f) => f.endsWith('.eml')), []);
  // Room again: mail flows again, nothing was lost.
  await rm(join(mnt, 'filler'));
  const c3 = await RawSmtp.open(HOST, d.ports.mx, PC);
  await c3.reply();
  await c3.cmd('EHLO pc.example.test');
  // Free space is re-read at most once a second: the 452 may last that long.
  let mail = '';
  for (let i = 0; i < 30 && !mail.startsWith('250'); i++) {
    mail = await c3.cmd('MAIL FROM:<a@remote.test>');
    if (!mail.startsWith('250')) await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(mail, '250 2.1.0 Accepted');
  await c3.cmd('RCPT TO:<bob@example.test>');
  assert.match(await c3.data('Subject: after-room\r\n\r\nok'), /^250 2\.0\.0 /);
  c3.close();
  assert.equal(d.proc!.exitCode, null);
});
