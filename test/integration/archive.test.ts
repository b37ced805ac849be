// The mail archive over real SMTP: rules, Bcc in the envelope, duplicates stored once,
// spam skipped, search in Chinese and English, export, verify against tampering, holds
// and purge. Loopback: 127.0.131.x (.1 mlsd, .2 an outside server, .3 a second daemon).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, readdir, readFile, writeFile, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { Level } from 'level';
import { TestDaemon, CLI, eventually } from '../helpers/daemon.js';

const HOST = '127.0.131.1';
const OUTSIDE = '127.0.131.2';
const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

interface Hit {
  id: string;
  seq: number;
  subject: string;
  snippet: string;
  direction: string;
  to: string[];
}

async function cli(d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `mlsd ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function search(d: TestDaemon, args: string[]): Promise<Hit[]> {
  return (JSON.parse(await cli(d, ['archive', 'search', ...args, '--json'])) as { hits: Hit[] }).hits;
}

async function archiveStatus(d: TestDaemon): Promise<{ records: number; intake: number; blobs: number; packs: number; indexedUpTo: number }> {
  return (JSON.parse(await cli(d, ['status', '--json'])) as { archive: { records: number; intake: number; blobs: number; packs: number; indexedUpTo: number } }).archive;
}

/** Waits until the intake is empty and the index has caught up with the chain. */
async function settled(d: TestDaemon, records: number): Promise<void> {
  await eventually(`archive at ${records} records`, async () => {
    const s = await archiveStatus(d);
    return s.intake === 0 && s.records === records && s.indexedUpTo === records;
  }, 20000);
}

/** Exact bytes from the CLI (execFile's buffer encoding). */
function exportBytes(d: TestDaemon, id: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, '--config-dir', d.configDir, 'archive', 'export', id], { encoding: 'buffer', maxBuffer: 64 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(stderr.toString())) : resolve(stdout)));
  });
}

/** A raw message sent as it is (the same bytes every time), from an outside server to the MX. */
async function sendRaw(d: TestDaemon, from: string, to: string[], raw: string, localAddress = OUTSIDE): Promise<string> {
  const t = nodemailer.createTransport({ host: d.host, port: d.ports.mx, secure: false, ignoreTLS: true, localAddress, name: 'outside.test' } as Parameters<typeof nodemailer.createTransport>[0]);
  try {
    const info = await t.sendMail({ envelope: { from, to }, raw });
    const id = /queued as (\w+)/.exec(info.response)?.[1];
    assert.ok(id, info.response);
    return id;
  } finally {
    t.close();
  }
}

async function sendAsAlice(d: TestDaemon, to: string, subject: string, text: string): Promise<string> {
  const t = nodemailer.createTransport({ host: d.host, port: d.ports.submission, secure: false, requireTLS: true, tls: { rejectUnauthorized: false }, auth: { user: 'alice@example.test', pass: 'alice-password-1' } });
  try {
    const info = await t.sendMail({ from: 'alice@example.test', to, subject, text });
    return /queued as (\w+)/.exec(info.response)?.[1] ?? '';
  } finally {
    t.close();
  }
}

const CRLF = (s: string) => s.replace(/\r?\n/g, '\r\n');

/** 報價單 in the subject, 合約 only in the body, 出貨 only in an attachment's name, "shipping" only in its text. */
const QUOTE = CRLF(`From: Wang <wang@supplier.test>
To: Bob <bob@example.test>
Subject: =?UTF-8?B?${Buffer.from('報價單 for the new invoices').toString('base64')}?=
Date: Thu, 03 Dec 2026 10:00:00 +0800
Message-ID: <quote-1@supplier.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

${Buffer.from('您好，附件是明年的合約草稿，請查收。Regards, Wang').toString('base64')}
--b1
Content-Type: text/plain; charset=utf-8; name="=?UTF-8?B?${Buffer.from('出貨明細.txt').toString('base64')}?="
Content-Disposition: attachment; filename="=?UTF-8?B?${Buffer.from('出貨明細.txt').toString('base64')}?="

Container shipping schedule, week 50.
--b1--
`);

const NEWSLETTER = CRLF(`From: news@news.test
To: bob@example.test
Subject: Weekly digest
Message-ID: <digest-1@news.test>

Nothing to keep.
`);

test('mail lands in the archive by the rules: Bcc recorded, a duplicate stored once, spam and skipped senders not kept; search, show and export', async () => {
  const d = await TestDaemon.create({
    host: HOST,
    config: {
      relay: { allowIps: [], allowRecipientDomains: [], allowAuthenticated: true },
      scan: { outbound: { enabled: true, action: 'deliver' } },
      archive: { rules: [{ name: 'newsletters', from: ['news.test'], action: 'skip' }, { name: 'legal', to: ['legal@example.test'], action: 'archive', retentionYears: 10 }] },
    },
  });
  cleanups.push(() => d.cleanup());
  await d.start();
  await d.addUser('alice@example.test', 'alice-password-1');
  for (const u of ['bob', 'carol', 'legal']) await d.addUser(`${u}@example.test`, `${u}-password-1`);

  // Bcc: carol is in the envelope only.
  const quote1 = await sendRaw(d, 'wang@supplier.test', ['bob@example.test', 'carol@example.test'], QUOTE);
  // The same bytes again (a client that retried after a timeout): a second record, no second copy.
  const before = await (async () => {
    await settled(d, 1);
    return archiveStatus(d);
  })();
  const quote2 = await sendRaw(d, 'wang@supplier.test', ['bob@example.test'], QUOTE);
  await settled(d, 2);
  const afterDup = await archiveStatus(d);
  assert.equal(afterDup.blobs, before.blobs, 'the duplicate added no blob');
  assert.equal(afterDup.packs, before.packs, 'the duplicate added no pack');

  // Skipped by rule, and by the default spam rule (the outbound scanner tags GTUBE as spam and delivers it).
  await sendRaw(d, 'news@news.test', ['bob@example.test'], NEWSLETTER);
  const spamId = await sendAsAlice(d, 'carol@example.test', 'cheap pills', `buy now ${GTUBE}`);
  assert.ok(spamId);
  // Internal mail from alice, and one to legal with its own retention.
  const internal = await sendAsAlice(d, 'bob@example.test', 'Lunch orders', 'Who ordered the noodles?');
  const legal = await sendAsAlice(d, 'legal@example.test', 'Signed contract', 'The contract is signed.');
  await settled(d, 4);
  await eventually('the spam and the newsletter skipped', async () => d.logs.filter((l) => l.evt === 'archive.skip').length === 2);
  const skipped = d.logs.filter((l) => l.evt === 'archive.skip');
  assert.deepEqual(skipped.map((l) => l.rule).sort(), [0, 'default'].sort() as never);

  // Chinese in the subject, the body and an attachment's name; English by stem; attachment text.
  const bySubject = await search(d, ['報價']);
  assert.deepEqual(bySubject.map((h) => h.id), [quote2, quote1], 'newest first');
  assert.match(bySubject[0]!.subject, /報價單/);
  assert.deepEqual((await search(d, ['合約'])).map((h) => h.id), [quote2, quote1]);
  assert.match((await search(d, ['合約']))[0]!.snippet, /合約/);
  assert.deepEqual((await search(d, ['出貨'])).map((h) => h.id), [quote2, quote1]);
  assert.deepEqual((await search(d, ['invoice'])).map((h) => h.id), [quote2, quote1], 'invoice finds invoices');
  assert.deepEqual((await search(d, ['ship'])).map((h) => h.id), [quote2, quote1], 'ship finds shipping in the attachment text');
  assert.deepEqual((await search(d, ['order'])).map((h) => h.id), [internal], 'order finds orders and ordered');
  assert.deepEqual(await search(d, ['pills']), [], 'the spam was not archived');
  assert.deepEqual(await search(d, ['digest']), [], 'the newsletter was not archived');
  // Filters: the envelope's Bcc recipient, direction, sender domain, dates.
  assert.deepEqual((await search(d, ['--to', 'carol@example.test'])).map((h) => h.id), [quote1], 'the Bcc recipient is searchable');
  assert.deepEqual((await search(d, ['--direction', 'internal'])).map((h) => h.id).sort(), [internal, legal].sort());
  assert.deepEqual((await search(d, ['--from', 'supplier.test', '--direction', 'in'])).map((h) => h.id), [quote2, quote1]);
  assert.deepEqual(await search(d, ['報價', '--until', '2020-01-01']), []);
  assert.equal((await search(d, ['報價', '--since', '2020-01-01'])).length, 2);
  const bad = await d.cli(['archive', 'search', 'x', '--since', 'yesterday']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--since/);

  // show: the envelope with the Bcc recipient, the headers, the text; the retention of its rule.
  const shown = JSON.parse(await cli(d, ['archive', 'show', quote1, '--json']));
  assert.deepEqual(shown.envelope.rcpt, ['bob@example.test', 'carol@example.test']);
  assert.equal(shown.envelope.direction, 'in');
  assert.equal(shown.envelope.clientIp, OUTSIDE);
  assert.match(shown.text, /合約草稿/);
  assert.equal(shown.attachments[0].name, '出貨明細.txt');
  const legalShown = JSON.parse(await cli(d, ['archive', 'show', legal, '--json']));
  assert.equal(legalShown.rule, 1);
  const years = (Date.parse(legalShown.retainUntil) - Date.parse(legalShown.archived)) / (365.2425 * 86400000);
  assert.ok(Math.abs(years - 10) < 0.01, `legal mail kept 10 years, not ${years}`);
  assert.ok(Math.abs((Date.parse(shown.retainUntil) - Date.parse(shown.archived)) / (365.2425 * 86400000) - 7) < 0.01, 'default retention 7 years');
  // export: the client's bytes exactly, after our Received line.
  const exported = await exportBytes(d, quote1);
  assert.ok(exported.subarray(exported.length - Buffer.byteLength(QUOTE)).equals(Buffer.from(QUOTE)), 'the original bytes');
  assert.match(exported.subarray(0, 300).toString(), new RegExp(`^Received: from outside\\.test [^\\n]*\\n\\tby mail\\.example\\.test \\(mlsd\\) with E?SMTP id ${quote1};`));
  // Hostile ids: no path, no error beyond "no message".
  for (const id of ['../../etc/passwd', 'x'.repeat(300), '']) {
    const r = await d.cli(['archive', 'show', id]);
    assert.notEqual(r.code, 0);
  }
  // A rule change applies to new mail only: mail already archived keeps its retention.
  await cli(d, ['config', 'set', 'archive.retentionYears', '1']);
  assert.equal(JSON.parse(await cli(d, ['archive', 'show', quote1, '--json'])).retainUntil, shown.retainUntil);
  // Nothing readable on the data disk: the packs and the index hold neither the words nor the subject.
  const files = await listFiles(join(d.dataDir, 'archive'));
  files.push(...(await listFiles(join(d.dataDir, 'archive-index'))));
  for (const f of files) {
    const b = await readFile(f);
    for (const word of ['合約草稿', 'Container shipping', 'wang@supplier.test', 'Lunch orders']) assert.equal(b.indexOf(Buffer.from(word)), -1, `${word} readable in ${f}`);
  }
  // The search index is derived: reindex rebuilds it from the store.
  assert.match(await cli(d, ['archive', 'reindex']), /4 messages/);
  assert.deepEqual((await search(d, ['報價'])).map((h) => h.id), [quote2, quote1]);
});

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

/** Opens the stopped daemon's LevelDB the way an attacker with the disk would. */
async function withDb(dataDir: string, fn: (chain: ReturnType<Level<string, unknown>['sublevel']>) => Promise<void>): Promise<void> {
  const db = new Level<string, unknown>(join(dataDir, 'db'), { valueEncoding: 'json' });
  await db.open();
  try {
    await fn(db.sublevel<string, unknown>('archive', { valueEncoding: 'json' }) as never);
  } finally {
    await db.close();
  }
}

test('archive verify names a flipped byte, a deleted record and an inserted one; purge keeps what is held or not yet due, and leaves tombstones that verify', async () => {
  const d = await TestDaemon.create({ host: HOST, config: { archive: { rules: [{ name: 'short', subject: 'short-lived', action: 'archive', retentionYears: 0.0000002 }] } } });
  cleanups.push(() => d.cleanup());
  await d.start();
  await d.addUser('bob@example.test', 'bob-password-1');
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const subject = i < 3 ? `short-lived note ${i}` : `kept note ${i}`;
    ids.push(await sendRaw(d, `sender${i}@outside.test`, ['bob@example.test'], CRLF(`From: sender${i}@outside.test\nTo: bob@example.test\nSubject: ${subject}\nMessage-ID: <n${i}@outside.test>\n\n${i === 1 ? '這份合約要保存' : 'plain text'} number ${i}\n`)));
  }
  await settled(d, 5);
  const archivedAt = Date.now();
  const ok = await d.cli(['archive', 'verify', '--json']);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.equal(JSON.parse(ok.stdout).problems.length, 0);

  // Tampering, each on its own copy of the stopped box's data disk.
  await d.stop();
  const tampered = async (what: string, tamper: (dataDir: string) => Promise<void>) => {
    const dir = await mkdtemp(join(tmpdir(), 'mlsd-archive-tamper-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await cp(d.dataDir, dir, { recursive: true });
    await tamper(dir);
    const t = await TestDaemon.create({ host: '127.0.131.3', configDir: d.configDir, dataDir: dir });
    cleanups.push(() => t.cleanup());
    await t.start();
    const r = await t.cli(['archive', 'verify', '--json']);
    await t.stop();
    assert.equal(r.code, 1, `${what}: verify must exit 1`);
    return JSON.parse(r.stdout).problems as { kind: string; seq?: number; key: string; detail: string }[];
  };
  const flipped = await tampered('a flipped byte in a pack', async (dir) => {
    const packs = await listFiles(join(dir, 'archive'));
    const f = packs.find((p) => p.endsWith('.pack'))!;
    const b = await readFile(f);
    const at = Math.floor(b.length / 2);
    b[at] = b[at]! ^ 0x01;
    await writeFile(f, b);
  });
  assert.ok(flipped.some((p) => p.kind === 'altered'), JSON.stringify(flipped));
  const deleted = await tampered('a deleted record', (dir) => withDb(dir, async (chain) => chain.del('000000000003')));
  assert.ok(deleted.some((p) => p.kind === 'missing' && p.seq === 3), JSON.stringify(deleted));
  const inserted = await tampered('an inserted record', (dir) =>
    withDb(dir, async (chain) => {
      const rec = (await chain.get('000000000002')) as Record<string, unknown>;
      await chain.put('000000000006', { ...rec, seq: 6, prev: (await chain.get('000000000005') as { mac: string }).mac });
    }),
  );
  assert.ok(inserted.some((p) => p.kind === 'inserted' && p.seq === 6), JSON.stringify(inserted));

  // Retention and holds, on the untouched disk.
  await d.start();
  await cli(d, ['archive', 'hold', 'add', '合約']);
  // The short rule keeps mail about 6 s from its intake (the tampering above took most of that).
  await new Promise((r) => setTimeout(r, Math.max(0, archivedAt + 7000 - Date.now())));
  const dry = JSON.parse(await cli(d, ['archive', 'purge', '--dry-run', '--json']));
  assert.deepEqual(dry.ids.sort(), [ids[0], ids[2]].sort(), 'due and not held');
  assert.deepEqual(dry.heldIds, [ids[1]]);
  assert.equal((await archiveStatus(d)).records, 5, 'a dry run changes nothing');
  const purged = JSON.parse(await cli(d, ['archive', 'purge', '--json']));
  assert.equal(purged.purged, 2);
  const gone = await d.cli(['archive', 'show', ids[0]!]);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /purged/);
  assert.deepEqual((await search(d, ['short'])).map((h) => h.id), [ids[1]]);
  const after1 = await d.cli(['archive', 'verify', '--json']);
  assert.equal(after1.code, 0, after1.stdout);
  const v = JSON.parse(after1.stdout);
  assert.equal(v.tombstones, 2);
  assert.equal(v.purges, 1);
  // The hold lifted: the held message goes at the next purge; the kept ones stay.
  await cli(d, ['archive', 'hold', 'remove', '合約']);
  assert.equal(JSON.parse(await cli(d, ['archive', 'purge', '--json'])).purged, 1);
  assert.deepEqual((await search(d, ['kept'])).map((h) => h.id), [ids[4], ids[3]]);
  assert.equal((await d.cli(['archive', 'verify'])).code, 0);
  // A hold with an empty query or a bad filter is refused with a clear line.
  const empty = await d.cli(['archive', 'hold', 'add', '  ']);
  assert.notEqual(empty.code, 0);
  const badDate = await d.cli(['archive', 'hold', 'add', 'since:someday']);
  assert.notEqual(badDate.code, 0);
});
