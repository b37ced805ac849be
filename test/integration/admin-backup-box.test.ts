// The Backup and restore page and the Box page in Debian's Chromium against the real daemon:
// a folder target added on the page (the recovery key shown once, never again), a backup run
// and its generation listed, a message browsed and put back, a real restore followed on the
// page to its end; a new certificate installed on the Box page and presented by the very next
// HTTPS connection, a key that does not fit refused with the error shown, and the audit trail.
// Loopback: 127.0.155.1 (the daemon); the browser and the TLS probe connect from 127.0.155.2.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate, randomBytes } from 'node:crypto';
import { connect } from 'node:tls';
import type { Browser } from 'playwright-core';
import { TestDaemon, eventually } from '../helpers/daemon.js';
import { goto, openAdmin, shot, type AdminBrowser } from '../helpers/admin-web.js';
import { launchChromium } from '../helpers/browser.js';

const HOST = '127.0.155.1';
const PROBE = '127.0.155.2';
/** Enough small messages that a restore takes several batches (750 files each) and a few seconds. */
const MESSAGES = 1600;
let d: TestDaemon;
let browser: Browser;
let ui: AdminBrowser;
let nas: string;
const maildir = () => join(d.dataDir, 'mail', 'example.test', 'alice', 'Maildir');

/** Alice's older mail, read and filed, written straight into her Maildir. */
async function seedMailbox(n: number): Promise<void> {
  const box = maildir();
  for (const sub of ['cur', 'new', 'tmp', '.Projects/cur', '.Projects/new', '.Projects/tmp']) await mkdir(join(box, sub), { recursive: true });
  const when = Date.now() - 90 * 86_400_000;
  for (let i = 0; i < n; i++) {
    const name = join(box, i % 3 === 0 ? '.Projects/cur' : 'cur', `${Math.floor(when / 1000) - i}.M${i}P1.seed,S=300:2,S`);
    await writeFile(name, `From: partner${i}@outside.test\r\nTo: alice@example.test\r\nSubject: old mail ${i}\r\n\r\n${randomBytes(120).toString('base64')}\r\n`);
    const t = new Date(when - i * 60_000);
    await utimes(name, t, t);
  }
}

async function mailFiles(): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['cur', 'new', '.Projects/cur', '.Projects/new']) out.push(...(await readdir(join(maildir(), sub)).catch(() => [] as string[])).map((n) => `${sub}/${n}`));
  return out;
}

before(async () => {
  d = await TestDaemon.create({ host: HOST, config: { backup: { schedule: { enabled: false }, restore: { retrySeconds: 0.5 } } } });
  nas = join(d.root, 'usb-disk');
  await mkdir(nas);
  await seedMailbox(MESSAGES);
  await d.start();
  await d.addUser('alice@example.test', 'alice-password-1');
  browser = await launchChromium();
  ui = await openAdmin(d, { browser });
});

after(async () => {
  await ui?.close();
  await browser?.close();
  await d?.cleanup();
});

test('a folder target added on the page shows the recovery key once; Run backup lists the new generation; a message is browsed and put back', { timeout: 120_000 }, async () => {
  const { page } = ui;
  await goto(page, 'backup');
  assert.match((await page.textContent('#backup-targets')) ?? '', /No backup target yet/);
  await page.fill('#bt-name', 'usb');
  await page.selectOption('#bt-type', 'dir');
  await page.fill('#bt-url', nas);
  await page.click('#bt-add');
  const key = ((await page.locator('#recovery-key pre.secret').textContent({ timeout: 15_000 })) ?? '').trim();
  assert.match(key, /^([0-9a-f]{4}-){15}[0-9a-f]{4}$/, 'the recovery key as written on paper');
  assert.match((await page.textContent('#recovery-key')) ?? '', /write it down|Write it on paper/i);
  assert.match((await page.textContent('#backup-targets')) ?? '', /usb/);
  // Nothing keeps it in the browser, and a reload does not bring it back.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  assert.ok(!stored.includes(key.slice(0, 9)), 'the recovery key is not stored in the browser');
  await page.evaluate(() => delete document.body.dataset.ready);
  await page.reload();
  await page.waitForSelector('body[data-ready="backup"]');
  assert.equal(await page.locator('#recovery-key').count(), 0, 'the recovery key is not shown again after a reload');
  assert.ok(!((await page.textContent('body')) ?? '').includes(key));

  // The Test button runs `backup target test`.
  await page.click('button[data-test="usb"]');
  await page.locator('.target-status .msg.ok').waitFor();

  // A hostile name is refused by the box with its own one-line error, shown on the page.
  await page.fill('#bt-name', 'usb');
  await page.selectOption('#bt-type', 'dir');
  await page.fill('#bt-url', '../../etc');
  await page.click('#bt-add');
  assert.match((await page.locator('.add-target .msg.error').textContent()) ?? '', /.+/);
  assert.equal(await page.locator('#recovery-key').count(), 0);

  let t = Date.now();
  const lap = (what: string) => (console.log(`${what}: ${Date.now() - t} ms`), (t = Date.now()));
  await page.click('#backup-run');
  const generation = ((await page.locator('#backup-last .generation').textContent({ timeout: 60_000 })) ?? '').trim();
  const onTarget = JSON.parse((await d.cli(['backup', 'generations', '--json'])).stdout) as { target: string; generations: string[] }[];
  assert.deepEqual(onTarget, [{ target: 'usb', generations: [generation] }]);
  assert.match((await page.textContent('#backup-generations')) ?? '', new RegExp(generation));
  lap('backup');
  await shot(page, 'backup-en');

  // Verify reads the backup back and says how many files were bad (none).
  await page.click('#verify-run');
  assert.match((await page.locator('#verify-result .msg.ok, #verify-result .msg.error').first().textContent({ timeout: 30_000 })) ?? '', /usb: generation \S+, \d+ files read back, 0 bad/);

  lap('verify');
  // One message lost from the mailbox is found in the backup and put back.
  const files = await mailFiles();
  const gone = files.find((f) => f.startsWith('cur/'))!;
  await rm(join(maildir(), gone));
  await page.fill('#browse-user', 'alice@example.test');
  await page.click('#browse-run');
  assert.match((await page.locator('#browse-result p', { hasText: 'messages of' }).textContent({ timeout: 30_000 })) ?? '', new RegExp(`${MESSAGES} messages of alice@example.test`));
  const id = gone.slice('cur/'.length).split(':')[0]!;
  const row = page.locator('#browse-result tr', { hasText: `old mail ${Number(/\.M(\d+)P/.exec(id)![1])}` }).first();
  await row.locator('button').click();
  assert.match((await page.locator('#browse-result .msg.ok').textContent({ timeout: 30_000 })) ?? '', /Put back into the mailbox/);
  assert.ok((await mailFiles()).some((f) => f.includes(id)), 'the message is back in the mailbox');
});

test('a restore started on the page shows its progress while it runs, refreshed by itself, until done', { timeout: 120_000 }, async () => {
  const { page } = ui;
  // The mailbox is emptied, so the restore has to bring every message back from the target.
  for (const f of await mailFiles()) await rm(join(maildir(), f));
  await goto(page, 'box');
  await goto(page, 'backup');
  assert.equal(await page.getAttribute('#restore-progress', 'data-state'), 'none');
  // The target is away when the restore starts (a USB disk not plugged in yet): the page shows
  // the restore waiting for it, by its own refreshes, and then running to its end once it is back.
  // Without this a restore of this size can finish between two refreshes of the page.
  await rename(nas, `${nas}.away`);
  await page.selectOption('#restore-target', 'usb');
  await page.click('#restore-start');
  await page.click('.confirm-yes');
  const seen: { state: string; percent: string }[] = [];
  const t0 = Date.now();
  let away = true;
  for (;;) {
    // Both read at once: the element is replaced at each refresh.
    const { state, percent } = await page.evaluate(() => {
      const el = document.querySelector('#restore-progress');
      return { state: el?.getAttribute('data-state') ?? '', percent: el?.getAttribute('data-percent') ?? '' };
    });
    const last = seen[seen.length - 1];
    if (!last || last.state !== state || last.percent !== percent) seen.push({ state, percent });
    if (state === 'done') break;
    if (away && state === 'retrying') {
      await rename(`${nas}.away`, nas);
      away = false;
    }
    if (state === 'running' && seen.filter((s) => s.state === 'running').length === 1) await shot(page, 'backup-restore-en');
    assert.ok(Date.now() - t0 < 90_000, `the restore did not finish on the page: ${JSON.stringify(seen)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(away, false, `the page showed the restore waiting for its target: ${JSON.stringify(seen)}`);
  const running = seen.filter((s) => s.state === 'running' || s.state === 'retrying');
  assert.ok(running.length >= 1, `the page showed the restore running: ${JSON.stringify(seen)}`);
  const percents = seen.filter((s) => s.percent !== '').map((s) => Number(s.percent));
  assert.deepEqual(percents, [...percents].sort((a, b) => a - b), `the percent only goes up: ${JSON.stringify(seen)}`);
  assert.equal(seen[seen.length - 1]!.percent, '100');
  assert.ok(Number(running[0]!.percent) < 100, `a running restore below 100%: ${JSON.stringify(seen)}`);
  assert.match((await page.textContent('#restore')) ?? '', /done/);
  // The page's timer stopped with the restore: no more status requests after it.
  const before = ui.requests.length;
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(ui.requests.length, before, 'no polling once the restore is done');
  assert.equal((await mailFiles()).length, MESSAGES, 'every message is back');
  console.log(`restore as the page saw it: ${JSON.stringify(seen)}`);
});

async function presentedFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: HOST, port: d.ports.admin, rejectUnauthorized: false, servername: 'box.example.test', ...({ localAddress: PROBE } as object) }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

test('Box: a new certificate uploaded on the page is presented by the next HTTPS connection; a key that does not fit is refused', { timeout: 60_000 }, async () => {
  const { page } = ui;
  const { generate } = await import('selfsigned');
  const mk = (cn: string) => generate([{ name: 'commonName', value: cn }], { keySize: 2048, algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: cn }] }] });
  const [fresh, other] = await Promise.all([mk('box.example.test'), mk('other.example.test')]);
  const want = new X509Certificate(fresh.cert).fingerprint256;
  const before = await presentedFingerprint();
  assert.notEqual(before, want);

  await goto(page, 'box');
  assert.equal((await page.textContent('#cert-fingerprint'))?.trim(), before, 'the page shows the certificate the box presents');
  // A key of another certificate: refused, the error on the page, nothing changed.
  await page.fill('#cert-pem', fresh.cert);
  await page.fill('#key-pem', other.private);
  await page.click('#cert-install');
  assert.match((await page.locator('#cert-result .msg.error').textContent()) ?? '', /does not belong to the certificate/);
  assert.equal(await presentedFingerprint(), before);

  await page.fill('#key-pem', fresh.private);
  await page.click('#cert-install');
  await page.waitForFunction((fp) => document.querySelector('#cert-fingerprint')?.textContent === fp, want, { timeout: 30_000 });
  assert.equal(await presentedFingerprint(), want, 'the next HTTPS connection presents the new certificate');
  assert.match((await page.textContent('#box-cert')) ?? '', /box\.example\.test/);

  // The audit trail: who, from where, what; the refused attempt too.
  await page.selectOption('#events-filter', 'audit');
  const trail = (await page.textContent('#box-events')) ?? '';
  assert.match(trail, /admin via web admin from 127\./);
  assert.match(trail, /tls install/);
  assert.match(trail, /refused: tls install: the private key does not belong/);
  await shot(page, 'box-en');

  // The switch re-renders the page: ready again only once the Chinese page has its data.
  await page.evaluate(() => delete document.body.dataset.ready);
  await page.selectOption('#lang', 'zh-TW');
  await page.waitForSelector('body[data-ready="box"]');
  assert.match((await page.textContent('#page-box')) ?? '', /憑證/);
  await shot(page, 'box-zh-TW');
  await goto(page, 'backup');
  assert.match((await page.textContent('#page-backup')) ?? '', /備份目的地/);
  await shot(page, 'backup-zh-TW');
  await page.selectOption('#lang', 'en');
});
