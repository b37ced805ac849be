// Config-dir files from the HA peer: a watcher (the web admin's sessions, its certificate) is told
// when a file arrives with new content, and only then.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyConfigDirFiles } from '../../src/ha/configsync.js';
import { DataRegistry } from '../../src/store/data.js';
import { ADMIN_DATA } from '../../src/accounts/admin.js';
import { TLS_DATA } from '../../src/smtp/tls.js';

test('a watched file written with new content tells its watchers; the same content again, or an unwatched file, does not', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-configsync-'));
  try {
    const data = new DataRegistry([ADMIN_DATA, TLS_DATA]);
    const told: string[] = [];
    data.watchConfigFile('admin.json', () => told.push('admin'));
    data.watchConfigFile('tls/cert.pem', () => told.push('cert'));
    await applyConfigDirFiles(dir, { 'admin.json': Buffer.from('{"hash":"a"}') }, data);
    assert.deepEqual(told, ['admin']);
    await applyConfigDirFiles(dir, { 'admin.json': Buffer.from('{"hash":"a"}') }, data);
    assert.deepEqual(told, ['admin'], 'unchanged content is no news');
    await applyConfigDirFiles(dir, { 'admin.json': Buffer.from('{"hash":"b"}'), 'tls/key.pem': Buffer.from('k') }, data);
    assert.deepEqual(told, ['admin', 'admin']);
    assert.equal(await readFile(join(dir, 'tls', 'key.pem'), 'utf8'), 'k');
    // A file nobody declared replicated is neither written nor announced.
    await applyConfigDirFiles(dir, { 'initial-admin-password': Buffer.from('x') }, data);
    assert.deepEqual(told, ['admin', 'admin']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
