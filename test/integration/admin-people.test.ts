// The People and Outbound pages of the web admin in Debian's Chromium against the real daemon:
// a user added on the page logs in over SMTP submission (swaks), a password changed there is the
// one that works, a suspension refuses AUTH and shows its evidence (a manual one and one a
// threshold tripped), an alias added there delivers to its member's Maildir, hostile names are
// refused by the box with the error on the page and nothing rendered as HTML; on Outbound a
// deferred remote message is listed with its error and deleted after a confirm; the DKIM record
// to publish is shown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { TestDaemon, eventually, swaks } from '../helpers/daemon.js';
import { sendOnce } from '../helpers/smtp-client.js';
import { goto, openAdmin, shot, type AdminBrowser } from '../helpers/admin-web.js';
import { launchChromium } from '../helpers/browser.js';

const HOST = '127.0.153.1';
/** Each AUTH check from its own address: failed AUTHs lock an address (auth.lockout). */
let nextClient = 20;
const client = () => `127.0.153.${nextClient++}`;

let d: TestDaemon;
let browser: Browser;
let ui: AdminBrowser;
let page: Page;

before(async () => {
  // A login may send one message a day: the second attempt suspends it (evidence from a real threshold).
  d = await TestDaemon.create({ host: HOST, config: { thresholds: { perAccountMessagesPerDay: 1 }, auth: { suspendOnThreshold: true, suspendAtMultiple: 1 } } });
  await d.start();
  await d.addUser('bob@example.test', 'bob-password-1');
  await d.addUser('dave@example.test', 'dave-password-1');
  browser = await launchChromium();
  ui = await openAdmin(d, { browser });
  page = ui.page;
});

after(async () => {
  await ui?.close();
  await browser?.close();
  await d?.cleanup();
});

/** AUTH PLAIN over submission with STARTTLS, as a mail client does; true when 235. */
async function authOk(user: string, password: string): Promise<boolean> {
  const r = await swaks(['--server', `${HOST}:${d.ports.submission}`, '--local-interface', client(), '--tls', '--auth', 'PLAIN', '--auth-user', user, '--auth-password', password, '--quit-after', 'AUTH']);
  if (/<~\s+235 /.test(r.out)) return true;
  assert.match(r.out, /<~\*?\s+535 /, `neither 235 nor 535:\n${r.out}`);
  return false;
}

const users = async () => JSON.parse((await d.cli(['user', 'list', '--json'])).stdout) as { address: string; suspended: { reason: string; evidence?: Record<string, unknown> } | null }[];
const queue = async () => JSON.parse((await d.cli(['queue', 'list', '--json'])).stdout) as { id: string; from: string; recipients: { address: string; state: string; lastReply: string | null }[] }[];
/** Shows the page again from the box (after a change made outside it). */
async function reopen(id: string): Promise<void> {
  await page.evaluate(() => delete document.body.dataset.ready);
  await page.reload();
  await page.waitForSelector(`body[data-ready="${id}"]`);
}

/** Switches the language and waits until the page is drawn again in it. */
async function switchLang(lang: string, id: string): Promise<void> {
  await page.evaluate(() => delete document.body.dataset.ready);
  await page.selectOption('#lang', lang);
  await page.waitForSelector(`body[data-ready="${id}"]`);
}

const userRow = (address: string) => page.locator(`#users-list tr[data-address="${address}"]`);
const usersMsg = (kind: 'ok' | 'error') => page.locator(`#users-status .msg.${kind}`);

test('People: a user added on the page logs in over SMTP submission; a wrong password does not', async () => {
  await goto(page, 'people');
  await page.fill('#user-address', 'carol@example.test');
  await page.fill('#user-password', 'carol-password-1');
  await page.click('#user-add');
  await usersMsg('ok').waitFor();
  await userRow('carol@example.test').waitFor();
  assert.ok((await users()).some((u) => u.address === 'carol@example.test'));
  // The password field is emptied, and the password never went into an argv the audit trail keeps.
  assert.equal(await page.inputValue('#user-password'), '');
  const trail = JSON.parse((await d.cli(['events', 'list', '--json'])).stdout) as { kind: string; text: string }[];
  assert.ok(trail.some((e) => e.kind === 'admin.change' && /user add/.test(e.text)));
  assert.ok(!trail.some((e) => e.text.includes('carol-password-1')), 'the password is in the event log');
  assert.equal(await authOk('carol@example.test', 'carol-password-1'), true);
  assert.equal(await authOk('carol@example.test', 'not-her-password'), false);
  // A short password is refused by the box, its reason on the page.
  await page.fill('#user-address', 'erin@example.test');
  await page.fill('#user-password', 'short');
  await page.click('#user-add');
  assert.match((await usersMsg('error').textContent()) ?? '', /at least 8 characters/);
  assert.ok(!(await users()).some((u) => u.address === 'erin@example.test'));
});

test('People: a password changed on the page is the one that works', async () => {
  await userRow('carol@example.test').locator('button[data-action=passwd]').click();
  await page.fill('#passwd-input', 'carol-password-2');
  await page.locator('#passwd-form button[type=submit]').click();
  await usersMsg('ok').filter({ hasText: 'carol@example.test' }).waitFor();
  assert.equal(await authOk('carol@example.test', 'carol-password-2'), true);
  assert.equal(await authOk('carol@example.test', 'carol-password-1'), false);
});

test('People: suspend on the page refuses AUTH and shows why and since when; unlock lets it in again', async () => {
  await userRow('carol@example.test').locator('button[data-action=suspend]').click();
  await page.fill('#suspend-reason', 'password seen on a phishing site');
  await page.locator('#suspend-form button[type=submit]').click();
  await userRow('carol@example.test').locator('.badge.bad').waitFor();
  assert.equal(await authOk('carol@example.test', 'carol-password-2'), false);
  const evidence = (await userRow('carol@example.test').locator('.evidence').textContent()) ?? '';
  assert.match(evidence, /password seen on a phishing site/);
  assert.match(evidence, /Suspended by\s*the administrator/);
  assert.match(evidence, /Since\s*\d/);

  // A suspension a threshold tripped: dave's second message of the day (the limit is 1).
  const send = (subject: string) =>
    swaks(['--server', `${HOST}:${d.ports.submission}`, '--local-interface', client(), '--tls', '--auth', 'PLAIN', '--auth-user', 'dave@example.test', '--auth-password', 'dave-password-1', '--from', 'dave@example.test', '--to', 'bob@example.test', '--h-Subject', subject]);
  assert.equal((await send('first of the day')).code, 0);
  await send('second of the day');
  await eventually('dave suspended', async () => (await users()).find((u) => u.address === 'dave@example.test' && u.suspended));
  await reopen('people');
  const dave = (await userRow('dave@example.test').locator('.evidence').textContent()) ?? '';
  assert.match(dave, /Messages per login per day \(thresholds\.perAccountMessagesPerDay\)/);
  assert.match(dave, /Limit\s*1/);
  assert.match(dave, /Client addresses\s*127\.0\.153\.\d+/);
  assert.match(dave, /first of the day/);
  await shot(page, 'people-en');

  await userRow('carol@example.test').locator('button[data-action=unlock]').click();
  await userRow('carol@example.test').locator('.badge.ok').waitFor();
  assert.match((await usersMsg('ok').textContent()) ?? '', /carol@example\.test may send again/);
  assert.equal((await users()).find((u) => u.address === 'carol@example.test')?.suspended, null);
  assert.equal(await authOk('carol@example.test', 'carol-password-2'), true);
});

test('People: an alias added on the page delivers to its member’s Maildir; deleted after a confirm', async () => {
  await page.fill('#alias-address', 'team@example.test');
  await page.fill('#alias-to', 'carol@example.test');
  await page.fill('#alias-senders', 'carol@example.test');
  await page.click('#alias-add');
  await page.locator('#aliases-list tr[data-address="team@example.test"]').waitFor();
  assert.match((await page.locator('#aliases-list tr[data-address="team@example.test"]').textContent()) ?? '', /carol@example\.test/);
  assert.match(await sendOnce(HOST, d.ports.mx, 'team@example.test', 'to the team', client()), /^250/);
  const mail = await eventually('the alias mail in carol’s Maildir', async () => (await d.mailbox('carol')).find((m) => m.includes('Subject: to the team')));
  assert.ok(mail);

  await page.locator('#aliases-list tr[data-address="team@example.test"] button[data-action=delete]').click();
  await page.locator('#alias-panel .confirm-no').click();
  assert.equal(await page.locator('#alias-panel .confirm').count(), 0);
  assert.match((await d.cli(['alias', 'list'])).stdout, /team@example\.test/);
  await page.locator('#aliases-list tr[data-address="team@example.test"] button[data-action=delete]').click();
  assert.match((await page.locator('#alias-panel .confirm').textContent()) ?? '', /team@example\.test/);
  await page.locator('#alias-panel .confirm-yes').click();
  await page.locator('#aliases-list tr[data-address="team@example.test"]').waitFor({ state: 'detached' });
  assert.doesNotMatch((await d.cli(['alias', 'list'])).stdout, /team@example\.test/);
});

test('People: hostile user and alias names are refused by the box, the error is on the page, nothing is rendered as HTML', async () => {
  const before = (await users()).length;
  const hostile = ['<script>window.__pwned=1</script>@example.test', '<img src=x onerror="window.__pwned=1">@example.test', '../../etc@example.test', 'a b@example.test', 'x@..', 'ok@not-ours.test'];
  for (const name of hostile) {
    await page.fill('#user-address', name);
    await page.fill('#user-password', 'hostile-password-1');
    // The last name's refusal goes first, so the one read below is this name's.
    await page.evaluate(() => document.querySelector('#users-status')?.replaceChildren());
    await page.click('#user-add');
    const err = usersMsg('error');
    await err.waitFor();
    const text = (await err.textContent()) ?? '';
    assert.match(text, /not a valid address|not a local domain|invalid|domain/i, `${name}: ${text}`);
    // The box's error quotes the name: it is on the page as text, not as markup.
    if (name.startsWith('<')) assert.ok(text.includes(name.slice(0, 8)), `${name}: ${text}`);
  }
  for (const [alias, to] of [
    ['<svg onload="window.__pwned=1">@example.test', 'carol@example.test'],
    ['crew@example.test', '<b onclick=x>@example.test'],
    ['crew@example.test', '../carol@example.test'],
    ['crew mates@example.test', 'carol@example.test'],
  ] as const) {
    await page.fill('#alias-address', alias);
    await page.fill('#alias-to', to);
    await page.evaluate(() => document.querySelector('#aliases-status')?.replaceChildren());
    await page.click('#alias-add');
    const text = (await page.locator('#aliases-status .msg.error').textContent()) ?? '';
    assert.match(text, /not a valid address/, `${alias} -> ${to}: ${text}`);
  }
  assert.equal((await users()).length, before);
  assert.doesNotMatch((await d.cli(['alias', 'list'])).stdout, /crew|svg/);
  // A name the box accepts with characters HTML cares about is shown exactly as text.
  const odd = "o'brien&{x}=y@example.test";
  await page.fill('#user-address', odd);
  await page.fill('#user-password', 'odd-password-1');
  await page.click('#user-add');
  await userRow(odd).waitFor();
  assert.equal(await userRow(odd).locator('.address').textContent(), odd);
  // No element came from a name, and no payload ran.
  assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned ?? 0), 0);
  assert.equal(await page.locator('#page-people script, #page-people img, #page-people svg, #page-people b').count(), 0);

  // Delete asks first; Cancel keeps the user.
  await userRow(odd).locator('button[data-action=delete]').click();
  assert.match((await page.locator('#user-panel .confirm').textContent()) ?? '', /o'brien&\{x\}=y@example\.test/);
  await page.locator('#user-panel .confirm-yes').click();
  await userRow(odd).waitFor({ state: 'detached' });
  assert.ok(!(await users()).some((u) => u.address === odd));

  await switchLang('zh-TW', 'people');
  assert.match((await page.textContent('#page-people')) ?? '', /本地郵件網域/);
  assert.match((await page.textContent('#page-people')) ?? '', /停用原因/);
  await shot(page, 'people-zh-TW');
  await switchLang('en', 'people');
});

test('Outbound: a deferred remote message is listed with its error and deleted from the page after a confirm; the DKIM record is shown', async () => {
  // bob's one message of the day goes to a remote domain; DNS goes to a closed port, so it defers.
  const sent = await swaks(['--server', `${HOST}:${d.ports.submission}`, '--local-interface', client(), '--tls', '--auth', 'PLAIN', '--auth-user', 'bob@example.test', '--auth-password', 'bob-password-1', '--from', 'bob@example.test', '--to', 'friend@remote.test', '--h-Subject', 'to a remote friend']);
  assert.equal(sent.code, 0, sent.out);
  const entry = await eventually('the deferred message', async () => (await queue()).find((e) => e.recipients.some((r) => r.address === 'friend@remote.test' && r.state === 'deferred')));

  await goto(page, 'outbound');
  const row = page.locator(`#queue-list tr[data-id="${entry.id}"]`);
  await row.waitFor();
  assert.equal(await row.evaluate((tr) => tr.classList.contains('deferred')), true);
  assert.match((await row.locator('.badge.warn').textContent()) ?? '', /deferred/);
  const lastReply = entry.recipients.find((r) => r.address === 'friend@remote.test')!.lastReply!;
  assert.ok(lastReply);
  assert.match((await row.locator('.last-reply').textContent()) ?? '', new RegExp(lastReply.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  assert.match((await page.textContent('#queue-counts')) ?? '', /1 message\(s\).*1 deferred/);

  // The DKIM record to publish, as `dkim show` gives it.
  const dkim = JSON.parse((await d.cli(['dkim', 'show', 'example.test', '--json'])).stdout) as { name: string; value: string };
  const rec = page.locator('.dkim-record[data-domain="example.test"]');
  assert.match((await rec.textContent()) ?? '', /v=DKIM1/);
  assert.ok(((await rec.textContent()) ?? '').includes(dkim.name));
  // The smarthost budget's use is on the page.
  assert.match((await page.textContent('#budget-use')) ?? '', /Sent today/);
  await shot(page, 'outbound-en');

  // Retry answers; delete asks first and then drops it.
  await row.locator('button[data-action=retry]').click();
  await page.locator('#queue-status .msg.ok').waitFor();
  await page.locator(`#queue-list tr[data-id="${entry.id}"] button[data-action=delete]`).click();
  assert.match((await page.locator('#queue-panel .confirm').textContent()) ?? '', /friend@remote\.test/);
  await page.locator('#queue-panel .confirm-yes').click();
  await page.locator(`#queue-list tr[data-id="${entry.id}"]`).waitFor({ state: 'detached' });
  assert.ok(!(await queue()).some((e) => e.id === entry.id));
  assert.match((await page.textContent('#queue-list')) ?? '', /The queue is empty/);
  // Deleting it again (a stale page) is refused by the box.
  assert.notEqual((await d.cli(['queue', 'delete', entry.id])).code, 0);
  await switchLang('zh-TW', 'outbound');
  assert.match((await page.textContent('#page-outbound')) ?? '', /佇列是空的/);
  assert.match((await page.textContent('#page-outbound')) ?? '', /DKIM 金鑰/);
  await shot(page, 'outbound-zh-TW');
});
