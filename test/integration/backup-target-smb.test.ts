import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createLogger } from '../../src/log/logger.js';
import { TargetError, type BackupTarget, type TargetErrorKind } from '../../src/backup/target.js';
import { smbTarget, type SmbTargetOptions } from '../../src/backup/targets/smb.js';
import { SambaServer } from '../helpers/samba.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { eventually } from '../helpers/daemon.js';

// Samba on 127.0.140.1 (ports 1445, and 1446 for the share that fills up); the paced relay that
// cuts the line listens on 127.0.140.3 and dials from there. smbclient cannot pick its source address.
const HOST = '127.0.140.1';
const PORT = 1445;
const FULL_PORT = 1446;
const PROXY = '127.0.140.3';
const USER = 'mlsdsmb';
// A space first, a quote and a semicolon: none of it may matter, since it never meets a shell or script.
const PASSWORD = ' smb-pw;"4-backup';
const log = createLogger({ level: process.env.TEST_LOG ? 'debug' : 'silent' });

let root: string;
let nas: SambaServer;
let local: string;
const targets: BackupTarget[] = [];

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mlsd-smb-test-'));
  await chmod(root, 0o755); // smbd works as the share's user, who must reach the share folder
  local = join(root, 'local');
  await mkdir(local);
  nas = await SambaServer.start(join(root, 'nas'), { address: HOST, port: PORT, user: USER, password: PASSWORD });
});
after(async () => {
  for (const t of targets) await t.close();
  await nas?.stop();
  await rm(root, { recursive: true, force: true });
});

function target(opts: SmbTargetOptions & { url?: string; user?: string; password?: string } = {}): BackupTarget {
  const t = smbTarget({ name: 'nas', type: 'smb', url: opts.url ?? `${nas.url}/backups/box1`, user: opts.user ?? USER, password: opts.password ?? PASSWORD, hostKey: '' }, log, opts);
  targets.push(t);
  return t;
}

async function localFile(name: string, bytes: Buffer): Promise<string> {
  const p = join(local, name);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, bytes);
  return p;
}

/** Every file in a folder on the server's disk, relative, with sizes: what the share really holds. */
async function onShare(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(relative(dir, p), (await stat(p)).size);
    }
  };
  await walk(dir);
  return out;
}

async function rejectsWith(p: Promise<unknown>, kind: TargetErrorKind, re?: RegExp): Promise<TargetError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TargetError, `a TargetError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    if (re) assert.match(err.message, re);
    return err;
  }
  assert.fail(`expected a '${kind}' TargetError`);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('round trip: many files in nested folders are put, listed with sizes, read back byte for byte and removed', async () => {
  // Few files per process and three at once: the batch is split the way a large one is.
  const t = target({ filesPerProcess: 7, parallel: 3 });
  const files = new Map<string, Buffer>();
  for (let i = 0; i < 60; i++) {
    const size = i === 0 ? 0 : i % 10 === 0 ? 300_000 + i : 100 + i * 37;
    files.set(`g1/u${i % 4}/cur/m${i}.eml`, randomBytes(size));
  }
  files.set('manifest.json', Buffer.from('{"generation":1}'));
  const items = await Promise.all([...files].map(async ([path, b], i) => ({ path, local: await localFile(`up/${i}`, b) })));
  await t.put(items);

  const expected = [...files].map(([path, b]) => ({ path, size: b.length })).sort((a, b) => a.path.localeCompare(b.path));
  const sorted = (l: { path: string; size: number }[]) => [...l].sort((a, b) => a.path.localeCompare(b.path));
  assert.deepEqual(sorted(await t.list('')), expected);
  assert.deepEqual(sorted(await t.list('g1/u1')), expected.filter((e) => e.path.startsWith('g1/u1/')));
  assert.deepEqual(await t.list('g2'), [], 'a missing folder lists as empty');
  // What is on the server's disk: exactly these files under the URL's folder, no temporary part left.
  assert.deepEqual(new Map([...(await onShare(join(nas.sharePath, 'backups/box1')))].sort()), new Map(expected.map((e) => [e.path, e.size])));

  const back = [...files.keys()].map((path, i) => ({ path, local: join(local, 'down', String(i)) }));
  await mkdir(join(local, 'down'), { recursive: true });
  await t.get(back);
  for (const b of back) assert.equal(sha(readFileSync(b.local)), sha(files.get(b.path)!), b.path);

  const gone = [...files.keys()].filter((_, i) => i % 2 === 0);
  await t.remove([...gone, 'g1/never-there.eml']);
  assert.deepEqual(sorted(await t.list('')), expected.filter((e) => !gone.includes(e.path)));
  await t.remove([...files.keys()]);
  assert.deepEqual(await t.list(''), []);
});

test('a put over an existing file replaces it, and names with spaces on the share are listed whole', async () => {
  const t = target();
  await t.put([{ path: 'over/same.dat', local: await localFile('a1', Buffer.from('first version')) }]);
  await t.put([{ path: 'over/same.dat', local: await localFile('a2', Buffer.from('second, longer version')) }]);
  await t.get([{ path: 'over/same.dat', local: join(local, 'a3') }]);
  assert.equal(await readFile(join(local, 'a3'), 'utf8'), 'second, longer version');
  assert.deepEqual([...(await onShare(join(nas.sharePath, 'backups/box1/over')))], [['same.dat', 22]]);
  // Someone else's file on the share, with spaces in its name and folder.
  await mkdir(join(nas.sharePath, 'backups/box1/over/a folder'), { recursive: true });
  await writeFile(join(nas.sharePath, 'backups/box1/over/a folder/my notes 2.txt'), 'xyz');
  assert.deepEqual(
    (await t.list('over')).sort((a, b) => a.path.localeCompare(b.path)),
    [
      { path: 'over/a folder/my notes 2.txt', size: 3 },
      { path: 'over/same.dat', size: 22 },
    ],
  );
});

test('test() logs in as DOMAIN\\user, writes, reads back and removes a probe, leaving nothing', async () => {
  const t = target({ url: `${nas.url}/probe-here`, user: `WORKGROUP\\${USER}` });
  await t.test();
  assert.deepEqual([...(await onShare(join(nas.sharePath, 'probe-here')))], []);
});

test('the password is in no smbclient command line: not in the argv built, not in /proc/PID/cmdline', async () => {
  const seen: { args: readonly string[]; cmdline: string }[] = [];
  const t = target({
    onSpawn: (pid, args) => seen.push({ args, cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8') }),
  });
  await t.put([{ path: 'argv/x', local: await localFile('argv', randomBytes(1000)) }]);
  await t.list('argv');
  assert.ok(seen.length >= 3, 'every process was seen');
  for (const s of seen) {
    assert.match(s.cmdline, /smbclient/);
    assert.ok(!s.cmdline.includes(PASSWORD.trim()), s.cmdline);
    assert.ok(!s.args.some((a) => a.includes('smb-pw')), s.args.join(' '));
    // SMB 3 only, signing required: never left to a default.
    assert.ok(s.args.includes('-m') && s.args.includes('SMB3'));
    assert.ok(s.args.includes('--option=client min protocol=SMB3'));
    assert.ok(s.args.includes('--option=client signing=required'));
  }
});

test('hostile names are refused before any smbclient runs', async () => {
  let spawned = 0;
  const t = target({ onSpawn: () => spawned++ });
  const ok = await localFile('hostile', Buffer.from('x'));
  for (const path of ['../escape', 'a/../../b', 'a;del *', 'a\nb', '/abs', 'a b', '', 'a/./b', 'a*', 'a\\b', 'a"b']) {
    await rejectsWith(t.put([{ path: 'fine', local: ok }, { path, local: ok }]), 'io', /refusing remote path/);
    await rejectsWith(t.get([{ path, local: join(local, 'h') }]), 'io', /refusing remote path/);
    await rejectsWith(t.remove([path]), 'io', /refusing remote path/);
    if (path !== '') await rejectsWith(t.list(path), 'io', /refusing remote path/);
  }
  for (const bad of [`${local}/x";rm -rf /;"`, `${local}/a;b`, `${local}/a\nget x`]) {
    await rejectsWith(t.put([{ path: 'fine', local: bad }]), 'io', /refusing local path/);
    await rejectsWith(t.get([{ path: 'fine', local: bad }]), 'io', /refusing local path/);
  }
  assert.equal(spawned, 0);
  for (const url of ['smb://', 'http://h/s', 'smb://h', 'smb://u:p@h/s', 'smb://h:99999/s', 'smb://h/s/../x', 'smb://h/s;x', 'smb://h/s/a b']) {
    assert.throws(() => target({ url }), (e: Error) => e instanceof TargetError && e.message.includes(JSON.stringify(url)), url);
  }
});

test('fault: the connection cut in mid-upload is unreachable, leaves no file under its name, and the same put then succeeds', async () => {
  const relay = await TcpProxy.start(PROXY, PORT, { host: HOST, port: PORT }, { paceMs: 10 });
  const slow = target({ url: `smb://${PROXY}:${PORT}/nas/backups/box1` });
  const big = randomBytes(40 * 1024 * 1024);
  const item = { path: 'cut/big.bin', local: await localFile('big', big) };
  const dir = join(nas.sharePath, 'backups/box1/cut');
  try {
    const put = slow.put([item]);
    put.catch(() => undefined);
    // Once part of it is on the server, the process serving the connection dies.
    await eventually('a part of the upload on the share', async () => [...(await onShare(dir))].some(([n, size]) => n.startsWith('big.bin.part-') && size > 1024 * 1024), 20_000);
    const pids = nas.connectionPids();
    assert.ok(pids.length > 0, 'a connection process to kill');
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await rejectsWith(put, 'unreachable', /NT_STATUS_/);
    assert.equal((await onShare(dir)).has('big.bin'), false, 'nothing under the final name');
  } finally {
    await relay.stop();
  }

  const t = target();
  await t.put([item]);
  assert.deepEqual([...(await onShare(dir))], [['big.bin', big.length]], 'the file, and the cut part cleaned up');
  await t.get([{ path: item.path, local: join(local, 'big.back') }]);
  assert.equal(sha(await readFile(join(local, 'big.back'))), sha(big));
});

test('fault: a line that goes silent (black hole) is unreachable once nothing moves for the timeout', async () => {
  const proxy = await TcpProxy.start(PROXY, PORT, { host: HOST, port: PORT }, { paceMs: 10 });
  try {
    const t = target({ url: `smb://${PROXY}:${PORT}/nas/backups/box1`, timeoutMs: 2000 });
    const big = await localFile('silent', randomBytes(20 * 1024 * 1024));
    const put = t.put([{ path: 'silent/big.bin', local: big }]);
    put.catch(() => undefined);
    await eventually('a part of the upload on the share', async () => [...(await onShare(join(nas.sharePath, 'backups/box1/silent')))].some(([, size]) => size > 0), 20_000);
    proxy.cut();
    await rejectsWith(put, 'unreachable', /NT_STATUS_IO_TIMEOUT|NT_STATUS_CONNECTION/);
    assert.equal((await onShare(join(nas.sharePath, 'backups/box1/silent'))).has('big.bin'), false);
  } finally {
    await proxy.stop();
  }
});

test('close() ends a transfer in progress: the put fails, no smbclient is left running', async () => {
  const proxy = await TcpProxy.start(PROXY, PORT, { host: HOST, port: PORT }, { paceMs: 10 });
  try {
    const pids: number[] = [];
    const t = target({ url: `smb://${PROXY}:${PORT}/nas/backups/box1`, onSpawn: (pid) => pids.push(pid) });
    const put = t.put([{ path: 'closed/big.bin', local: await localFile('closed', randomBytes(20 * 1024 * 1024)) }]);
    put.catch(() => undefined);
    await eventually('a part of the upload on the share', async () => [...(await onShare(join(nas.sharePath, 'backups/box1/closed')))].some(([, size]) => size > 0), 20_000);
    await t.close();
    await assert.rejects(put, TargetError);
    assert.ok(pids.length > 0);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `smbclient ${pid} is gone`);
    assert.equal((await onShare(join(nas.sharePath, 'backups/box1/closed'))).has('big.bin'), false);
    await assert.rejects(t.list(''), /closed/);
  } finally {
    await proxy.stop();
  }
});

test('fault: a full share is full, and no file is left under its name', async () => {
  const small = await SambaServer.start(join(root, 'full'), { address: HOST, port: FULL_PORT, user: USER, password: PASSWORD, tmpfsSize: '2m' });
  try {
    const t = target({ url: `${small.url}/b` });
    const first = await localFile('fits', randomBytes(100_000));
    const tooBig = await localFile('toobig', randomBytes(3 * 1024 * 1024));
    await rejectsWith(
      t.put([
        { path: 'x/fits.bin', local: first },
        { path: 'x/toobig.bin', local: tooBig },
      ]),
      'full',
      /NT_STATUS_DISK_FULL/,
    );
    const held = await onShare(join(small.sharePath, 'b/x'));
    assert.equal(held.has('toobig.bin'), false, 'nothing under the final name');
    assert.ok([...held.keys()].every((n) => n === 'fits.bin'), `only the file that fit: ${[...held.keys()].join(', ')}`);
  } finally {
    await small.stop();
  }
});

test('fault: a password changed on the server is auth, for every operation and for test()', async () => {
  const t = target();
  await t.put([{ path: 'pw/a', local: await localFile('pw', Buffer.from('a')) }]);
  await nas.changePassword('a-new-password-9');
  try {
    await rejectsWith(t.test(), 'auth', /NT_STATUS_LOGON_FAILURE/);
    await rejectsWith(t.list(''), 'auth', /NT_STATUS_LOGON_FAILURE/);
    await rejectsWith(t.get([{ path: 'pw/a', local: join(local, 'pw-back') }]), 'auth');
    await rejectsWith(t.put([{ path: 'pw/b', local: join(local, 'pw') }]), 'auth');
  } finally {
    await nas.changePassword(PASSWORD);
  }
  await t.test();
});

test('fault: a server that is off is unreachable; once back, the same target works', async () => {
  const t = target();
  await nas.stopDaemon();
  try {
    await rejectsWith(t.test(), 'unreachable', /NT_STATUS_CONNECTION_REFUSED/);
    await rejectsWith(t.list(''), 'unreachable');
    await rejectsWith(t.get([{ path: 'x', local: join(local, 'off') }]), 'unreachable');
  } finally {
    await nas.startDaemon();
  }
  await t.test();
});

test('what smbclient prints before its first command (a warning about an option) is no command\'s failure', async () => {
  // This smbclient warns at start ("The \"client ntlmv2 auth\" option is deprecated"), as an
  // older or newer one may about anything.
  const wrapper = join(root, 'smbclient-that-warns');
  await writeFile(wrapper, '#!/bin/sh\nexec smbclient --option="client ntlmv2 auth=yes" "$@"\n', { mode: 0o755 });
  const t = target({ command: wrapper });
  await t.put([{ path: 'warn/a', local: await localFile('warn', Buffer.from('abc')) }]);
  assert.deepEqual(await t.list('warn'), [{ path: 'warn/a', size: 3 }]);
  await t.remove(['warn/a']);
});

test('a file missing on the share is notFound on get; a target whose folder was never made lists empty', async () => {
  const t = target();
  await rejectsWith(t.get([{ path: 'no/such/file', local: join(local, 'nf') }]), 'notFound', /NT_STATUS_OBJECT_(NAME|PATH)_NOT_FOUND/);
  assert.deepEqual(await target({ url: `${nas.url}/never/made` }).list(''), []);
});
