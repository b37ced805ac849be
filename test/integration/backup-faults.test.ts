// Backups to a real Samba (SMB 3, signing required, NTLMv2) through the daemon and its CLI:
// a complete backup, browse and fetch, and each fault a NAS brings (a byte corrupted on the
// share, the connection cut in mid-upload, the password changed, the share full) detected,
// reported as an event and in `backup status`, and never leaving a generation that claims to
// be complete. Loopback: 127.0.143.x (.1 Samba, .2 mlsd, .3 the relay that cuts the line,
// .4 the sending server).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { TestDaemon, eventually } from '../helpers/daemon.js';
import { SambaServer } from '../helpers/samba.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const SMB = '127.0.143.1';
const HOST = '127.0.143.2';
const PROXY = '127.0.143.3';
const OUTSIDE = '127.0.143.4';
const PORT = 1447;
const FULL_PORT = 1448;
const USER = 'mlsdnas';
const PASSWORD = 'nas-pass;"word 1';

let root: string;
let nas: SambaServer;
let d: TestDaemon;
/** The folder on the share the target's URL names. */
const folder = () => join(nas.sharePath, 'mail-server');

interface Ev {
  kind: string;
  severity: string;
  text: string;
  data?: Record<string, unknown>;
}

async function cli(args: string[], stdin?: string): Promise<string> {
  const r = await d.cli(args, stdin);
  assert.equal(r.code, 0, `mlsd ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const json = async <T>(args: string[]): Promise<T> => JSON.parse(await cli([...args, '--json'])) as T;
const events = async (kind: string) => (await json<Ev[]>(['events', 'list'])).filter((e) => e.kind === kind);

/** The generations (complete backups) on a share folder, by manifest. */
async function generations(share: string): Promise<string[]> {
  const sets = (await readdir(share).catch(() => [] as string[])).filter((n) => n.startsWith('mlsd-'));
  const out: string[] = [];
  for (const s of sets) out.push(...(await readdir(join(share, s, 'manifests')).catch(() => [] as string[])).filter((n) => n.endsWith('.mf')));
  return out.sort();
}

async function objects(share: string): Promise<{ path: string; size: number }[]> {
  const out: { path: string; size: number }[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        // A .part- file may be renamed between the listing and the stat: it is then counted on the next look.
        const st = await stat(p).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return null;
          throw err;
        });
        if (st) out.push({ path: p, size: st.size });
      }
    }
  };
  for (const s of (await readdir(share)).filter((n) => n.startsWith('mlsd-'))) await walk(join(share, s, 'objects'));
  return out;
}

async function send(subject: string): Promise<void> {
  const t = nodemailer.createTransport({ host: d.host, port: d.ports.mx, secure: false, ignoreTLS: true, localAddress: OUTSIDE, name: 'outside.test' } as Parameters<typeof nodemailer.createTransport>[0]);
  try {
    await t.sendMail({ from: 'partner@outside.test', to: 'alice@example.test', subject, text: `${subject}\n` });
  } finally {
    t.close();
  }
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mlsd-backup-faults-'));
  await chmod(root, 0o755);
  nas = await SambaServer.start(join(root, 'nas'), { address: SMB, port: PORT, user: USER, password: PASSWORD });
  d = await TestDaemon.create({ host: HOST, config: { backup: { schedule: { enabled: false } }, thresholds: { alert: true }, alerts: { adminEmails: ['alice@example.test'], periodMinutes: 60 } } });
  await d.start();
  await d.addUser('alice@example.test', 'alice-password-1');
  for (let i = 0; i < 6; i++) await send(`quarterly figures ${i}`);
  const webdisk = join(d.dataDir, 'mail', 'example.test', 'alice', 'webdisk');
  await mkdir(webdisk, { recursive: true });
  await writeFile(join(webdisk, 'plans.bin'), randomBytes(2 << 20));
});
after(async () => {
  await d?.cleanup();
  await nas?.stop();
  await rm(root, { recursive: true, force: true });
});

test('a backup to an SMB 3 share: password masked, only new files travel, browse and fetch one message back', async () => {
  await cli(['backup', 'target', 'add', 'nas', '--type', 'smb', '--url', `smb://${SMB}:${PORT}/nas/mail-server`, '--user', USER, '--password-stdin'], PASSWORD + '\n');
  const listed = await cli(['backup', 'target', 'list']);
  assert.doesNotMatch(listed + (await cli(['config', 'get', 'backup.targets'])), /nas-pass/, 'the password is never shown');
  assert.match(await cli(['backup', 'target', 'test', 'nas']), /reachable, login accepted, writable/);
  const first = (await json<{ generation: string; sentObjects: number; files: number }[]>(['backup', 'run']))[0]!;
  assert.ok(first.sentObjects > 8);
  assert.deepEqual(await generations(folder()), [`${first.generation}.mf`]);
  // Nothing new: the second run sends only what changed (records of the event log, the hash cache's work).
  await new Promise((r) => setTimeout(r, 1100));
  const second = (await json<{ sentObjects: number; sentBytes: number; files: number }[]>(['backup', 'run']))[0]!;
  // Only the record dumps that changed (the event log grew) travel again, never the mail or the 2 MB WebDisk file.
  assert.ok(second.sentBytes < 1 << 20, `a second run with no new mail sent ${second.sentObjects} objects, ${second.sentBytes} bytes`);
  assert.equal(second.files, first.files);

  const browse = await json<{ messages: { id: string; subject: string; folder: string }[] }>(['backup', 'browse', 'alice@example.test']);
  assert.equal(browse.messages.length, 6);
  const m = browse.messages.find((x) => x.subject === 'quarterly figures 3')!;
  assert.equal(m.folder, 'INBOX');
  // Lost by the user; one message comes back without a full restore.
  const inbox = join(d.dataDir, 'mail', 'example.test', 'alice', 'Maildir', 'new');
  const name = (await readdir(inbox)).find((n) => n.startsWith(m.id))!;
  const bytes = await readFile(join(inbox, name));
  await rm(join(inbox, name));
  assert.match(await cli(['backup', 'fetch', 'alice@example.test', m.id]), /put back/);
  assert.ok((await readFile(join(inbox, name))).equals(bytes));
  assert.match(await cli(['backup', 'fetch', 'alice@example.test', m.id]), /already/);
  // Hostile ids and users are refused before anything is read.
  for (const bad of ['../../etc/passwd', 'a/b', '']) assert.notEqual((await d.cli(['backup', 'fetch', 'alice@example.test', bad])).code, 0, bad);
  assert.notEqual((await d.cli(['backup', 'browse', '../alice@example.test'])).code, 0);
});

test('one byte corrupted on the share: verify finds it, says which file, and the next backup sends it again', async () => {
  const objs = (await objects(folder())).sort((a, b) => b.size - a.size);
  const victim = objs[0]!; // the WebDisk file, the biggest
  const bytes = await readFile(victim.path);
  bytes[Math.floor(bytes.length / 3)]! ^= 0x40;
  await writeFile(victim.path, bytes);
  const r = await d.cli(['backup', 'verify', '--full']);
  assert.equal(r.code, 1, 'verify fails');
  assert.match(r.stdout, /1 bad/);
  assert.match(r.stdout, /BAD mail\/example\.test\/alice\/webdisk\/plans\.bin/);
  assert.ok((await events('backup.verifyFailed')).length >= 1);
  const again = (await json<{ sentObjects: number }[]>(['backup', 'run']))[0]!;
  assert.ok(again.sentObjects >= 1);
  assert.equal((await d.cli(['backup', 'verify', '--full'])).code, 0, 'whole again');
});

test('the connection cut in mid-upload: the run fails, no new generation, and the next run sends only what is missing', async () => {
  const gensBefore = await generations(folder());
  const relay = await TcpProxy.start(PROXY, PORT, { host: SMB, port: PORT }, { paceMs: 10 });
  try {
    await cli(['config', 'set', 'backup.targets', JSON.stringify([{ name: 'nas', type: 'smb', url: `smb://${PROXY}:${PORT}/nas/mail-server`, user: USER, password: PASSWORD }])]);
    const webdisk = join(d.dataDir, 'mail', 'example.test', 'alice', 'webdisk');
    for (let i = 0; i < 20; i++) await writeFile(join(webdisk, `scan-${i}.bin`), randomBytes(1 << 20));
    const complete = async () => (await objects(folder())).filter((o) => !o.path.includes('.part-')).length;
    const had = await complete();
    const run = d.cli(['backup', 'run']);
    // Cut once some of the new files are up and another is on its way.
    await eventually('some objects up, one on its way', async () => (await complete()) >= had + 3 && (await objects(folder())).some((o) => o.path.includes('.part-') && o.size > 0), 60_000);
    for (const pid of nas.connectionPids()) process.kill(pid, 'SIGKILL');
    const r = await run;
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /NT_STATUS|cannot|cut|reach/i);
  } finally {
    await relay.stop();
  }
  assert.deepEqual(await generations(folder()), gensBefore, 'no generation claims to be complete');
  const failed = await events('backup.failed');
  assert.ok(failed.some((e) => e.data?.kind === 'unreachable'), JSON.stringify(failed.map((e) => e.text)));
  const st = await json<{ failure: { kind: string } | null; last: { generation: string } }>(['backup', 'status']);
  assert.equal(st.failure?.kind, 'unreachable');
  assert.equal(`${st.last.generation}.mf`, gensBefore[gensBefore.length - 1]);
  await cli(['config', 'set', 'backup.targets', JSON.stringify([{ name: 'nas', type: 'smb', url: `smb://${SMB}:${PORT}/nas/mail-server`, user: USER, password: PASSWORD }])]);
  const resumed = (await json<{ sentObjects: number; sentBytes: number }[]>(['backup', 'run']))[0]!;
  assert.ok(resumed.sentBytes < 20 << 20, `objects sent before the cut are not sent again: ${resumed.sentBytes} bytes`);
  assert.equal((await d.cli(['backup', 'verify', '--full'])).code, 0);
  const st2 = await json<{ failure: unknown }>(['backup', 'status']);
  assert.equal(st2.failure, null);
});

test('the password changed on the NAS: refused login reported; the share full: reported; neither leaves a generation', async () => {
  const gensBefore = await generations(folder());
  await send('after the password change');
  await nas.changePassword('another-password-2');
  try {
    const r = await d.cli(['backup', 'run']);
    assert.equal(r.code, 1);
    assert.ok((await events('backup.failed')).some((e) => e.data?.kind === 'auth' && /refused the login/.test(e.text)));
    assert.deepEqual(await generations(folder()), gensBefore);
    assert.equal((await json<{ failure: { kind: string } }>(['backup', 'status'])).failure.kind, 'auth');
    // The administrator is told by mail, in both languages.
    await eventually('alert mail', async () => (await d.mailbox('alice')).some((m) => /^X-Mlsd-Event: backup\.failed/m.test(m) && /backup target test/.test(m)), 20_000);
  } finally {
    await nas.changePassword(PASSWORD);
  }

  const full = await SambaServer.start(join(root, 'full'), { address: SMB, port: FULL_PORT, user: USER, password: PASSWORD, tmpfsSize: '4m' });
  try {
    await cli(['backup', 'target', 'add', 'small', '--type', 'smb', '--url', `smb://${SMB}:${FULL_PORT}/nas`, '--user', USER, '--password-stdin'], PASSWORD + '\n');
    const r = await d.cli(['backup', 'run', '--target', 'small']);
    assert.equal(r.code, 1);
    const failed = await events('backup.failed');
    assert.ok(failed.some((e) => e.data?.kind === 'full' && /is full/.test(e.text)), `share full is said as such: ${failed.map((e) => e.text).join(' | ')}`);
    assert.deepEqual(await generations(full.sharePath), []);
  } finally {
    await full.stop();
  }
});
