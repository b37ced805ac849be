// A data disk swapped on the sim board: the daemon stopped, its data folder emptied, started
// again. It notices the blank disk, accepts mail at once, restores every mailbox, address
// book, WebDisk file and the archive from the newest backup (newest mail first), merges mail
// that arrived meanwhile, retries a target that is away, and resumes a restore cut by a
// crash. Loopback: 127.0.142.x (.1 mlsd, .2 the sending server).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import nodemailer from 'nodemailer';
import { execFile } from 'node:child_process';
import { TestDaemon, CLI, eventually } from '../helpers/daemon.js';

const HOST = '127.0.142.1';
const OUTSIDE = '127.0.142.2';
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

interface Ev {
  kind: string;
  severity: string;
  text: string;
  data?: Record<string, unknown>;
}

async function json<T>(d: TestDaemon, args: string[]): Promise<T> {
  const r = await d.cli([...args, '--json']);
  assert.equal(r.code, 0, `mlsd ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

async function cli(d: TestDaemon, args: string[], stdin?: string): Promise<string> {
  const r = await d.cli(args, stdin);
  assert.equal(r.code, 0, `mlsd ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Every file under a folder of the data dir, by path, with its SHA-256. */
async function hashes(root: string, under: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.set(relative(root, p), createHash('sha256').update(await readFile(p)).digest('hex'));
    }
  };
  await walk(join(root, under));
  return out;
}

/** Exact bytes of an archived message, as `archive export` writes them. */
function exportBytes(d: TestDaemon, id: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, '--config-dir', d.configDir, 'archive', 'export', id], { encoding: 'buffer', maxBuffer: 64 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(stderr.toString())) : resolve(stdout)));
  });
}

async function send(d: TestDaemon, to: string, subject: string): Promise<void> {
  const t = nodemailer.createTransport({ host: d.host, port: d.ports.mx, secure: false, ignoreTLS: true, localAddress: OUTSIDE, name: 'outside.test' } as Parameters<typeof nodemailer.createTransport>[0]);
  try {
    await t.sendMail({ from: 'partner@outside.test', to, subject, text: `${subject}\n` });
  } finally {
    t.close();
  }
}

/** A user's older mail, as a mail client leaves it (read, in cur/, and in a folder), written straight to the Maildir. */
async function seedMailbox(dataDir: string, user: string, n: number, ageDays: number): Promise<void> {
  const box = join(dataDir, 'mail', 'example.test', user, 'Maildir');
  for (const sub of ['cur', '.Projects/cur', 'new', 'tmp', '.Projects/new', '.Projects/tmp']) await mkdir(join(box, sub), { recursive: true });
  const when = Date.now() - ageDays * 86_400_000;
  for (let i = 0; i < n; i++) {
    const folder = i % 3 === 0 ? '.Projects/cur' : 'cur';
    const name = join(box, folder, `${Math.floor(when / 1000) - i}.M${i}P1.seed,S=300:2,S`);
    await writeFile(name, `From: old${i}@outside.test\r\nTo: ${user}@example.test\r\nSubject: old mail ${i} of ${user}\r\n\r\n${randomBytes(200).toString('base64')}\r\n`);
    const t = new Date(when - i * 60_000);
    const { utimes } = await import('node:fs/promises');
    await utimes(name, t, t);
  }
}

test('a swapped blank data disk is noticed, mail is accepted at once, and every mailbox, contact, WebDisk file and the archive come back', { timeout: 240_000 }, async () => {
  const d = await TestDaemon.create({ host: HOST, config: { backup: { schedule: { enabled: false }, restore: { retrySeconds: 0.5 } } } });
  cleanups.push(() => d.cleanup());
  const nas = join(d.root, 'usb-disk');
  await mkdir(nas);
  await d.start();
  for (const u of ['alice', 'bob']) await d.addUser(`${u}@example.test`, `${u}-password-1`);
  await d.stop();
  // Old mail, address books and WebDisk files, as users left them.
  await seedMailbox(d.dataDir, 'alice', 60, 90);
  await seedMailbox(d.dataDir, 'bob', 60, 90);
  const alice = join(d.dataDir, 'mail', 'example.test', 'alice');
  await mkdir(join(alice, 'contacts'), { recursive: true });
  await writeFile(join(alice, 'contacts', 'bob.vcf'), 'BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Bob 王\r\nEMAIL:bob@example.test\r\nEND:VCARD\r\n');
  await mkdir(join(alice, 'webdisk', 'reports 2026'), { recursive: true });
  await writeFile(join(alice, 'webdisk', 'reports 2026', 'q3.pdf'), randomBytes(3 << 20));
  await d.start();
  for (let i = 0; i < 4; i++) await send(d, 'alice@example.test', `new mail ${i}`);
  await send(d, 'bob@example.test', 'for bob');
  await eventually('archived', async () => (await json<{ archive: { records: number; intake: number } }>(d, ['status'])).archive.records === 5, 30_000);

  // Bad targets are refused with what is wrong named, and nothing is kept.
  for (const [args, why] of [
    [['--type', 'ftp', '--url', nas], /--type takes smb, sftp or dir/],
    [['--type', 'dir', '--url', 'relative/folder'], /absolute folder/],
    [['--type', 'smb', '--url', 'smb://nas.test/share/../../etc'], /bad URL/],
    [['--type', 'sftp', '--url', 'sftp://user:pw@nas.test/backups'], /bad SFTP URL/],
  ] as const) {
    const r = await d.cli(['backup', 'target', 'add', 'bad', ...args]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, why);
  }
  const badName = await d.cli(['backup', 'target', 'add', '../x', '--type', 'dir', '--url', nas]);
  assert.match(badName.stderr, /backup\.targets/, 'the key is named');
  assert.equal((await json<unknown[]>(d, ['backup', 'target', 'list'])).length, 0);
  const added = await cli(d, ['backup', 'target', 'add', 'usb', '--type', 'dir', '--url', nas]);
  const recovery = /RECOVERY KEY[^\n]*\n\s+([0-9a-f-]{79})/.exec(added)?.[1];
  assert.ok(recovery, `the first target shows the recovery key: ${added}`);
  assert.doesNotMatch(await cli(d, ['backup', 'target', 'list']), /RECOVERY|[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}/, 'and never again');
  await cli(d, ['backup', 'target', 'test', 'usb']);
  await cli(d, ['backup', 'run']);
  const status = await json<{ last: { generation: string; files: number } }>(d, ['backup', 'status']);
  assert.ok(status.last.files >= 120 + 5 + 2, `files in the backup: ${status.last.files}`);
  // Nothing on the target is readable: no subject, no address, no vCard.
  const onTarget = await hashes(nas, '');
  let leaked = '';
  for (const p of onTarget.keys()) if (/old mail|alice|VCARD/.test(await readFile(join(nas, p), 'latin1'))) leaked += p + ' ';
  assert.equal(leaked, '', 'the backup is encrypted');

  const mailBefore = await hashes(d.dataDir, 'mail');
  assert.ok(mailBefore.size > 120);
  const archiveBefore = await json<{ archive: { records: number; head: string } }>(d, ['status']);
  // Each archived message, exactly as the archive gives it back, by hash.
  const archivedBefore = new Map<string, string>();
  for (const h of (await json<{ hits: { id: string }[] }>(d, ['archive', 'search'])).hits) archivedBefore.set(h.id, createHash('sha256').update(await exportBytes(d, h.id)).digest('hex'));
  assert.equal(archivedBefore.size, 5);

  // The disk dies: a blank one goes in; the NAS is away at first (rebooted by the same outage).
  await d.stop();
  await rm(d.dataDir, { recursive: true, force: true });
  await mkdir(d.dataDir);
  await rename(nas, `${nas}.away`);
  const t0 = Date.now();
  await d.start();
  // Mail is accepted at once, before anything is restored.
  await send(d, 'alice@example.test', 'during the restore');
  const firstAccepted = Date.now() - t0;
  await eventually('the restore says it waits for its target', async () => {
    const r = await json<{ state: string; lastError: string | null; running: boolean }>(d, ['restore', 'status']).catch(() => null);
    const evs = await json<Ev[]>(d, ['events', 'list']);
    return evs.some((e) => e.kind === 'restore.retry') && evs.some((e) => e.kind === 'disk.swapped') && (r === null || r.state !== 'done');
  }, 30_000);
  // The restore waits for its target, and says so (the LCD, the dashboard): no percent yet.
  const panel = await json<{ backup: unknown; restore: { running: boolean; state: string; percent: number | null; lastError: string | null } }>(d, ['status']);
  assert.equal(panel.restore.state, 'retrying');
  assert.equal(panel.restore.running, true);
  assert.equal(panel.restore.percent, null);
  assert.ok(panel.restore.lastError);
  assert.equal((await d.cli(['backup', 'run'])).code, 1, 'backups wait for the restore');
  await rename(`${nas}.away`, nas);
  const done = await eventually('restore done', async () => {
    const r = await json<{ state: string; percent: number; filesDone: number; filesTotal: number }>(d, ['restore', 'status']);
    return r.state === 'done' ? r : undefined;
  }, 120_000);
  assert.equal(done.percent, 100);
  assert.equal(done.filesDone, done.filesTotal);

  // Every file back, byte for byte, and the mail that came during the restore kept beside it.
  const mailAfter = await hashes(d.dataDir, 'mail');
  for (const [p, h] of mailBefore) assert.equal(mailAfter.get(p), h, `restored ${p}`);
  const during = (await d.mailbox('alice')).filter((m) => m.includes('Subject: during the restore'));
  assert.equal(during.length, 1, 'mail accepted during the restore is delivered and kept');
  assert.equal(mailAfter.size, mailBefore.size + 1);
  const restoredFile = await stat(join(d.dataDir, 'mail', 'example.test', 'alice', 'webdisk', 'reports 2026', 'q3.pdf'));
  assert.equal(restoredFile.size, 3 << 20);

  // The archive is back whole, verifies, and took in the mail of the restore time after it.
  await eventually('the archive reopened', async () => (await json<{ archive: { records?: number; intake?: number } }>(d, ['status'])).archive.records === archiveBefore.archive.records + 1, 30_000);
  const v = await d.cli(['archive', 'verify']);
  assert.equal(v.code, 0, `archive verify: ${v.stdout}${v.stderr}`);
  const hits = await json<{ hits: { subject: string }[] }>(d, ['archive', 'search', 'during']);
  assert.equal(hits.hits.length, 1);
  for (const [id, h] of archivedBefore) assert.equal(createHash('sha256').update(await exportBytes(d, id)).digest('hex'), h, `archived message ${id} back byte for byte`);
  const old = await json<{ hits: { subject: string }[] }>(d, ['archive', 'search', 'new mail']);
  assert.ok(old.hits.length >= 4, 'archived mail from before the swap is searchable again (the index is rebuilt)');
  const evs = await json<Ev[]>(d, ['events', 'list']);
  assert.ok(evs.some((e) => e.kind === 'restore.done'));
  assert.ok(firstAccepted < 60_000, `first message accepted ${firstAccepted} ms after start`);
});

test('a restore cut by a crash resumes where it stopped; a disk with data but no marker is never written over', { timeout: 240_000 }, async () => {
  const d = await TestDaemon.create({ host: HOST, config: { backup: { schedule: { enabled: false }, restore: { retrySeconds: 0.5 } } } });
  cleanups.push(() => d.cleanup());
  const nas = join(d.root, 'nas');
  await mkdir(nas);
  await d.start();
  await d.addUser('carol@example.test', 'carol-password-1');
  await d.stop();
  await seedMailbox(d.dataDir, 'carol', 1800, 40);
  await d.start();
  await cli(d, ['backup', 'target', 'add', 'usb', '--type', 'dir', '--url', nas]);
  await cli(d, ['backup', 'run']);
  const before = await hashes(d.dataDir, 'mail');
  // One object damaged on the target: its file is lost, said, and the rest comes back all the same.
  const objs = [...(await hashes(nas, ''))].map(([p]) => p).filter((p) => p.includes('/objects/')).sort();
  const victim = join(nas, objs[Math.floor(objs.length / 2)]!);
  const bytes = await readFile(victim);
  bytes[bytes.length - 20]! ^= 1;
  await writeFile(victim, bytes);
  await d.stop();
  await rm(d.dataDir, { recursive: true, force: true });
  await mkdir(d.dataDir);
  await d.start();
  const cut = await eventually('restore under way', async () => {
    const r = await json<{ state: string; filesDone: number; filesTotal: number }>(d, ['restore', 'status']);
    return r.state === 'running' && r.filesDone > 0 && r.filesDone < r.filesTotal ? r : undefined;
  }, 60_000);
  await d.kill9();
  await d.start();
  await eventually('the restore resumes after the crash', async () => (await json<Ev[]>(d, ['events', 'list'])).some((e) => e.kind === 'restore.started' && /resumes/.test(e.text)), 30_000);
  const done = await eventually('restore done', async () => {
    const r = await json<{ state: string; lost: number; lostPaths: string[] }>(d, ['restore', 'status']);
    return r.state === 'done' ? r : undefined;
  }, 120_000);
  assert.equal(done.lost, 1, 'the damaged object is one lost file');
  const after = await hashes(d.dataDir, 'mail');
  let missing = 0;
  for (const [p, h] of before) {
    if (!after.has(p)) missing++;
    else assert.equal(after.get(p), h, `restored ${p}`);
  }
  assert.ok(missing <= 1, `${missing} files missing`);
  assert.ok(cut.filesDone > 0);
  const evs2 = await json<Ev[]>(d, ['events', 'list']);
  assert.ok(evs2.some((e) => e.kind === 'restore.done' && e.severity === 'critical' && /COULD NOT BE RESTORED/.test(e.text)));
  // The archive opened after the restore (it waits for it): it answers.
  assert.equal((await d.cli(['archive', 'verify'])).code, 0);

  // A disk that holds data but no marker (another machine's, a wrong one put in): nothing is restored onto it.
  await d.stop();
  await rm(join(d.dataDir, '.mlsd-disk.json'));
  await writeFile(join(d.dataDir, 'someone-elses-file'), 'data');
  await d.start();
  const ev2 = await json<Ev[]>(d, ['events', 'list']);
  assert.ok(ev2.some((e) => e.kind === 'disk.unknown' && e.severity === 'critical'), 'the operator is asked');
  const r = await json<{ state: string }>(d, ['restore', 'status']);
  assert.equal(r.state, 'none');
});
