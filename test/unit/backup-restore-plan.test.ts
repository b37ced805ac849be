import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataRegistry } from '../../src/store/data.js';
import { BUILT_IN_DATA } from '../../src/main.js';
import { restorePlan } from '../../src/backup/restore.js';
import type { Manifest, ManifestFile } from '../../src/backup/manifest.js';
import { checkDataDisk, MARKER_FILE, readMemory } from '../../src/backup/marker.js';

const day = 86_400_000;
const now = Date.UTC(2026, 11, 5);
const f = (p: string, ageDays: number): ManifestFile => ({ p, s: 10, h: 'h', m: now - ageDays * day });

test('a restore brings back INBOXes and recent mail first (newest first), then older mail, contacts and WebDisk, then the rest, the archive last', () => {
  const data = new DataRegistry(BUILT_IN_DATA);
  const m: Manifest = {
    format: 1, set: 's', box: { id: 'b', hostname: 'h' }, generation: 'g', startedAt: '', finishedAt: '', archiveHead: null, bytes: 0, sentBytes: 0, config: [],
    files: [
      f('archive/packs/00/p1', 1),
      f('mail/example.test/bob/webdisk/a.pdf', 1),
      f('mail/example.test/alice/Maildir/.Old/cur/1:2,S', 400),
      f('mail/example.test/alice/Maildir/cur/2:2,S', 300),
      f('mail/example.test/bob/Maildir/new/3', 0),
      f('mail/example.test/bob/Maildir/.Sent/cur/4:2,S', 5),
      f('mail/example.test/alice/contacts/bob.vcf', 2),
      f('spool/X1.eml', 0),
      f('quarantine/Q1.eml', 0),
    ],
    records: [
      { sublevel: 'archive', h: 'a', s: 1, count: 1 },
      { sublevel: 'archive-packs', h: 'p', s: 1, count: 1 },
      { sublevel: 'queue', h: 'q', s: 1, count: 1 },
      { sublevel: 'events', h: 'e', s: 1, count: 1 },
      { sublevel: 'no-such-owner', h: 'n', s: 1, count: 1 },
    ],
  };
  const plan = restorePlan(m, { data }, now - 30 * day).map((i) => (i.kind === 'file' ? i.f.p : `records:${i.sublevel}`));
  assert.deepEqual(plan, [
    'mail/example.test/bob/Maildir/new/3',
    'mail/example.test/bob/Maildir/.Sent/cur/4:2,S',
    'mail/example.test/alice/Maildir/cur/2:2,S',
    'mail/example.test/alice/Maildir/.Old/cur/1:2,S',
    'mail/example.test/bob/webdisk/a.pdf',
    'mail/example.test/alice/contacts/bob.vcf',
    'records:queue',
    'records:events',
    'records:archive',
    'records:archive-packs',
  ]);
  // Spool, quarantine and archive pack files come back with their records, not alone; a sublevel no owner declares not at all.
});

test('the data disk marker: a first disk is marked, a blank one where a known one was owes a restore, data without our marker is left alone', async () => {
  const root = await mkdtemp(join(tmpdir(), 'mlsd-marker-'));
  try {
    const configDir = join(root, 'config');
    const dataDir = join(root, 'data');
    await mkdir(configDir);
    await mkdir(dataDir);
    await writeFile(join(dataDir, 'old-data'), 'x');
    const first = await checkDataDisk({ configDir, dataDir, disk: { model: 'M', serial: 'S1', wwn: '' }, now });
    assert.equal(first.kind, 'first', 'an existing box taking this version keeps its disk as it is');
    assert.equal((await checkDataDisk({ configDir, dataDir, disk: null, now })).kind, 'known');
    // Swapped for a blank disk.
    await rm(dataDir, { recursive: true });
    await mkdir(join(dataDir, 'lost+found'), { recursive: true });
    const swapped = await checkDataDisk({ configDir, dataDir, disk: { model: 'M', serial: 'S2', wwn: '' }, now });
    assert.equal(swapped.kind, 'swapped');
    if (swapped.kind === 'swapped') assert.deepEqual([swapped.was.generation, swapped.marker.generation, swapped.marker.serial], [1, 2, 'S2']);
    assert.equal((await readMemory(configDir))?.restorePending?.reason, 'disk-swap');
    // A restart during the restore: the disk is known now, and the restore is still owed.
    assert.equal((await checkDataDisk({ configDir, dataDir, disk: null, now })).kind, 'known');
    assert.ok((await readMemory(configDir))?.restorePending);
    // Data but no marker: the operator is asked, nothing written.
    await rm(join(dataDir, MARKER_FILE));
    await writeFile(join(dataDir, 'stranger'), 'x');
    assert.equal((await checkDataDisk({ configDir, dataDir, disk: null, now })).kind, 'notBlank');
    // Another box's disk (a hand-made marker with another id): never ours.
    await writeFile(join(dataDir, MARKER_FILE), JSON.stringify({ boxId: 'f'.repeat(32), serial: '', generation: 1, createdAt: 'x' }));
    assert.equal((await checkDataDisk({ configDir, dataDir, disk: null, now })).kind, 'foreign');
    // A torn or hostile marker is no marker: the disk is not blank, so nothing is restored onto it.
    await writeFile(join(dataDir, MARKER_FILE), '{"boxId": "../../etc", "generation": "x"');
    assert.equal((await checkDataDisk({ configDir, dataDir, disk: null, now })).kind, 'notBlank');
    assert.equal(JSON.parse(await readFile(join(configDir, 'data-marker.json'), 'utf8')).marker.generation, 2);
    // No disk, or a data folder that is no mounted file system (the disk did not mount): nothing decided, nothing written.
    await rm(dataDir, { recursive: true });
    await mkdir(dataDir);
    assert.equal((await checkDataDisk({ configDir, dataDir, disk: null, now, present: false })).kind, 'noDisk');
    assert.equal((await checkDataDisk({ configDir, dataDir, disk: null, now, mustBeMounted: true })).kind, 'noDisk');
    assert.deepEqual(await readdir(dataDir), [], 'no marker written onto a folder that is not the disk');
    assert.equal((await readMemory(configDir))?.marker.generation, 2, 'and no new disk generation recorded');
    // The first disk put back after its replacement: used as it is, and the restore owed to the other is dropped.
    const memory = await readMemory(configDir);
    await writeFile(join(configDir, 'data-marker.json'), JSON.stringify({ marker: memory!.marker, restorePending: { since: 'x', reason: 'disk-swap', target: null } }));
    await writeFile(join(dataDir, MARKER_FILE), JSON.stringify({ ...memory!.marker, generation: 1 }));
    assert.equal((await checkDataDisk({ configDir, dataDir, disk: null, now })).kind, 'older');
    assert.equal((await readMemory(configDir))?.restorePending, null);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a new box whose first start is cut short between its two marker writes is not taken for a swapped disk', async () => {
  const root = await mkdtemp(join(tmpdir(), 'mlsd-marker-'));
  try {
    const configDir = join(root, 'config');
    const dataDir = join(root, 'data');
    await mkdir(configDir);
    await mkdir(dataDir);
    // The write to the data disk fails (a folder stands where the marker goes), as a power cut
    // at that moment would leave it: the first start ends there.
    await mkdir(join(dataDir, MARKER_FILE));
    await assert.rejects(checkDataDisk({ configDir, dataDir, disk: null, now }));
    await rm(join(dataDir, MARKER_FILE), { recursive: true });
    const next = await checkDataDisk({ configDir, dataDir, disk: null, now });
    assert.equal(next.kind, 'first', 'still a first start, not a disk swap');
    assert.equal((await readMemory(configDir))?.restorePending, null, 'and no restore owed');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
