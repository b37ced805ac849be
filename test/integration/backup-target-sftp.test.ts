// The SFTP backup target against a real OpenSSH sshd (internal-sftp) on loopback, with a host
// key of the test's own: round trip, password and key login, host-key pinning, and the faults a
// NAS shows (connection cut mid-upload, folder full, password changed, server stopped, a server
// that never answers), each reported with its kind and none leaving a file at its final name.
// Loopback: 127.0.141.1 sshd, .2 the client (the box), .3 the cuttable relay, .4 a mute server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../../src/log/logger.js';
import { TargetError, type BackupTarget, type TargetErrorKind } from '../../src/backup/target.js';
import { sftpTarget } from '../../src/backup/targets/sftp.js';
import { freePort } from '../helpers/daemon.js';
import { Sshd, SFTP_TEST_USER } from '../helpers/sshd.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const run = promisify(execFile);
const SSHD_HOST = '127.0.141.1';
const CLIENT = '127.0.141.2';
const RELAY = '127.0.141.3';
const MUTE = '127.0.141.4';
const PASSWORD = 'Pa55-' + randomBytes(6).toString('hex');
const log = createLogger({ level: 'silent' });

let sshd: Sshd;
let work: string;
let clientKey: Buffer;
let hostFingerprint: string;
const targets: BackupTarget[] = [];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'mlsd-sftp-test-'));
  await run('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'mlsd-box', '-f', join(work, 'box_key')]);
  clientKey = await readFile(join(work, 'box_key'));
  sshd = await Sshd.start({ host: SSHD_HOST, password: PASSWORD, authorizedKeys: [await readFile(join(work, 'box_key.pub'), 'utf8')] });
  // What an operator would compare with: `ssh-keygen -lf` prints "256 SHA256:<base64> comment (ED25519)".
  const { stdout } = await run('/usr/bin/ssh-keygen', ['-lf', sshd.hostKeyPub]);
  hostFingerprint = /SHA256:([A-Za-z0-9+/]+)/.exec(stdout)![1]!;
});

after(async () => {
  for (const t of targets) await t.close().catch(() => undefined);
  await sshd?.stop();
  await rm(work, { recursive: true, force: true });
});

interface Make {
  folder: string;
  password?: string;
  privateKey?: Buffer;
  hostKey?: string;
  port?: number;
  host?: string;
  timeoutMs?: number;
  pinned?: string[];
  /** Collects every log line. */
  events?: Record<string, unknown>[];
}

function target(m: Make): BackupTarget {
  const t = sftpTarget(
    {
      name: 'nas',
      type: 'sftp',
      url: `sftp://${m.host ?? SSHD_HOST}:${m.port ?? sshd.port}${m.folder}`,
      user: SFTP_TEST_USER,
      password: m.password ?? PASSWORD,
      hostKey: m.hostKey ?? hostFingerprint,
    },
    { log: m.events ? createLogger({ level: 'info', destination: { write: (l: string) => void m.events!.push(JSON.parse(l) as Record<string, unknown>) } }) : log, privateKey: m.privateKey, pinHostKey: (fp) => m.pinned?.push(fp), localAddress: CLIENT, timeoutMs: m.timeoutMs ?? 10_000 },
  );
  targets.push(t);
  return t;
}

async function rejectsWith(p: Promise<unknown>, kind: TargetErrorKind): Promise<TargetError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TargetError, `expected a TargetError, got ${String(err)}`);
    assert.equal(err.kind, kind, `expected kind ${kind}, got ${err.kind}: ${err.message}`);
    return err;
  }
  assert.fail(`expected a TargetError of kind ${kind}, but it succeeded`);
}

/** Every file below dir on the server's disk, relative, with its size. */
function onDisk(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) {
      const full = join(e.parentPath, e.name);
      // A part file may be renamed between the listing and the stat.
      const size = statSync(full, { throwIfNoEntry: false })?.size;
      if (size !== undefined) out.set(full.slice(dir.length + 1), size);
    }
  }
  return out;
}

/** Waits until the part file of an upload under folder holds more than minBytes; its size then. */
async function partReaches(folder: string, prefix: string, minBytes: number): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const part = [...onDisk(folder)].find(([p]) => p.startsWith(prefix));
    if (part && part[1] > minBytes) return part[1];
    if (Date.now() > deadline) throw new Error(`no part file ${prefix}* above ${minBytes} bytes in ${folder}: ${[...onDisk(folder)].join(' ')}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function localFile(name: string, bytes: number): Promise<{ local: string; data: Buffer }> {
  const local = join(work, 'src', name);
  const data = randomBytes(bytes);
  await mkdir(dirname(local), { recursive: true });
  await writeFile(local, data);
  return { local, data };
}

test('round trip: many files in nested folders are put, listed with sizes, read back byte for byte and removed', async () => {
  const t = target({ folder: `${sshd.uploadDir}/round/trip` });
  await t.test();
  const files: { path: string; local: string; data: Buffer }[] = [];
  for (let i = 0; i < 300; i++) {
    const path = `gen-1/u${i % 7}/cur/m${i}.eml`;
    // Empty, small and a few large (more than fastPut's requests in flight).
    const size = i === 0 ? 0 : i % 50 === 1 ? 3_000_000 + i : 100 + ((i * 7919) % 20_000);
    files.push({ path, ...(await localFile(`rt/${path}`, size)) });
  }
  await t.put(files.map(({ local, path }) => ({ local, path })));

  const listed = await t.list('');
  assert.deepEqual(new Map(listed.map((e) => [e.path, e.size])), new Map(files.map((f) => [f.path, f.data.length])));
  assert.deepEqual(onDisk(`${sshd.uploadDir}/round/trip`), new Map(files.map((f) => [f.path, f.data.length])), 'exactly these files on the server, no part file left');
  const u3 = await t.list('gen-1/u3');
  assert.deepEqual(u3.map((e) => e.path).sort(), files.filter((f) => f.path.startsWith('gen-1/u3/')).map((f) => f.path).sort());
  assert.deepEqual(await t.list('gen-2'), [], 'a missing folder lists as empty');

  const back = join(work, 'back');
  await mkdir(back, { recursive: true });
  await t.get(files.map((f, i) => ({ path: f.path, local: join(back, `f${i}`) })));
  for (const [i, f] of files.entries()) assert.ok((await readFile(join(back, `f${i}`))).equals(f.data), `${f.path} read back differs`);

  // A file already there is replaced whole (posix-rename over it).
  const again = await localFile('rt/again', 5000);
  await t.put([{ local: again.local, path: files[5]!.path }]);
  await t.get([{ path: files[5]!.path, local: join(back, 'again') }]);
  assert.ok((await readFile(join(back, 'again'))).equals(again.data));

  await t.remove([...files.slice(0, 200).map((f) => f.path), 'gen-1/never-there']);
  assert.deepEqual((await t.list('')).map((e) => e.path).sort(), files.slice(200).map((f) => f.path).sort());
  await t.remove(files.map((f) => f.path));
  assert.deepEqual(await t.list(''), []);
  await rejectsWith(t.get([{ path: files[0]!.path, local: join(back, 'gone') }]), 'notFound');
});

test('a server that refuses posix-rename still gets every file replaced whole (remove, then rename)', async () => {
  const own = await Sshd.start({ host: SSHD_HOST, password: PASSWORD, deniedRequests: ['posix-rename'] });
  try {
    const events: Record<string, unknown>[] = [];
    const t = target({ folder: `${own.uploadDir}/r`, port: own.port, hostKey: '', events });
    const v1 = await localFile('norename/v1', 70_000);
    const v2 = await localFile('norename/v2', 90_000);
    await t.put([{ local: v1.local, path: 'a/f' }]);
    await t.put([{ local: v2.local, path: 'a/f' }]);
    assert.ok((await readFile(`${own.uploadDir}/r/a/f`)).equals(v2.data));
    assert.deepEqual([...onDisk(`${own.uploadDir}/r`).keys()], ['a/f']);
    // OpenSSH does not even offer the extension when it is denied.
    assert.ok(events.some((l) => l.evt === 'backup.sftp.connected' && l.posixRename === false), 'connected without posix-rename');
  } finally {
    await own.stop();
  }
});

test('key login: the box key logs in without a password; a key the server does not know is refused as auth', async () => {
  const t = target({ folder: `${sshd.uploadDir}/key`, password: '', privateKey: clientKey });
  await t.test();
  await run('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'other_key')]);
  const other = target({ folder: `${sshd.uploadDir}/key`, password: '', privateKey: await readFile(join(work, 'other_key')) });
  await rejectsWith(other.test(), 'auth');
  const garbled = target({ folder: `${sshd.uploadDir}/key`, password: '', privateKey: Buffer.from('-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n') });
  await rejectsWith(garbled.test(), 'auth');
});

test("host key: the first connection reports the fingerprint `ssh-keygen -lf` shows; another pinned key is refused before the password is sent", async () => {
  const pinned: string[] = [];
  const first = target({ folder: `${sshd.uploadDir}/pin`, hostKey: '', pinned });
  await first.test();
  await first.put([{ local: (await localFile('pin/a', 10)).local, path: 'a' }]);
  assert.deepEqual(pinned, [hostFingerprint], 'reported once, as ssh-keygen -lf prints it (without "SHA256:")');

  const acceptedBefore = sshd.output.match(/Accepted password/g)?.length ?? 0;
  const failedBefore = sshd.output.match(/Failed password/g)?.length ?? 0;
  const impostor = target({ folder: `${sshd.uploadDir}/pin2`, hostKey: 'x'.repeat(43) });
  const err = await rejectsWith(impostor.put([{ local: (await localFile('pin/b', 10)).local, path: 'b' }]), 'hostKey');
  assert.match(err.message, new RegExp(`SHA256:${hostFingerprint.replace(/[+/]/g, '\\$&')}`));
  assert.match(err.message, /SHA256:x{43}/);
  assert.equal(existsSync(`${sshd.uploadDir}/pin2`), false, 'nothing written');
  assert.equal(sshd.output.match(/Accepted password/g)?.length ?? 0, acceptedBefore, 'no login happened');
  assert.equal(sshd.output.match(/Failed password/g)?.length ?? 0, failedBefore, 'the password was never offered');
});

test('hostile remote paths are refused before anything is sent', async () => {
  const t = target({ folder: `${sshd.uploadDir}/hostile` });
  const { local } = await localFile('hostile/x', 10);
  for (const p of ['../escape', '/etc/passwd', 'a/../../b', 'a\nb', 'a//b', '', 'a b', 'ok/..']) {
    const err = await rejectsWith(t.put([{ local, path: 'fine' }, { local, path: p }]), 'io');
    assert.match(err.message, /refusing remote path/);
    await rejectsWith(t.get([{ path: p, local: join(work, 'h') }]), 'io');
    await rejectsWith(t.remove([p]), 'io');
    if (p !== '') await rejectsWith(t.list(p), 'io');
  }
  assert.equal(existsSync(`${sshd.uploadDir}/hostile`), false, 'not even the folder was made');
});

test('a connection cut in mid-upload is reported unreachable, leaves no file at its final name, and the same put succeeds after', { timeout: 120_000 }, async () => {
  const relay = await TcpProxy.start(RELAY, await freePort(RELAY), { host: SSHD_HOST, port: sshd.port });
  try {
    const folder = `${sshd.uploadDir}/cut`;
    const t = target({ folder, host: RELAY, port: relay.port, timeoutMs: 3000 });
    const big = await localFile('cut/big', 40 * 1024 * 1024);
    const small = await localFile('cut/small', 1000);
    const items = [{ local: small.local, path: 'g/small' }, { local: big.local, path: 'g/big.pack' }];
    const putting = t.put(items);
    // Cut once a good part of the big file is on the server, but not all of it.
    const partSize = await partReaches(folder, 'g/big.pack.part-', 4 * 1024 * 1024);
    relay.cut();
    assert.ok(partSize < big.data.length, 'cut before the upload was complete');
    await rejectsWith(putting, 'unreachable');
    assert.equal(onDisk(folder).has('g/big.pack'), false, 'no file at its final name');

    relay.restore();
    await t.put(items);
    assert.ok((await readFile(`${folder}/g/big.pack`)).equals(big.data));
    // The part file of the cut upload is swept by the next listing.
    assert.deepEqual((await t.list('')).map((e) => e.path), ['g/big.pack', 'g/small']);
    assert.deepEqual([...onDisk(folder).keys()].sort(), ['g/big.pack', 'g/small']);
  } finally {
    await relay.stop();
  }
});

test('the SSH session killed in mid-upload is reported unreachable; the retry reconnects by itself', { timeout: 120_000 }, async () => {
  const folder = `${sshd.uploadDir}/killed`;
  const t = target({ folder });
  await t.test();
  const big = await localFile('killed/big', 40 * 1024 * 1024);
  const putting = t.put([{ local: big.local, path: 'big.pack' }]);
  assert.ok((await partReaches(folder, 'big.pack.part-', 1024 * 1024)) < big.data.length);
  sshd.killSessions();
  await rejectsWith(putting, 'unreachable');
  assert.equal(onDisk(folder).has('big.pack'), false);
  await t.put([{ local: big.local, path: 'big.pack' }]);
  assert.ok((await readFile(`${folder}/big.pack`)).equals(big.data));
});

test('a full folder is reported full and leaves neither the file nor its part file', async () => {
  const folder = await sshd.smallFolder('full', 2 * 1024 * 1024);
  const t = target({ folder });
  await t.test();
  const small = await localFile('full/small', 100_000);
  const big = await localFile('full/big', 3 * 1024 * 1024);
  await t.put([{ local: small.local, path: 'a/small' }]);
  const err = await rejectsWith(t.put([{ local: big.local, path: 'a/big' }]), 'full');
  assert.match(err.message, /full/);
  assert.deepEqual([...onDisk(folder).keys()], ['a/small'], 'the part file was removed again');
  // Room again: the same put goes through.
  await t.remove(['a/small']);
  const fits = await localFile('full/fits', 1024 * 1024);
  await t.put([{ local: fits.local, path: 'a/big' }]);
});

test('a changed password is reported as auth', async () => {
  const folder = `${sshd.uploadDir}/pw`;
  await target({ folder }).test();
  await sshd.setPassword(PASSWORD + 'new');
  try {
    await rejectsWith(target({ folder }).test(), 'auth');
    await rejectsWith(target({ folder, password: '' }).list(''), 'auth');
  } finally {
    await sshd.setPassword(PASSWORD);
  }
});

test('a server that accepts but never answers is timed out as unreachable', async () => {
  const mute: Server = createServer((s) => s.on('error', () => undefined));
  const port = await freePort(MUTE);
  await new Promise<void>((r) => mute.listen(port, MUTE, r));
  try {
    const t = target({ folder: '/backup', host: MUTE, port, timeoutMs: 1500 });
    const err = await rejectsWith(t.test(), 'unreachable');
    assert.match(err.message, /did not answer within 1500 ms/);
  } finally {
    mute.close();
  }
});

test('a stopped server is reported unreachable, on the open connection and on a new one', async () => {
  const own = await Sshd.start({ host: SSHD_HOST, password: PASSWORD });
  const { stdout } = await run('/usr/bin/ssh-keygen', ['-lf', own.hostKeyPub]);
  const fp = /SHA256:([A-Za-z0-9+/]+)/.exec(stdout)![1]!;
  try {
    const t = target({ folder: `${own.uploadDir}/x`, port: own.port, hostKey: fp });
    await t.test();
    await own.kill();
    const { local } = await localFile('stopped/a', 100);
    await rejectsWith(t.put([{ local, path: 'a' }]), 'unreachable');
    await rejectsWith(target({ folder: `${own.uploadDir}/x`, port: own.port, hostKey: fp }).test(), 'unreachable');
  } finally {
    await own.stop();
  }
});
