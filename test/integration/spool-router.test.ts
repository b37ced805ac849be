import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, access, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDb, GroupCommitter } from '../../src/store/db.js';
import { DirSyncer } from '../../src/store/atomic.js';
import { Spool, SPOOL_DATA, type Envelope } from '../../src/spool/spool.js';
import { MaildirDelivery, MAILDIR_DATA } from '../../src/delivery/maildir.js';
import { OutboundQueue, QUEUE_DATA } from '../../src/delivery/queue.js';
import { DataRegistry } from '../../src/store/data.js';
import { LocalDurability, type MessageCommit } from '../../src/store/durability.js';
import { Router } from '../../src/delivery/router.js';

const log = pino({ level: 'silent' });

/** A replica that never acknowledges (an HA standby that went away mid-commit). */
class UnacknowledgedReplica extends LocalDurability {
  override commitMessage(_c: MessageCommit): Promise<void> {
    return Promise.reject(new Error('peer did not acknowledge'));
  }
}

async function setup(o: { replicaFails?: boolean } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-spool-'));
  const db = await openDb(join(dir, 'db'));
  const dirs = new DirSyncer();
  const data = new DataRegistry([SPOOL_DATA, QUEUE_DATA, MAILDIR_DATA]);
  const group = new (o.replicaFails ? UnacknowledgedReplica : LocalDurability)(data, new GroupCommitter(db), dirs, dir);
  const spool = new Spool(dir, db, group, dirs, log, () => 0);
  await spool.init();
  const queue = new OutboundQueue(db);
  const maildir = new MaildirDelivery(dir, dirs, group);
  const users = new Set(['bob@example.test', 'carol@example.test']);
  const aliases: Record<string, string[]> = { 'team@example.test': ['bob@example.test', 'carol@example.test', 'partner@remote.test'] };
  const router = new Router({
    resolver: {
      isLocalDomain: (d) => d === 'example.test',
      expand: (a) => aliases[a] ?? [a],
      isMailbox: (a) => users.has(a),
      isSuspended: () => false,
    },
    maildir,
    queue,
    group,
    dataPath: (id) => spool.dataPath(id),
    log,
    retryMs: 50,
  });
  return { dir, db, spool, queue, router, users };
}

async function receive(spool: Spool, rcpt: string[], body: string): Promise<Envelope> {
  const msg = await spool.begin();
  await msg.write(body);
  const env: Envelope = { id: msg.id, from: 'a@remote.test', rcpt, clientIp: '192.0.2.1', login: null, listener: 'mx', received: new Date().toISOString(), size: msg.size };
  await spool.commit(msg, env);
  return env;
}

const box = (dir: string, user: string) => join(dir, 'mail', 'example.test', user, 'Maildir', 'new');

test('concurrent commits share group syncs and all land in the spool', async () => {
  const { spool, db } = await setup();
  const envs = await Promise.all(Array.from({ length: 50 }, (_, i) => receive(spool, ['bob@example.test'], `Subject: ${i}\r\n\r\nx\r\n`)));
  const pending = await spool.pending();
  assert.deepEqual(new Set(pending.map((e) => e.id)), new Set(envs.map((e) => e.id)));
  await db.close();
});

test('the router fans an alias out to mailboxes and the queue, then clears the spool', async () => {
  const { dir, spool, queue, router, db } = await setup();
  const env = await receive(spool, ['team@example.test', 'x@remote.test'], 'Subject: fan\r\n\r\nbody\r\n');
  router.submit(env);
  await router.idle();
  for (const u of ['bob', 'carol']) {
    const files = await readdir(box(dir, u));
    assert.equal(files.length, 1);
    assert.match(files[0]!, /^\d+\.M[0-9A-Z]+R[0-9a-f]{12}\.mlsd,S=\d+$/);
    const text = await readFile(join(box(dir, u), files[0]!), 'utf8');
    assert.equal(text, `Return-Path: <a@remote.test>\r\nDelivered-To: ${u}@example.test\r\nSubject: fan\r\n\r\nbody\r\n`);
  }
  const q = await queue.list();
  assert.deepEqual(q.map((e) => e.recipients.map((r) => `${r.address}:${r.state}`)), [['partner@remote.test:queued', 'x@remote.test:queued']]);
  assert.deepEqual(await spool.pending(), []);
  await access(spool.dataPath(env.id)); // kept for the queue
  await db.close();
});

test('a message for local mailboxes only leaves no spool file behind', async () => {
  const { spool, router, db } = await setup();
  const env = await receive(spool, ['bob@example.test'], 'Subject: local\r\n\r\n');
  router.submit(env);
  await router.idle();
  await assert.rejects(access(spool.dataPath(env.id)));
  await db.close();
});

test('a mailbox removed after acceptance keeps the message in the queue, deferred, not dropped', async () => {
  const { spool, router, queue, users, db } = await setup();
  const env = await receive(spool, ['carol@example.test'], 'Subject: gone\r\n\r\n');
  users.delete('carol@example.test');
  router.submit(env);
  await router.idle();
  const q = await queue.list();
  assert.equal(q[0]?.recipients[0]?.state, 'deferred');
  assert.equal(q[0]?.recipients[0]?.lastReply, '550 5.1.1 mailbox no longer exists');
  await db.close();
});

test('a replica that fails the commit fails it but leaves a complete, routable message', async () => {
  const { spool, db } = await setup({ replicaFails: true });
  const msg = await spool.begin();
  await msg.write('Subject: hook\r\n\r\n');
  const env: Envelope = { id: msg.id, from: '', rcpt: ['bob@example.test'], clientIp: '192.0.2.1', login: null, listener: 'mx', received: '', size: msg.size };
  await assert.rejects(spool.commit(msg, env), /peer did not acknowledge/);
  await msg.discard(); // what the SMTP layer does on error: must not remove a committed file
  await access(spool.dataPath(env.id));
  assert.deepEqual((await spool.pending()).map((e) => e.id), [env.id]);
  await db.close();
});

test('orphan data files (commit never finished) are swept at start; referenced ones stay', async () => {
  const { spool, db } = await setup();
  const orphan = await spool.begin();
  await orphan.write('partial');
  await orphan.syncAndClose();
  const kept = await receive(spool, ['bob@example.test'], 'Subject: kept\r\n\r\n');
  const removed = await spool.sweepOrphans(async (id) => id === kept.id);
  assert.equal(removed, 1);
  await assert.rejects(access(orphan.path));
  await access(spool.dataPath(kept.id));
  await db.close();
});

test('a spool record for remote recipients whose file is gone (delivered from the queue, then a power cut took back the unsynced records, not the unlink) is dropped, not queued', async () => {
  const { spool, router, queue, db } = await setup();
  const env = await receive(spool, ['partner@remote.test'], 'Subject: delivered from the queue before the cut\r\n\r\nx\r\n');
  // The state after such a cut: the spool record is back, the queue record and the file are not.
  await unlink(spool.dataPath(env.id));
  router.submit(env);
  await router.idle();
  try {
    assert.equal(await spool.has(env.id), false);
    // Queued, it could only fail on the missing file at every attempt, for ever.
    assert.equal(await queue.has(env.id), false);
  } finally {
    router.stop();
    await db.close();
  }
});

test('a spool record whose file is gone (its unsynced delete lost in a power cut, the unlink kept) is dropped, not retried for ever', async () => {
  const { spool, router, db } = await setup();
  const env = await receive(spool, ['bob@example.test'], 'Subject: delivered before the cut\r\n\r\nx\r\n');
  // The state after such a cut: the record is back, the file is not.
  await unlink(spool.dataPath(env.id));
  router.submit(env);
  await router.idle();
  try {
    assert.equal(await spool.has(env.id), false);
  } finally {
    router.stop();
    await db.close();
  }
});
