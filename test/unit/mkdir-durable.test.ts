import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mkdirDurable } from '../../src/store/atomic.js';

// Issue 12 finding 12: the parent of every directory created is fsynced (each once), so a new
// Maildir or spool folder survives a power cut; existing directories cost no sync.
test('mkdirDurable syncs the parent of each directory it made, once each, and nothing when all exist', async () => {
  const root = await mkdtemp(join(tmpdir(), 'mlsd-mkdir-'));
  try {
    const synced: string[] = [];
    const spy = async (d: string) => void synced.push(d);
    const box = join(root, 'mail', 'example.test', 'bob', 'Maildir');
    await mkdirDurable(['tmp', 'new', 'cur'].map((s) => join(box, s)), 0o700, spy);
    assert.deepEqual(synced.sort(), [root, join(root, 'mail'), join(root, 'mail', 'example.test'), join(root, 'mail', 'example.test', 'bob'), box].sort());

    synced.length = 0;
    await mkdirDurable(['tmp', 'new', 'cur'].map((s) => join(box, s)), 0o700, spy);
    assert.deepEqual(synced, [], 'an existing mailbox needs no sync');

    // A second user in an existing domain: only what is new, and its parents.
    await mkdir(join(root, 'mail', 'example.test', 'carol'));
    synced.length = 0;
    await mkdirDurable(join(root, 'mail', 'example.test', 'carol', 'Maildir', 'new'), 0o700, spy);
    assert.deepEqual(synced.sort(), [join(root, 'mail', 'example.test', 'carol'), join(root, 'mail', 'example.test', 'carol', 'Maildir')].sort());
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a failing directory sync is reported, not swallowed', async () => {
  const root = await mkdtemp(join(tmpdir(), 'mlsd-mkdir-'));
  try {
    await assert.rejects(mkdirDurable(join(root, 'a'), undefined, async () => { throw new Error('EIO'); }), /EIO/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
