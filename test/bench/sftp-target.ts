// Informal throughput of the SFTP backup target beside OpenSSH's own `sftp -b`, to the same
// throw-away sshd on loopback: ~200 MB in 4000 files, and one 200 MB file, each put and got.
// Run as root (the test sshd needs it): node dist/test/bench/sftp-target.js
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../../src/log/logger.js';
import { sftpTarget } from '../../src/backup/targets/sftp.js';
import { Sshd, SFTP_TEST_USER } from '../helpers/sshd.js';

const run = promisify(execFile);
const HOST = '127.0.141.1';
const CLIENT = '127.0.141.2';
const work = await mkdtemp(join(tmpdir(), 'mlsd-sftp-bench-'));
execFileSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'key')]);
const sshd = await Sshd.start({ host: HOST, password: 'bench-' + randomBytes(4).toString('hex'), authorizedKeys: [await readFile(join(work, 'key.pub'), 'utf8')] });
try {
  const small: { local: string; path: string }[] = [];
  let smallBytes = 0;
  for (let i = 0; i < 4000; i++) {
    const size = 1000 + ((i * 7919) % 99_000); // 1 KB .. 100 KB, ~50 KB average
    const path = `u${i % 40}/cur/m${i}`;
    const local = join(work, 'small', path);
    await mkdir(join(local, '..'), { recursive: true });
    await writeFile(local, randomBytes(size));
    small.push({ local, path });
    smallBytes += size;
  }
  await writeFile(join(work, 'big'), randomBytes(200 * 1024 * 1024));
  const bigBytes = 200 * 1024 * 1024;
  const mbps = (bytes: number, ms: number) => `${((bytes / 1e6) / (ms / 1000)).toFixed(1)} MB/s`;
  const time = async (fn: () => Promise<unknown>) => {
    const t0 = performance.now();
    await fn();
    return performance.now() - t0;
  };
  const fp = /SHA256:([A-Za-z0-9+/]+)/.exec(execFileSync('/usr/bin/ssh-keygen', ['-lf', sshd.hostKeyPub]).toString())![1]!;
  const t = sftpTarget(
    { name: 'bench', type: 'sftp', url: `sftp://${HOST}:${sshd.port}${sshd.uploadDir}/ours`, user: SFTP_TEST_USER, password: '', hostKey: fp },
    { log: createLogger({ level: 'warn' }), privateKey: await readFile(join(work, 'key')), pinHostKey: () => undefined, localAddress: CLIENT },
  );
  await t.test();
  await mkdir(join(work, 'back'));
  const rows: [string, number, number][] = [];
  rows.push(['mlsd put 4000 files', smallBytes, await time(() => t.put(small))]);
  rows.push(['mlsd get 4000 files', smallBytes, await time(() => t.get(small.map((s, i) => ({ path: s.path, local: join(work, 'back', `s${i}`) }))))]);
  rows.push(['mlsd put 1 file', bigBytes, await time(() => t.put([{ local: join(work, 'big'), path: 'big' }]))]);
  rows.push(['mlsd get 1 file', bigBytes, await time(() => t.get([{ path: 'big', local: join(work, 'back', 'big') }]))]);
  await t.close();

  const sftp = (batch: string) =>
    new Promise<void>((resolve, reject) => {
      const p = execFile('/usr/bin/sftp', ['-q', '-b', '-', '-i', join(work, 'key'), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', `BindAddress=${CLIENT}`, '-P', String(sshd.port), `${SFTP_TEST_USER}@${HOST}`], (err) => (err ? reject(err) : resolve()));
      p.stdin!.end(batch);
    });
  await mkdir(join(work, 'back2'));
  rows.push(['sftp -b put -r 4000 files', smallBytes, await time(() => sftp(`put -r ${join(work, 'small')} ${sshd.uploadDir}/theirs\n`))]);
  rows.push(['sftp -b get -r 4000 files', smallBytes, await time(() => sftp(`get -r ${sshd.uploadDir}/theirs ${join(work, 'back2')}/\n`))]);
  rows.push(['sftp -b put 1 file', bigBytes, await time(() => sftp(`put ${join(work, 'big')} ${sshd.uploadDir}/theirs-big\n`))]);
  rows.push(['sftp -b get 1 file', bigBytes, await time(() => sftp(`get ${sshd.uploadDir}/theirs-big ${join(work, 'back2')}/big\n`))]);
  for (const [what, bytes, ms] of rows) console.log(`${what.padEnd(28)} ${(bytes / 1e6).toFixed(0).padStart(5)} MB ${ms.toFixed(0).padStart(7)} ms ${mbps(bytes, ms).padStart(12)}`);
} finally {
  await sshd.stop();
  await rm(work, { recursive: true, force: true });
  void run;
}
