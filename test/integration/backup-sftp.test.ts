// Backups to a real OpenSSH sftp-server through the daemon and its CLI: the host key pinned
// at the first login, a backup that verifies, a restore after a disk swap from it, the box's
// own key accepted instead of a password, and a server that shows another host key refused.
// Loopback: 127.0.145.x (.1 sshd, .2 mlsd, which also connects from .2).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon, eventually } from '../helpers/daemon.js';
import { Sshd, SFTP_TEST_USER } from '../helpers/sshd.js';

const SSH = '127.0.145.1';
const HOST = '127.0.145.2';
const PASSWORD = 'sftp-pass-1';
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

test('an SFTP target: host key pinned at first login, backup, verify, and a disk-swap restore from it; another host key is refused', { timeout: 180_000 }, async () => {
  const sshd = await Sshd.start({ host: SSH, password: PASSWORD });
  cleanups.push(() => sshd.stop());
  const d = await TestDaemon.create({ host: HOST, config: { backup: { schedule: { enabled: false }, restore: { retrySeconds: 0.5 } } } });
  cleanups.push(() => d.cleanup());
  await d.start();
  await d.addUser('dave@example.test', 'dave-password-1');
  const webdisk = join(d.dataDir, 'mail', 'example.test', 'dave', 'webdisk');
  await mkdir(webdisk, { recursive: true });
  await writeFile(join(webdisk, 'notes.txt'), 'the notes of dave\n'.repeat(1000));
  const add = await d.cli(['backup', 'target', 'add', 'offsite', '--type', 'sftp', '--url', `sftp://${SSH}:${sshd.port}${sshd.uploadDir}`, '--user', SFTP_TEST_USER, '--password-stdin'], `${PASSWORD}\n`);
  assert.equal(add.code, 0, add.stderr);
  const pub = /^\s+(ssh-ed25519 \S+) mlsd@/m.exec(add.stdout)?.[1];
  assert.ok(pub, `the box's own public key is shown: ${add.stdout}`);
  assert.equal((await d.cli(['backup', 'run'])).code, 0);
  // The host key seen at the first login is pinned, as `ssh-keygen -lf` prints it.
  const fp = /SHA256:(\S+)/.exec(execFileSync('ssh-keygen', ['-lf', sshd.hostKeyPub], { encoding: 'utf8' }))?.[1];
  const targets = JSON.parse((await d.cli(['backup', 'target', 'list', '--json'])).stdout) as { hostKey: string; password: string }[];
  assert.equal(targets[0]!.hostKey, fp);
  assert.equal(targets[0]!.password, '********');
  assert.equal((await d.cli(['backup', 'verify', '--full'])).code, 0);
  const before = createHash('sha256').update(await readFile(join(webdisk, 'notes.txt'))).digest('hex');

  // The disk swapped: the restore comes from the SFTP server.
  await d.stop();
  await rm(d.dataDir, { recursive: true, force: true });
  await mkdir(d.dataDir);
  await d.start();
  await eventually('restore done', async () => JSON.parse((await d.cli(['restore', 'status', '--json'])).stdout).state === 'done', 60_000);
  assert.equal(createHash('sha256').update(await readFile(join(webdisk, 'notes.txt'))).digest('hex'), before);

  // The box's own key, once in authorized_keys, is enough: no password.
  await sshd.stop();
  const sshd2 = await Sshd.start({ host: SSH, password: 'a-password-the-box-does-not-know', authorizedKeys: [pub] });
  cleanups.push(() => sshd2.stop());
  // A new server: its host key differs from the one pinned, so the box refuses it and says so.
  await d.cli(['config', 'set', 'backup.targets', JSON.stringify([{ name: 'offsite', type: 'sftp', url: `sftp://${SSH}:${sshd2.port}${sshd2.uploadDir}`, user: SFTP_TEST_USER, hostKey: fp }])]);
  const refused = await d.cli(['backup', 'run']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /host key/i);
  const evs = JSON.parse((await d.cli(['events', 'list', '--json'])).stdout) as { kind: string; data?: { kind?: string } }[];
  assert.ok(evs.some((e) => e.kind === 'backup.failed' && e.data?.kind === 'hostKey'));
  assert.deepEqual(await readdir(sshd2.uploadDir).catch(() => []), [], 'nothing written to a server that is not the one pinned');
  // Once the administrator accepts the new server (pin cleared), the box's key logs it in without a password.
  await d.cli(['config', 'set', 'backup.targets', JSON.stringify([{ name: 'offsite', type: 'sftp', url: `sftp://${SSH}:${sshd2.port}${sshd2.uploadDir}`, user: SFTP_TEST_USER }])]);
  const ok = await d.cli(['backup', 'run']);
  assert.equal(ok.code, 0, ok.stderr);
});
