// The LevelDB store under power cuts, beneath the daemon: a writer process commits records
// through GroupCommitter (synced batches) on the power-cut filesystem and prints each key once
// its write resolved; the power is cut at random moments, across LevelDB's log-file switches
// (every 4 MiB of writes) and the compactions after them. Every printed key must be there
// when the database is opened again. No network. Needs root (FUSE).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { destroyAllMounts, PowerCutFs } from '../helpers/powercut-fs.js';
import { openDb, sublevel } from '../../src/store/db.js';

const skip = process.getuid?.() !== 0 ? 'FUSE mounts need root' : false;
const CUTS = Number(process.env.POWERCUT_CUTS ?? 3);
const DIST_SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const roots: string[] = [];
after(async () => {
  // No daemons here: the mounts go first, then their folders.
  await destroyAllMounts();
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

const WRITER = `
  const [{ openDb, GroupCommitter }, { DirSyncer }] = await Promise.all([
    import(${JSON.stringify(join(DIST_SRC, 'store', 'db.js'))}),
    import(${JSON.stringify(join(DIST_SRC, 'store', 'atomic.js'))}),
  ]);
  const db = await openDb(process.argv[1]);
  const group = new GroupCommitter(db, new DirSyncer());
  const start = Number(process.argv[2]);
  const value = 'v'.repeat(6000);
  // Four writers at once, as the daemon's concurrent commits: they share synced batches.
  let next = start;
  await Promise.all([0, 1, 2, 3].map(async () => {
    for (;;) {
      const key = String(next++).padStart(9, '0');
      await group.write([{ type: 'put', sublevel: 'records', key, value }]);
      process.stdout.write(key + '\\n');
    }
  }));
`;

test(`LevelDB through GroupCommitter: ${CUTS} power cuts across log-file switches lose no acknowledged write`, { skip, timeout: 10 * 60_000 }, async () => {
  const root = await mkdtemp(join(tmpdir(), 'powercut-leveldb-'));
  roots.push(root);
  const backing = join(root, 'disk');
  const mnt = join(root, 'mnt');
  const acked = new Set<string>();
  let next = 0;
  let logSwitches = 0;
  for (let cut = 1; cut <= CUTS; cut++) {
    const fs = await PowerCutFs.mount(backing, mnt);
    const writer = spawn(process.execPath, ['--input-type=module', '-e', WRITER, join(mnt, 'db'), String(next)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    writer.stderr.on('data', (c: Buffer) => (err += c.toString()));
    let buf = '';
    let count = 0;
    writer.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const k of lines) acked.add(k);
      count += lines.length;
    });
    // 700 records of 6 KB is one log file's worth: cut somewhere in the first two or three
    // (the first cut after at least one switch, so a short run has crossed one).
    const want = (cut === 1 ? 800 : 200) + Math.floor(Math.random() * 1800);
    while (count < want) {
      if (writer.exitCode !== null) throw new Error(`the writer died: ${err}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    await fs.powerCut([writer]);
    next += count + 100;

    // Power on: the database opens as it is, and every acknowledged key is in it.
    const again = await PowerCutFs.mount(backing, mnt);
    try {
      const db = await openDb(join(mnt, 'db'));
      const present = new Set<string>();
      for await (const k of sublevel(db, 'records').keys()) present.add(k);
      await db.close();
      const lost = [...acked].filter((k) => !present.has(k));
      assert.deepEqual(lost.slice(0, 10), [], `after cut ${cut}: ${lost.length} of ${acked.size} acknowledged writes lost`);
      logSwitches = (await readdir(join(mnt, 'db'))).filter((n) => n.endsWith('.ldb')).length;
    } finally {
      await again.unmount();
    }
  }
  process.stdout.write(`# powercut leveldb: cuts ${CUTS}, acknowledged ${acked.size}, lost 0, table files ${logSwitches}\n`);
  assert.ok(logSwitches > 0, 'the writes never filled a log file: the switch was not tested');
});
