// The Scanning and Archive pages of the web admin in Debian's Chromium against the real daemon:
// a quarantined message released from the page and found in the recipient's Maildir; the
// archive searched in Chinese, a hit viewed and its .eml downloaded byte for byte as the CLI
// exports it; a hostile message (script, onerror, a remote image) shown inert until the admin
// asks for images; and the page's own download links, tampered, refused.
// Loopback 127.0.154.x: .1 mlsd, .2 an outside mail server, .3 the "remote" image host.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import nodemailer from 'nodemailer';
import type { Browser, Page } from 'playwright-core';
import { TestDaemon, CLI, eventually } from '../helpers/daemon.js';
import { launchChromium } from '../helpers/browser.js';
import { goto, openAdmin, shot, type AdminBrowser } from '../helpers/admin-web.js';

const HOST = '127.0.154.1';
const OUTSIDE = '127.0.154.2';
const IMAGE_HOST = '127.0.154.3';
const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const CRLF = (s: string) => s.replace(/\r?\n/g, '\r\n');
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

let d: TestDaemon;
let browser: Browser;
let imageServer: Server;
let imageOrigin = '';
/** What reached the "remote" host: every TCP connection and every HTTP request. */
const imageHits = { connections: 0, requests: [] as string[] };

interface QRecord {
  id: string;
  envelope: { subject?: string };
}

/** A raw message from an outside server to the MX, sent as it is. */
async function sendRaw(to: string, raw: string): Promise<string> {
  const t = nodemailer.createTransport({ host: HOST, port: d.ports.mx, secure: false, ignoreTLS: true, localAddress: OUTSIDE, name: 'outside.test' } as Parameters<typeof nodemailer.createTransport>[0]);
  try {
    const info = await t.sendMail({ envelope: { from: 'sender@outside.test', to: [to] }, raw: CRLF(raw) });
    const id = /queued as (\w+)/.exec(info.response)?.[1];
    assert.ok(id, info.response);
    return id;
  } finally {
    t.close();
  }
}

function plain(subject: string, body: string, n: number): string {
  return `From: Sender <sender@outside.test>
To: Bob <bob@example.test>
Subject: =?UTF-8?B?${b64(subject)}?=
Date: Fri, 04 Dec 2026 10:0${n}:00 +0800
Message-ID: <msg-${n}@outside.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

${b64(body)}
`;
}

const HOSTILE_SUBJECT = `<script>window.top.pwned='subject';document.title='pwned'</script><img src=x onerror="window.top.pwned='subject-onerror'">`;

/** Spam (GTUBE in the text part) whose HTML part and subject carry script, onerror and a remote image. */
function hostile(): string {
  const html = `<html><body onload="window.top.pwned='onload'">
<h1>Invoice</h1>
<script>window.top.pwned='script'; document.title='pwned'; alert('pwned'); console.log('pwned'); fetch('${imageOrigin}/fetch');</script>
<img src="x" onerror="window.top.pwned='onerror'; alert('pwned'); new Image().src='${imageOrigin}/onerror'">
<img src="${imageOrigin}/pixel.gif" alt="logo">
<a href="javascript:alert('pwned')">click</a>
</body></html>`;
  return `From: Mallory <mallory@outside.test>
To: Bob <bob@example.test>
Subject: ${HOSTILE_SUBJECT}
Date: Fri, 04 Dec 2026 11:00:00 +0800
Message-ID: <hostile-1@outside.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mix"

--mix
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

Cheap offer ${GTUBE}
--alt
Content-Type: text/html; charset=utf-8

${html}
--alt--
--mix
Content-Type: text/html; name="../../evil.html"
Content-Disposition: attachment; filename="../../evil.html"

<script>window.top.pwned='attachment'</script>
--mix--
`;
}

/** Exact bytes of `archive export` from the CLI. */
function exportBytes(id: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, '--config-dir', d.configDir, 'archive', 'export', id], { encoding: 'buffer', maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(stderr.toString())) : resolve(stdout),
    );
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function quarantine(): Promise<QRecord[]> {
  const r = await d.cli(['quarantine', 'list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as QRecord[];
}

async function archived(records: number): Promise<void> {
  await eventually(`the archive at ${records} records`, async () => {
    const r = await d.cli(['status', '--json']);
    const a = (JSON.parse(r.stdout) as { archive: { records: number; intake: number; indexedUpTo: number } }).archive;
    return a.intake === 0 && a.records >= records && a.indexedUpTo === a.records;
  }, 30_000);
}

const WEEKLY = 21;
let releaseId = '';
let hostileId = '';

before(async () => {
  imageServer = createServer((req, res) => {
    imageHits.requests.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'image/gif' }).end(Buffer.from('R0lGODlhAQABAAAAACw=', 'base64'));
  });
  imageServer.on('connection', () => imageHits.connections++);
  await new Promise<void>((r) => imageServer.listen(0, IMAGE_HOST, r));
  imageOrigin = `http://${IMAGE_HOST}:${(imageServer.address() as AddressInfo).port}`;

  d = await TestDaemon.create({ host: HOST, config: { scan: { inbound: { enabled: true, action: 'quarantine' } }, archive: { busyShare: 1 } } });
  await d.start();
  await d.addUser('bob@example.test', 'bob-password-1');
  browser = await launchChromium();

  releaseId = await sendRaw('bob@example.test', plain('請放行 release me', `A false positive. ${GTUBE}`, 1));
  hostileId = await sendRaw('bob@example.test', hostile());
  await sendRaw('bob@example.test', plain('季度報告 第三季', '請查收第三季的季度報告，謝謝。', 2));
  await sendRaw('bob@example.test', plain('會議記錄', '今天的會議記錄如附，下週再討論預算。', 3));
  await sendRaw('bob@example.test', plain('Quarterly report', 'The quarterly report for Q3 is attached.', 4));
  await sendRaw('bob@example.test', plain('Meeting notes', 'Notes from the budget meeting.', 5));
  // More weekly reports (週報) than one page of results holds (20).
  for (let i = 1; i <= WEEKLY; i++) await sendRaw('bob@example.test', plain(`週報 第${i}週`, `本週進度 ${i}`, 6));
  const q = await eventually('both spam messages quarantined', async () => {
    const list = await quarantine();
    return list.length === 2 ? list : undefined;
  });
  assert.deepEqual(q.map((r) => r.id).sort(), [releaseId, hostileId].sort());
  // The clean ones are archived; spam is not (the default rules).
  await archived(4 + WEEKLY);
});

after(async () => {
  await browser?.close();
  await d?.cleanup();
  imageServer?.close();
});

/** The row of the quarantine table holding message `id`. */
const qRow = (page: Page, id: string) => page.locator('#quarantine tr', { has: page.locator(`[data-id="${id}"]`) });

/** The sandboxed frame of the message view (with or without remote images, or either), once its document has loaded. */
async function bodyFrame(page: Page, images?: boolean) {
  const frame = await eventually('the message body frame', async () =>
    page.frames().find((f) => /\/api\/message\/.+\/body/.test(f.url()) && (images === undefined || f.url().includes('images=1') === images)),
  );
  await frame.waitForLoadState('load');
  return frame;
}

test('release a quarantined message from the Scanning page: it lands in the recipient’s Maildir; delete asks first', async () => {
  const ui = await openAdmin(d, { browser });
  try {
    await goto(ui.page, 'scanning');
    await shot(ui.page, 'scanning-en');
    const page = ui.page;
    assert.equal(await page.locator('#f-scan-inbound-action').inputValue(), 'quarantine');
    // Enum values carry translated names, not the raw config value.
    assert.match((await page.locator('#f-scan-virusAction option[value="reject"]').textContent()) ?? '', /Refuse/);
    assert.match((await qRow(page, releaseId).textContent()) ?? '', /請放行 release me/);
    const released = (m: string) => m.includes('<msg-1@outside.test>');
    assert.equal((await d.mailbox('bob')).filter(released).length, 0);

    // Delete has a confirm step: the first click deletes nothing, Cancel brings the button back.
    await qRow(page, releaseId).locator('button.delete').click();
    await qRow(page, releaseId).locator('button.cancel').click();
    assert.equal((await quarantine()).length, 2);

    await qRow(page, releaseId).locator('button.release').click();
    await page.locator('#quarantine .msg.ok').waitFor();
    assert.match((await page.locator('#quarantine .msg.ok').textContent()) ?? '', /bob@example\.test/);
    const delivered = await eventually('the released message in bob’s Maildir', async () => (await d.mailbox('bob')).find(released));
    assert.ok(delivered.includes(b64('請放行 release me')), 'the released message, whole');
    assert.equal(await qRow(page, releaseId).count(), 0);
    assert.deepEqual((await quarantine()).map((r) => r.id), [hostileId]);
  } finally {
    await ui.close();
  }
});

test('search the archive in Chinese: only the matching message is listed; its safe view; its .eml is the CLI export byte for byte', async () => {
  const ui = await openAdmin(d, { browser, locale: 'zh-TW' });
  try {
    const page = ui.page;
    await goto(page, 'archive');
    // The page opens on the newest mail: the four archived ones (and the released one, if the rules keep it).
    assert.ok((await page.locator('#archive-search tbody tr').count()) >= 4);
    await page.fill('#archive-query', '報告');
    await page.click('#archive-find');
    await page.locator('#archive-search tbody tr').first().waitFor();
    await eventually('one hit', async () => (await page.locator('#archive-search tbody tr').count()) === 1);
    const row = page.locator('#archive-search tbody tr');
    assert.match((await row.textContent()) ?? '', /季度報告 第三季/);
    assert.equal(await row.locator('td').nth(1).textContent(), '收到', 'the direction has its Chinese name');
    await shot(page, 'archive-zh-TW');

    // An English query finds the English one only; a word in no message finds nothing.
    await page.fill('#archive-query', 'meeting');
    await page.click('#archive-find');
    await eventually('the English hit', async () => ((await page.locator('#archive-search tbody').textContent()) ?? '').includes('Meeting notes'));
    assert.equal(await page.locator('#archive-search tbody tr').count(), 1);
    await page.fill('#archive-query', '不存在的詞');
    await page.click('#archive-find');
    await page.locator('#archive-search .empty').waitFor();

    await page.fill('#archive-query', '報告');
    await page.click('#archive-find');
    await eventually('the 報告 hit again', async () => ((await page.locator('#archive-search tbody').textContent()) ?? '').includes('季度報告'));
    const id = await row.locator('button.view').getAttribute('data-id');
    assert.ok(id);
    await row.locator('button.view').click();
    const view = page.locator('.message-view');
    await view.waitFor();
    assert.equal(await view.locator('.message-subject').textContent(), '季度報告 第三季');
    const frame = await bodyFrame(page, false);
    assert.match((await frame.textContent('body')) ?? '', /請查收第三季的季度報告/);
    await shot(page, 'message-view-zh-TW');

    const [download] = await Promise.all([page.waitForEvent('download'), view.locator('a.eml').click()]);
    assert.equal(download.suggestedFilename(), `${id}.eml`);
    const fromPage = await readFile((await download.path())!);
    const fromCli = await exportBytes(id);
    assert.ok(fromCli.length > 0);
    assert.equal(sha256(fromPage), sha256(fromCli));

    // Paging: 21 weekly reports are 20 on page 1 and 1 on page 2, and back.
    await page.locator('.message-view button.close-message').click();
    await page.fill('#archive-query', '週報');
    await page.click('#archive-find');
    await eventually('page 1 of 週報', async () => (await page.locator('#archive-search tbody tr').count()) === 20);
    assert.equal(await page.locator('#archive-search button.prev').count(), 0);
    await page.locator('#archive-search button.next').click();
    await eventually('page 2 of 週報', async () => (await page.locator('#archive-search tbody tr').count()) === 1);
    assert.match((await page.locator('#archive-search .page-no').textContent()) ?? '', /第 2 頁/);
    assert.equal(await page.locator('#archive-search button.next').count(), 0);
    const onPage2 = await page.locator('#archive-search tbody tr td:nth-child(5)').textContent();
    await page.locator('#archive-search button.prev').click();
    await eventually('back on page 1', async () => (await page.locator('#archive-search tbody tr').count()) === 20);
    const onPage1 = await page.locator('#archive-search tbody tr td:nth-child(5)').allTextContents();
    assert.ok(!onPage1.includes(onPage2 ?? ''), 'page 2 repeats a hit of page 1');
    assert.equal(new Set([...onPage1, onPage2]).size, WEEKLY);

    // Holds and verify, from the page.
    await page.fill('#hold-query', '報告');
    await page.locator('form.hold-add button[type=submit]').click();
    await page.locator('#archive-holds .msg.ok').waitFor();
    const holds = JSON.parse((await d.cli(['archive', 'hold', 'list', '--json'])).stdout) as { id: string; query: string }[];
    assert.deepEqual(holds.map((x) => x.query), ['報告']);
    await page.locator('#archive-holds button.lift').click();
    await page.locator('#archive-holds button.confirm-lift').click();
    await eventually('the hold lifted', async () => ((await page.locator('#archive-holds').textContent()) ?? '').includes('沒有法律保全'));
    assert.deepEqual(JSON.parse((await d.cli(['archive', 'hold', 'list', '--json'])).stdout), []);
    await page.click('#archive-verify');
    await page.locator('.verify-result .msg.ok').waitFor();
    assert.match((await page.locator('.verify-result').textContent()) ?? '', /沒有問題：\d+ 筆紀錄/);
    // No purge or delete of archived mail is offered anywhere on the page.
    for (const b of await page.locator('#page-archive button').allTextContents()) assert.doesNotMatch(b, /purge|delete|清除|刪除/i);
  } finally {
    await ui.close();
  }
});

test('a hostile message in the safe view is inert: no script, no dialog, the subject as text, no request off the box until remote images are asked for', async () => {
  const ui: AdminBrowser = await openAdmin(d, { browser });
  const dialogs: string[] = [];
  const consoleLines: string[] = [];
  ui.page.on('dialog', (dl) => {
    dialogs.push(dl.message());
    void dl.dismiss();
  });
  ui.page.on('console', (m) => consoleLines.push(m.text()));
  try {
    const page = ui.page;
    await goto(page, 'scanning');
    const titleBefore = await page.title();
    const seenBefore = ui.requests.length;
    // The hostile subject in the list is its characters, not markup.
    assert.equal(await qRow(page, hostileId).locator('.subject').textContent(), HOSTILE_SUBJECT);
    await qRow(page, hostileId).locator('button.view').click();
    const view = page.locator('.message-view');
    await view.waitFor();
    const frame = await bodyFrame(page);
    assert.match((await frame.textContent('body')) ?? '', /Invoice/);
    // The body has loaded and had every chance to run: nothing did.
    assert.equal(await view.locator('.message-subject').textContent(), HOSTILE_SUBJECT);
    assert.equal(await view.locator('.message-subject *').count(), 0, 'the subject made elements');
    assert.equal(await frame.locator('script').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { pwned?: string }).pwned), undefined);
    assert.equal(await page.title(), titleBefore);
    assert.equal(await frame.evaluate(() => document.title === 'pwned' || (window as unknown as { pwned?: string }).pwned !== undefined), false);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(consoleLines.filter((l) => /pwned/.test(l)), []);
    assert.equal(imageHits.connections, 0);
    assert.equal(imageHits.requests.length, 0);
    for (const u of ui.requests.slice(seenBefore)) assert.ok(u.startsWith(d.adminUrl), `a request left the box: ${u}`);
    // The attachment is a link to download, with a safe name, never a frame or an image.
    const att = view.locator('a.attachment');
    assert.equal(await att.count(), 1);
    assert.doesNotMatch((await att.textContent()) ?? '', /[/\\]|^\./);
    assert.match((await att.getAttribute('href')) ?? '', /\/part\/0$/);
    assert.equal(await view.locator('iframe').count(), 1);
    assert.match((await view.locator('.images-status').textContent()) ?? '', /Remote images blocked: 1/);
    await shot(page, 'message-view-en');

    // Asked for, the remote image loads: the counting host sees it (the harness can see a leak).
    await view.locator('button.load-images').click();
    const withImages = await bodyFrame(page, true);
    await eventually('the remote image requested', async () => imageHits.requests.includes('/pixel.gif'));
    // Still no script, even with images on.
    assert.equal(await page.evaluate(() => (window as unknown as { pwned?: string }).pwned), undefined);
    assert.equal(await withImages.locator('script').count(), 0);
    assert.deepEqual(imageHits.requests.filter((u) => u !== '/pixel.gif'), [], 'only the image was fetched, no script fetch or onerror beacon');
    assert.deepEqual(dialogs, []);
  } finally {
    await ui.close();
  }
});

test('the page’s own download links, tampered (.. in the id, parts out of range), are refused; a hostile attachment name is made safe', async () => {
  const ui = await openAdmin(d, { browser });
  try {
    const page = ui.page;
    await goto(page, 'scanning');
    await qRow(page, hostileId).locator('button.view').click();
    const view = page.locator('.message-view');
    await view.waitFor();
    const eml = (await view.locator('a.eml').getAttribute('href'))!;
    const part = (await view.locator('a.attachment').getAttribute('href'))!;
    assert.equal(eml, `/api/message/quarantine/${hostileId}/eml`);

    const [dl] = await Promise.all([page.waitForEvent('download'), view.locator('a.attachment').click()]);
    assert.doesNotMatch(dl.suggestedFilename(), /\/|\\|^\./);
    assert.match(dl.suggestedFilename(), /evil\.html$/);

    const tampered = [
      eml.replace(hostileId, `..%2F..%2F..%2Fetc%2Fpasswd`),
      eml.replace(hostileId, `${hostileId}%2F..%2F..%2Fconfig.json`),
      eml.replace(hostileId, '..'),
      eml.replace(`/${hostileId}/`, `/${hostileId}/../../../etc/passwd/`),
      eml.replace('/quarantine/', '/..%2Fquarantine/'),
      eml.replace('/quarantine/', '/archive/'),
      part.replace(/\/part\/0$/, '/part/1'),
      part.replace(/\/part\/0$/, '/part/99999'),
      part.replace(/\/part\/0$/, '/part/-1'),
      part.replace(/\/part\/0$/, '/part/0x0'),
      part.replace(/\/part\/0$/, '/part/..%2F..%2Feml'),
      part.replace(/\/part\/0$/, '/part/9999999999999999999999'),
    ];
    const answers = await page.evaluate(async (urls) => {
      const out: { url: string; status: number; body: string }[] = [];
      for (const url of urls) {
        const r = await fetch(url, { credentials: 'same-origin' });
        out.push({ url, status: r.status, body: (await r.text()).slice(0, 2000) });
      }
      return out;
    }, tampered);
    for (const a of answers) {
      assert.ok([400, 404].includes(a.status), `${a.url}: ${a.status}`);
      assert.doesNotMatch(a.body, /root:x:0|"hostname"|GTUBE|Invoice/, `${a.url} leaked`);
    }
    // The untampered links still work: the refusals above were the tampering's.
    const ok = await page.evaluate(async (urls) => Promise.all(urls.map(async (u) => (await fetch(u)).status)), [eml, part]);
    assert.deepEqual(ok, [200, 200]);

    // Delete, confirmed: gone from the page and from the box.
    // The open message view below pushed the row out of sight: brought back before the click.
    await qRow(page, hostileId).scrollIntoViewIfNeeded();
    await qRow(page, hostileId).locator('button.delete').click();
    await qRow(page, hostileId).locator('button.confirm-delete').click();
    // The list is drawn again after the delete: its empty state is this delete's answer.
    await page.locator('#quarantine .empty').waitFor();
    await page.locator('#quarantine .msg.ok').waitFor();
    assert.equal(await page.locator('.message-view').count(), 0, 'the view of a deleted message stays open');
    assert.deepEqual(await quarantine(), []);
  } finally {
    await ui.close();
  }
});

test('screenshots: both pages and the message view in en and zh-TW', async () => {
  for (const locale of ['en-US', 'zh-TW']) {
    const name = locale === 'zh-TW' ? 'zh-TW' : 'en';
    const ui = await openAdmin(d, { browser, locale });
    try {
      await goto(ui.page, 'scanning');
      assert.match((await ui.page.textContent('#page-scanning')) ?? '', name === 'en' ? /Scan engines/ : /掃描引擎/);
      if (name === 'zh-TW') {
        assert.match((await ui.page.locator('#f-scan-virusAction option[value="reject"]').textContent()) ?? '', /拒收/);
        await shot(ui.page, 'scanning-zh-TW');
      }
      await goto(ui.page, 'archive');
      assert.match((await ui.page.textContent('#page-archive')) ?? '', name === 'en' ? /Legal holds/ : /法律保全/);
      if (name === 'en') {
        await ui.page.locator('#archive-search tbody tr button.view').first().click();
        await bodyFrame(ui.page, false);
        await shot(ui.page, 'archive-en');
      }
    } finally {
      await ui.close();
    }
  }
});
