import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TestDaemon, eventually, swaks } from '../helpers/daemon.js';

// Issue 12 finding 12: a folder mlsd creates is only an entry in its parent until the parent
// is fsynced; after a power cut a new mailbox (and the message in it) could be gone. The
// running daemon is traced with strace (the real system calls, not our own account of them):
// every directory it makes while it takes a first message for a new user must be followed
// by an fsync of that directory's parent. Daemon on 127.0.108.1, client 127.0.108.2.
const HOST = '127.0.108.1';
const CLIENT = '127.0.108.2';
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({ host: HOST });
  await d.start();
});
after(async () => d.cleanup());

/** Attaches strace to every thread of pid (libuv's pool does the file work) and records mkdir and fsync calls. */
async function trace(pid: number, out: string): Promise<ChildProcess> {
  const st = spawn('strace', ['-f', '-qq', '-y', '-e', 'trace=mkdir,mkdirat,fsync,fdatasync', '-o', out, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  st.stderr!.on('data', (c) => (stderr += c));
  // Attached once the kernel names a tracer for the daemon's main thread.
  await eventually(`strace attached (${stderr})`, async () => /^TracerPid:\s*[1-9]/m.test(await readFile(`/proc/${pid}/status`, 'utf8')), 10_000);
  return st;
}

/**
 * Successful mkdirs and fsyncs in trace order: [kind, path]. With several threads a call
 * may be split into "<unfinished ...>" and "<... resumed>" lines; it counts where it ends.
 */
function calls(text: string): ['mkdir' | 'fsync', string][] {
  const out: ['mkdir' | 'fsync', string][] = [];
  const pending = new Map<string, ['mkdir' | 'fsync', string]>();
  for (const line of text.split('\n')) {
    const pid = line.split(' ', 1)[0]!;
    const mk = /\bmkdir(?:at)?\((?:AT_FDCWD(?:<[^>]*>)?, )?"([^"]+)"/.exec(line);
    const fs = /\bf(?:data)?sync\(\d+<([^>]+)>/.exec(line);
    const call: ['mkdir' | 'fsync', string] | undefined = mk ? ['mkdir', mk[1]!] : fs ? ['fsync', fs[1]!] : undefined;
    if (call && line.endsWith('<unfinished ...>')) pending.set(pid, call);
    const done = call ?? (/<\.\.\. (?:mkdir|mkdirat|fsync|fdatasync) resumed>/.test(line) ? pending.get(pid) : undefined);
    if (done && / = 0$/.test(line)) out.push(done);
  }
  return out;
}

test('every folder made for a first message to a new mailbox is synced into its parent (strace of the running daemon)', async () => {
  const out = join(d.root, 'strace.out');
  const st = await trace(d.proc!.pid!, out);
  try {
    await d.addUser('newbie@example.test', 'newbie-pass-1');
    const r = await swaks(['--server', `${HOST}:${d.ports.mx}`, '--local-interface', CLIENT, '--from', 'a@remote.test', '--to', 'newbie@example.test', '--body', 'first mail']);
    assert.match(r.out, /250 2\.0\.0 Ok: queued/, r.out);
    await eventually('the message in the new mailbox', async () => (await d.mailbox('newbie')).length === 1);
  } finally {
    const exited = new Promise((r) => st.once('exit', r));
    st.kill('SIGINT');
    await exited;
  }
  const seq = calls(await readFile(out, 'utf8'));
  const made = seq.flatMap(([k, p], i) => (k === 'mkdir' ? [{ dir: p, at: i }] : []));
  const maildir = join(d.dataDir, 'mail', 'example.test', 'newbie', 'Maildir');
  // The test only means something if the mailbox's folders were made while traced.
  for (const sub of ['tmp', 'new', 'cur']) assert.ok(made.some((m) => m.dir === join(maildir, sub)), `${sub} was not made while traced: ${JSON.stringify(made)}`);
  const unsynced = made.filter(({ dir, at }) => !seq.slice(at + 1).some(([k, p]) => k === 'fsync' && p === dirname(dir)));
  assert.deepEqual(unsynced.map((m) => m.dir), [], 'folders whose parent was never fsynced after they were made');
});
