import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataRegistry, filesToFollow, type DataDecl } from '../../src/store/data.js';
import { SPOOL_DATA } from '../../src/spool/spool.js';
import { QUEUE_DATA } from '../../src/delivery/queue.js';
import { QUARANTINE_DATA } from '../../src/scan/quarantine.js';
import { MAILDIR_DATA } from '../../src/delivery/maildir.js';
import { EVENTS_DATA } from '../../src/events/events.js';
import { THRESHOLD_DATA } from '../../src/store/counters.js';
import { CONFIG_DATA } from '../../src/config/config.js';
import { ACCOUNTS_DATA } from '../../src/accounts/accounts.js';
import { DKIM_DATA } from '../../src/delivery/dkim.js';
import { TLS_DATA } from '../../src/smtp/tls.js';

const data = () => new DataRegistry([SPOOL_DATA, QUEUE_DATA, QUARANTINE_DATA, MAILDIR_DATA, EVENTS_DATA, THRESHOLD_DATA, CONFIG_DATA, ACCOUNTS_DATA, DKIM_DATA, TLS_DATA]);
const put = (sublevel: string, key: string, value: unknown = { id: key }) => ({ type: 'put' as const, sublevel, key, value });
const del = (sublevel: string, key: string) => ({ type: 'del' as const, sublevel, key });

test('what a replica links and drops for each batch the active writes (golden table)', () => {
  const rows: { what: string; ops: ReturnType<typeof put | typeof del>[]; link: string[]; unlink: string[] }[] = [
    { what: 'router: spool record to queue record (file stays)', ops: [del('spool', 'A'), put('queue', 'A')], link: ['spool/A.eml'], unlink: [] },
    { what: 'router: every copy in a mailbox (file goes)', ops: [del('spool', 'A')], link: [], unlink: ['spool/A.eml'] },
    { what: 'runner: delivered', ops: [del('queue', 'A')], link: [], unlink: ['spool/A.eml'] },
    { what: 'quarantine: moved from the spool by link', ops: [put('quarantine', 'A'), del('spool', 'A')], link: ['quarantine/A.eml'], unlink: ['spool/A.eml'] },
    { what: 'quarantine release: back into the spool', ops: [put('spool', 'A'), del('quarantine', 'A')], link: ['spool/A.eml'], unlink: ['quarantine/A.eml'] },
    { what: 'two batches in one frame: queued, then delivered', ops: [del('spool', 'A'), put('queue', 'A'), del('queue', 'A')], link: ['spool/A.eml'], unlink: ['spool/A.eml'] },
    { what: 'records that stand for no file', ops: [put('counters', 'day'), del('seen', 'a@b\nc@d')], link: [], unlink: [] },
  ];
  for (const r of rows) {
    const f = filesToFollow(data(), r.ops);
    assert.deepEqual(f.link.map((l) => l.to), r.link, r.what);
    assert.deepEqual(f.unlink, r.unlink, r.what);
  }
  const q = filesToFollow(data(), [put('quarantine', 'A')]);
  assert.deepEqual(q.link[0]!.from, ['spool/A.eml'], 'a quarantine record takes its file from the spool');
});

test('hostile record keys and ids from a peer are refused before they name a file', async () => {
  for (const key of ['../x', '.hidden', 'a/b', '', 'x'.repeat(200), 'a\0b']) {
    assert.throws(() => filesToFollow(data(), [put('spool', key)]), /refusing record key/, JSON.stringify(key));
  }
  assert.throws(() => filesToFollow(data(), [put('queue', 'A', { id: '../../etc/x' })]), /carries another id/);
  await assert.rejects(data().mergeRecord('spool', 'A', { id: '../B' }, Buffer.alloc(0)), /carries another id/);
  await assert.rejects(data().mergeRecord('events', 'A', {}, Buffer.alloc(0)), /takes no merged records/);
  await assert.rejects(data().mergeRecord('no-such', 'A', {}, Buffer.alloc(0)), /takes no merged records/);
});

test('paths from a peer stay inside the replicated folders', () => {
  const d = data();
  assert.equal(d.safeRel('mail/example.test/bob/Maildir/new/1.M1'), 'mail/example.test/bob/Maildir/new/1.M1');
  for (const rel of ['../etc/passwd', '/etc/passwd', 'mail/../db/CURRENT', 'db/CURRENT', 'mail', 'mail//x', 'mail/./x', 'spool/a\0b', 42]) {
    assert.throws(() => d.safeRel(rel), /refusing path|outside the replicated folders/, String(rel));
  }
  assert.equal(d.isMergeableFile('mail/example.test/bob/Maildir/cur/1.M1:2,S'), true);
  assert.equal(d.isMergeableFile('spool/A.eml'), false, 'spool files come as records, not as loose files');
  assert.equal(d.identity('mail/e.test/bob/Maildir/cur/1.M1:2,S'), d.identity('mail/e.test/bob/Maildir/new/1.M1'));
});

test('each name has one owner; what is replicated is what the owners said', () => {
  const dup: DataDecl = { owner: 'intruder', sublevels: [{ name: 'spool', describe: 'x', replicate: true }] };
  assert.throws(() => new DataRegistry([SPOOL_DATA, dup]), /sublevel spool declared by both spool and intruder/);
  assert.throws(() => new DataRegistry([{ owner: 'x', folders: [{ path: '../up', describe: 'x', replicate: true }] }]), /one plain name/);
  const d = data();
  assert.deepEqual(d.replicatedSublevels().sort(), ['counters', 'delivery-state', 'quarantine', 'queue', 'seen', 'spool']);
  assert.deepEqual(d.replicatedFolders().sort(), ['mail', 'quarantine', 'spool']);
  assert.throws(() => d.sublevel('undeclared'), /not declared/);
  assert.equal(d.configFile('config.json')?.owner, 'config');
  assert.equal(d.configFile('dkim/example.test.mlsd.key')?.owner, 'dkim');
  assert.equal(d.configFile('tls/cert.pem')?.mode, 0o644);
  assert.equal(d.configFile('mlsd.sock'), null, 'the control socket is this box’s own');
});
