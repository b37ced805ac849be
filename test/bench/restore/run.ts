/**
 * The restore benchmark (issue 15): a sample of mailboxes (RESTORE_BENCH_MB, default 1024 MB
 * over RESTORE_BENCH_USERS=50 users) backed up to the reference Samba
 * (`../shared/bench/samba-reference.sh`: SMB 3, signing required, NTLMv2), then the data disk
 * "swapped" (daemon stopped, data folder emptied, daemon started). Prints, side by side:
 *   - restore throughput beside a raw `smbclient mget` of the same share (the script's `raw`),
 *     run back to back before and after the restore, as a ratio (target: at least 80 %);
 *   - the time from start after the swap to the first accepted message (target: under 60 s);
 *   - the time until each sampled user's INBOX is back, and until everything is;
 *   - the backup's own throughput and the daemon's peak RSS during the restore.
 * Asserts nothing. Needs root (Samba, a system user). Loopback: 127.0.0.1 (Samba, as the
 * script binds it), 127.0.144.1 (mlsd), 127.0.144.2 (the sender).
 *
 *   node dist/test/bench/restore/run.js
 *   RESTORE_BENCH_DIR=/work/bench-restore   where the mailboxes and the share go
 */
import { mkdir, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import nodemailer from 'nodemailer';
import { TestDaemon } from '../../helpers/daemon.js';
import { ROOT, run, vmHwmKiB } from '../lib.js';

const env = (k: string, d: string) => process.env[`RESTORE_BENCH_${k}`] ?? d;
const TOTAL_MB = Number(env('MB', '1024'));
const USERS = Number(env('USERS', '50'));
const DIR = env('DIR', '/work/bench-restore');
const SAMBA = join(ROOT, '../shared/bench/samba-reference.sh');
const PORT = '1449';
const NAS_USER = 'mlsdbench';
const NAS_PASS = 'bench-nas-pass-1';
const HOST = '127.0.144.1';
const SENDER = '127.0.144.2';
const DAY = 86_400_000;

const log = (s: string) => console.log(s);
const mb = (b: number) => b / 1e6;

/** One mailbox of about `bytes`: mostly small mail, some with attachments, 40 % in INBOX, over two years. */
async function seedUser(dataDir: string, user: string, bytes: number): Promise<{ inbox: number; files: number }> {
  const box = join(dataDir, 'mail', 'example.test', user, 'Maildir');
  for (const sub of ['new', 'cur', 'tmp', '.Archive/cur', '.Archive/new', '.Archive/tmp']) await mkdir(join(box, sub), { recursive: true });
  let written = 0;
  let inbox = 0;
  let i = 0;
  while (written < bytes) {
    const r = Math.random();
    const size = r < 0.8 ? 4_000 + Math.floor(Math.random() * 8_000) : r < 0.98 ? 60_000 + Math.floor(Math.random() * 80_000) : 1_000_000 + Math.floor(Math.random() * 1_000_000);
    const inInbox = Math.random() < 0.4;
    const when = Date.now() - Math.floor(Math.random() * 730) * DAY;
    const path = join(box, inInbox ? 'cur' : '.Archive/cur', `${Math.floor(when / 1000)}.M${i}P${user.length}.bench,S=${size}:2,S`);
    await writeFile(path, `From: sender${i}@outside.test\r\nTo: ${user}@example.test\r\nSubject: message ${i}\r\n\r\n${randomBytes(Math.ceil((size * 3) / 4)).toString('base64')}\r\n`);
    await utimes(path, new Date(when), new Date(when));
    written += size;
    if (inInbox) inbox++;
    i++;
  }
  return { inbox, files: i };
}

async function count(dir: string): Promise<number> {
  return (await readdir(dir).catch(() => [])).length;
}

async function rawCopy(): Promise<number> {
  const r = await run('bash', [SAMBA, 'raw', join(DIR, 'nas'), PORT, NAS_USER, NAS_PASS], 3_600_000);
  const m = /= ([\d.]+) MB\/s/.exec(r.out);
  if (!m) throw new Error(`raw copy: ${r.out}`);
  log(`  ${r.out.trim()}`);
  await rm(join(DIR, 'nas', 'raw-copy'), { recursive: true, force: true });
  return Number(m[1]);
}

async function main(): Promise<void> {
  await rm(DIR, { recursive: true, force: true });
  await mkdir(DIR, { recursive: true, mode: 0o755 });
  log(`restore benchmark: ${TOTAL_MB} MB over ${USERS} users, Samba (SMB 3, signing, NTLMv2) on 127.0.0.1:${PORT}`);
  const started = await run('bash', [SAMBA, 'start', join(DIR, 'nas'), PORT, NAS_USER, NAS_PASS]);
  if (started.code !== 0) throw new Error(`samba: ${started.out}`);
  const d = await TestDaemon.create({ host: HOST, config: { backup: { schedule: { enabled: false }, restore: { retrySeconds: 1 } }, archive: { enabled: false } } });
  try {
    await d.start();
    const users = Array.from({ length: USERS }, (_, i) => `user${String(i).padStart(2, '0')}`);
    for (const u of users) await d.addUser(`${u}@example.test`, `${u}-password-1`);
    await d.stop();
    const t0seed = Date.now();
    const seeded = new Map<string, { inbox: number; files: number }>();
    for (const u of users) seeded.set(u, await seedUser(d.dataDir, u, (TOTAL_MB * 1e6) / USERS));
    const files = [...seeded.values()].reduce((n, s) => n + s.files, 0);
    log(`  seeded ${files} messages in ${((Date.now() - t0seed) / 1000).toFixed(0)} s`);
    await d.start();
    const add = await d.cli(['backup', 'target', 'add', 'nas', '--type', 'smb', '--url', `smb://127.0.0.1:${PORT}/nas`, '--user', NAS_USER, '--password-stdin'], `${NAS_PASS}\n`);
    if (add.code !== 0) throw new Error(add.stderr);
    const tb = Date.now();
    const b = await d.cli(['backup', 'run', '--json']);
    if (b.code !== 0) throw new Error(b.stderr);
    const br = (JSON.parse(b.stdout) as { bytes: number; sentBytes: number }[])[0]!;
    const backupS = (Date.now() - tb) / 1000;
    log(`  backup: ${mb(br.sentBytes).toFixed(0)} MB sent in ${backupS.toFixed(1)} s = ${(mb(br.sentBytes) / backupS).toFixed(1)} MB/s`);

    log('raw smbclient copy of the share (before the restore):');
    const raw1 = await rawCopy();

    // The swap.
    await d.stop();
    await rm(d.dataDir, { recursive: true, force: true });
    await mkdir(d.dataDir);
    const t0 = Date.now();
    await d.start();
    let firstAccepted = -1;
    const t = nodemailer.createTransport({ host: HOST, port: d.ports.mx, secure: false, ignoreTLS: true, localAddress: SENDER } as Parameters<typeof nodemailer.createTransport>[0]);
    while (firstAccepted < 0) {
      try {
        await t.sendMail({ from: 'a@outside.test', to: 'user00@example.test', subject: 'during the restore', text: 'x' });
        firstAccepted = Date.now() - t0;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    t.close();
    const sample = users.filter((_, i) => i % Math.max(1, Math.floor(USERS / 5)) === 0).slice(0, 5);
    const inboxBack = new Map<string, number>();
    let rss = 0;
    let restoreS = 0;
    let bytesTotal = 0;
    let allBackMs = 0;
    for (;;) {
      for (const u of sample) {
        if (inboxBack.has(u)) continue;
        const n = await count(join(d.dataDir, 'mail', 'example.test', u, 'Maildir', 'cur'));
        if (n >= seeded.get(u)!.inbox) inboxBack.set(u, Date.now() - t0);
      }
      rss = Math.max(rss, await vmHwmKiB(d.proc!.pid!));
      const s = await d.cli(['restore', 'status', '--json']);
      const st = JSON.parse(s.stdout || '{}') as { state?: string; bytesTotal?: number; startedAt?: string; finishedAt?: string };
      if (st.state === 'done') {
        allBackMs = Date.now() - t0;
        restoreS = (Date.parse(st.finishedAt!) - Date.parse(st.startedAt!)) / 1000;
        bytesTotal = st.bytesTotal ?? 0;
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    log('raw smbclient copy of the share (after the restore):');
    const raw2 = await rawCopy();
    const rawMBs = (raw1 + raw2) / 2;
    const restoreMBs = mb(bytesTotal) / restoreS;
    log('');
    log(`restore: ${mb(bytesTotal).toFixed(0)} MB in ${restoreS.toFixed(1)} s = ${restoreMBs.toFixed(1)} MB/s; raw smbclient copy ${rawMBs.toFixed(1)} MB/s`);
    log(`  restore / raw copy: ${((restoreMBs / rawMBs) * 100).toFixed(0)} % (target at least 80 %)`);
    log(`  first message accepted ${(firstAccepted / 1000).toFixed(1)} s after start (target under 60 s)`);
    const times = [...inboxBack.values()].sort((a, b) => a - b);
    log(`  a user's INBOX back (${sample.length} sampled users, ${TOTAL_MB} MB over ${USERS} users): first ${(times[0]! / 1000).toFixed(1)} s, median ${(times[Math.floor(times.length / 2)]! / 1000).toFixed(1)} s, last ${(times[times.length - 1]! / 1000).toFixed(1)} s after start; everything back ${(allBackMs / 1000).toFixed(1)} s`);
    log(`  mlsd peak RSS during the restore: ${(rss / 1024).toFixed(0)} MiB`);
    const batches = d.logs.filter((l) => l.evt === 'restore.batch');
    const sum = (k: string) => batches.reduce((n, l) => n + Number(l[k] ?? 0), 0) / 1000;
    log(`  ${batches.length} batches: waiting for fetches ${sum('waitFetchMs').toFixed(1)} s, putting back ${sum('putBackMs').toFixed(1)} s, of which syncfs ${sum('syncMs').toFixed(1)} s`);
  } finally {
    await d.cleanup();
    await run('bash', [SAMBA, 'stop', join(DIR, 'nas')]);
    await rm(DIR, { recursive: true, force: true });
  }
}

await main();
