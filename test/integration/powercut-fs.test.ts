// The power-cut filesystem itself (test/powercut/powercut_fs.py): that it drops what a disk with a
// volatile cache drops, and keeps what was made durable. No network. Needs root (FUSE mounts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { open, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, unlink, link, truncate, writeFile, appendFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destroyAllMounts, PowerCutFs } from '../helpers/powercut-fs.js';

const skip = process.getuid?.() !== 0 ? 'FUSE mounts need root' : false;
const roots: string[] = [];
after(async () => {
  // No daemons here: the mounts go first, then their folders.
  await destroyAllMounts();
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

/** A fresh backing folder (with `seed` in it, durable from the start) mounted for one test. */
async function mounted(seed: Record<string, string> = {}): Promise<{ fs: PowerCutFs; m: string; b: string }> {
  const root = await mkdtemp(join(tmpdir(), 'powercut-'));
  roots.push(root);
  const b = join(root, 'backing');
  const m = join(root, 'mnt');
  await mkdir(b);
  for (const [name, text] of Object.entries(seed)) {
    await mkdir(join(b, name, '..'), { recursive: true });
    await writeFile(join(b, name), text);
  }
  const fs = await PowerCutFs.mount(b, m);
  return { fs, m, b };
}

async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  await h.sync();
  await h.close();
}

/** Writes a file the durable way: data fsynced, then its folder. */
async function writeSynced(path: string, text: string, dir?: string): Promise<void> {
  const h = await open(path, 'w');
  await h.writeFile(text);
  await h.sync();
  await h.close();
  if (dir) await syncDir(dir);
}

const exists = (p: string) => stat(p).then(() => true, () => false);
const text = (p: string) => readFile(p, 'utf8');

test('a write never fsynced is gone after the cut; an fsynced one stays, without what came after it', { skip }, async () => {
  const { fs, m, b } = await mounted();
  await writeSynced(join(m, 'kept'), 'durable', m);
  await appendFile(join(m, 'kept'), ' and more');
  await writeFile(join(m, 'never-synced'), 'gone');
  await syncDir(m); // the entry of never-synced is durable; its data is not
  assert.equal(await text(join(m, 'kept')), 'durable and more', 'the mount reads what was written');
  const r = await fs.cut();
  assert.equal(await text(join(b, 'kept')), 'durable');
  assert.equal(await text(join(b, 'never-synced')), '', 'an entry synced without its data: an empty file');
  assert.equal(r.filesRolledBack, 2);
  assert.equal(r.bytesLost, ' and more'.length + 'gone'.length);
  assert.equal(r.fsyncs, 1);
  assert.equal(r.fsyncdirs, 2);
});

test('a new file exists after the cut only when its folder was fsynced', { skip }, async () => {
  const { fs, m, b } = await mounted();
  await writeSynced(join(m, 'both'), 'data', m);
  await writeSynced(join(m, 'file-synced-folder-not'), 'data');
  await writeSynced(join(m, 'after-last-dir-sync'), 'data');
  const r = await fs.cut();
  assert.deepEqual((await readdir(b)).sort(), ['both']);
  assert.equal(await text(join(b, 'both')), 'data');
  assert.equal(r.entriesLost, 2);
});

test('a folder exists only when its entry is synced in its parent, up to the root', { skip }, async () => {
  const { fs, m, b } = await mounted();
  // d/e/f synced all the way up.
  await mkdir(join(m, 'd', 'e', 'f'), { recursive: true });
  await writeSynced(join(m, 'd', 'e', 'f', 'msg'), 'y', join(m, 'd', 'e', 'f'));
  for (const p of [join(m, 'd', 'e'), join(m, 'd'), m]) await syncDir(p);
  // g/h: h made after g's last sync into the root, so g is there and empty.
  await mkdir(join(m, 'g'));
  await syncDir(m);
  await mkdir(join(m, 'g', 'h'));
  // a/b/c: c synced into b and b into a, but a never into the root: all of it is gone.
  await mkdir(join(m, 'a', 'b', 'c'), { recursive: true });
  await writeSynced(join(m, 'a', 'b', 'c', 'msg'), 'x', join(m, 'a', 'b', 'c'));
  await syncDir(join(m, 'a', 'b'));
  await syncDir(join(m, 'a'));
  await fs.cut();
  assert.deepEqual((await readdir(b)).sort(), ['d', 'g']);
  assert.equal(await text(join(b, 'd', 'e', 'f', 'msg')), 'y');
  assert.deepEqual(await readdir(join(b, 'g')), []);
});

test('temp, fsync, rename: the new name needs its folder synced; until then the old name is what is there', { skip }, async () => {
  const { fs, m, b } = await mounted({ 'target': 'old version' });
  await writeSynced(join(m, '.target.tmp'), 'new version', m);
  await rename(join(m, '.target.tmp'), join(m, 'target'));
  assert.equal(await text(join(m, 'target')), 'new version');
  await fs.cut();
  assert.equal(await text(join(b, 'target')), 'old version', 'the rename was not synced');
  assert.equal(await text(join(b, '.target.tmp')), 'new version', 'and the temp file is still there');
});

test('a rename synced in its folder replaces the old content', { skip }, async () => {
  const { fs, m, b } = await mounted({ 'target': 'old version' });
  await writeSynced(join(m, '.target.tmp'), 'new version');
  await rename(join(m, '.target.tmp'), join(m, 'target'));
  await syncDir(m);
  const r = await fs.cut();
  assert.deepEqual(await readdir(b), ['target']);
  assert.equal(await text(join(b, 'target')), 'new version');
  assert.equal(r.entriesLost, 0);
});

test('a move between folders synced only at the destination leaves the file under both names', { skip }, async () => {
  const { fs, m, b } = await mounted({ 'tmp/msg': 'mail', 'new/.keep': '' });
  await rename(join(m, 'tmp', 'msg'), join(m, 'new', 'msg'));
  await syncDir(join(m, 'new'));
  const r = await fs.cut();
  assert.equal(await text(join(b, 'new', 'msg')), 'mail');
  assert.equal(await text(join(b, 'tmp', 'msg')), 'mail', 'tmp/ was not synced: the old name is back');
  assert.equal(r.entriesRevived, 1);
});

test('an unlink whose folder was not synced is undone, with the file as it was last synced', { skip }, async () => {
  const { fs, m, b } = await mounted({ 'spool-file': 'queued mail' });
  await appendFile(join(m, 'spool-file'), ' with an unsynced tail');
  await unlink(join(m, 'spool-file'));
  await writeSynced(join(m, 'removed-synced'), 'bye', m);
  await unlink(join(m, 'removed-synced'));
  await syncDir(m);
  const { entriesRevived } = await fs.cut();
  // spool-file's unlink was synced by the last syncDir too: both are gone.
  assert.deepEqual(await readdir(b), []);
  assert.equal(entriesRevived, 0);
  const again = await mounted({ 'spool-file': 'queued mail' });
  await appendFile(join(again.m, 'spool-file'), ' with an unsynced tail');
  await unlink(join(again.m, 'spool-file'));
  const r2 = await again.fs.cut();
  assert.equal(await text(join(again.b, 'spool-file')), 'queued mail');
  assert.equal(r2.entriesRevived, 1);
});

test('an open file unlinked under its writer still reads, writes and fsyncs (with libfuse2 hard_remove; fstat excepted); the unlink unsynced, it comes back with what was synced', { skip }, async () => {
  const { fs, m, b } = await mounted({ 'spool-file': 'head' });
  const h = await open(join(m, 'spool-file'), 'r+');
  await unlink(join(m, 'spool-file'));
  await h.write(' and tail', 4);
  await h.sync();
  const back = Buffer.alloc(13);
  await h.read(back, 0, 13, 0);
  assert.equal(back.toString(), 'head and tail');
  await h.close();
  await fs.cut();
  assert.equal(await text(join(b, 'spool-file')), 'head and tail');
});

test('content present at mount is durable; rewriting it in place without fsync is undone', { skip }, async () => {
  const { fs, m, b } = await mounted({ 'db/CURRENT': 'MANIFEST-000001\n', 'db/LOG': 'abcdefghij' });
  const h = await open(join(m, 'db', 'LOG'), 'r+');
  await h.write('XY', 4);
  await h.close();
  await truncate(join(m, 'db', 'CURRENT'), 3);
  await fs.cut();
  assert.equal(await text(join(b, 'db', 'LOG')), 'abcdefghij');
  assert.equal(await text(join(b, 'db', 'CURRENT')), 'MANIFEST-000001\n');
});

test('truncate then write, synced: exactly the new bytes, zeros where the file grew past its old end', { skip }, async () => {
  const { fs, m, b } = await mounted({ 'f': 'ABCDEF' });
  const h = await open(join(m, 'f'), 'r+');
  await h.truncate(2);
  await h.write('XY', 4);
  await h.datasync(); // fdatasync counts as a sync of the data
  await h.write('tail', 6);
  await h.close();
  await fs.cut();
  assert.deepEqual(await readFile(join(b, 'f')), Buffer.from('AB\0\0XY'));
});

test('O_DSYNC writes are durable without an fsync; a hard link needs its folder synced like any name', { skip }, async () => {
  const { fs, m, b } = await mounted();
  const h = await open(join(m, 'log'), constants.O_CREAT | constants.O_WRONLY | constants.O_DSYNC);
  await h.write('record 1\n');
  await h.write('record 2\n');
  await h.close();
  await syncDir(m);
  await link(join(m, 'log'), join(m, 'log-link'));
  await writeSynced(join(m, 'x'), 'x');
  await link(join(m, 'x'), join(m, 'x-link'));
  await syncDir(m);
  await fs.cut();
  assert.equal(await text(join(b, 'log')), 'record 1\nrecord 2\n');
  assert.equal(await text(join(b, 'x-link')), 'x');
  assert.equal(await text(join(b, 'log-link')), 'record 1\nrecord 2\n');
  assert.equal((await stat(join(b, 'x'))).ino, (await stat(join(b, 'x-link'))).ino, 'still one file under two names');
});

test('a big file written in many pieces and synced is whole; an orderly unmount keeps everything', { skip }, async () => {
  const { fs, m, b } = await mounted();
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 12)) & 0xff;
  const h = await open(join(m, 'big'), 'w');
  for (let off = 0; off < big.length; off += 5000) await h.write(big, off, Math.min(5000, big.length - off), off);
  await h.sync();
  await h.close();
  await syncDir(m);
  await fs.cut();
  assert.ok((await readFile(join(b, 'big'))).equals(big));

  const again = await PowerCutFs.mount(b, m);
  await writeFile(join(m, 'unsynced'), 'kept by an orderly shutdown');
  await again.unmount();
  assert.equal(await text(join(b, 'unsynced')), 'kept by an orderly shutdown');
});

test('after freeze nothing completes: a writer that fsyncs record by record keeps every record it was told was synced', { skip }, async () => {
  const { fs, m, b } = await mounted();
  // The writer prints each record's number once its fsync returned (as mlsd sends a 250).
  const writer = spawn(process.execPath, ['-e', `
    const fs = require('node:fs');
    const fd = fs.openSync(${JSON.stringify(join(m, 'journal'))}, 'a');
    const dir = fs.openSync(${JSON.stringify(m)}, 'r');
    fs.fsyncSync(dir);
    for (let i = 1; ; i++) {
      fs.writeSync(fd, 'record ' + i + '\\n');
      fs.fsyncSync(fd);
      process.stdout.write(i + '\\n');
    }`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let acked = 0;
  writer.stdout.on('data', (c: Buffer) => {
    const lines = c.toString().trim().split('\n');
    acked = Number(lines[lines.length - 1]);
  });
  while (acked < 300) await new Promise((r) => setTimeout(r, 5));
  const r = await fs.powerCut([writer]);
  const ackedAtCut = acked;
  const records = (await text(join(b, 'journal'))).split('\n').filter(Boolean);
  const last = records.filter((l) => l.startsWith('record ')).length;
  assert.ok(last >= ackedAtCut, `${ackedAtCut} records were acknowledged, ${last} survived`);
  assert.ok(last <= ackedAtCut + 1, 'at most the record in flight at the cut is there unacknowledged');
  assert.equal(writer.signalCode, 'SIGKILL');
  assert.ok(r.fsyncs >= ackedAtCut);
  // The mount is gone: nothing answers there any more.
  assert.ok(!(await exists(join(m, 'journal'))));
});
