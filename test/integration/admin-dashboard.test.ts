// The Dashboard through the real daemon and Debian's Chromium: mail sent in over SMTP and
// delivered to a mailbox shows in the hourly chart; a threshold set low and reached shows
// under "near limits"; a change made over the API shows among the newest events, and an
// event carrying markup is shown as text; the page refreshes itself while shown and stops
// once left; screenshots in English and Traditional Chinese, on a desktop and a phone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { TestDaemon, eventually } from '../helpers/daemon.js';
import { sendOnce } from '../helpers/smtp-client.js';
import { launchChromium } from '../helpers/browser.js';
import { adminPassword, apiLogin, goto, openAdmin, shot, web } from '../helpers/admin-web.js';

const HOST = '127.0.156.1';
const SENDER = '127.0.156.20';
const API_CLIENT = '127.0.156.30';
const SENT = 3;
const HOSTILE = '<img src=x onerror=window.__pwned=1>';
let d: TestDaemon;
let browser: Browser;

interface Hour {
  start: string;
  in: number;
  outLocal: number;
}

async function stats(): Promise<{ hours: Hour[] }> {
  return JSON.parse((await d.cli(['mail', 'stats', '--json'])).stdout) as { hours: Hour[] };
}

/** The hourly chart's numbers, bucket by bucket, as the page drew them (data attributes on each bar pair). */
async function chartHours(page: Page): Promise<{ key: string; in: number; out: number; titles: string[] }[]> {
  return page.$$eval('[data-chart="hours"] g[data-key]', (gs) =>
    gs.map((g) => ({ key: g.getAttribute('data-key') ?? '', in: Number(g.getAttribute('data-in')), out: Number(g.getAttribute('data-out')), titles: [...g.querySelectorAll('rect > title')].map((t) => t.textContent ?? '') })),
  );
}

before(async () => {
  browser = await launchChromium();
  d = await TestDaemon.create({ host: HOST });
  await d.start();
  await d.addUser('bob@example.test', 'bob-password-1');
  // A threshold set low, through the web API (so the change is audited and becomes an event).
  const s = await apiLogin(d, API_CLIENT);
  const set = await web(d, '/api/run', { body: { argv: ['config', 'set', 'thresholds.perIpMessagesPerDay', String(SENT)] }, cookie: s.cookie, csrf: s.csrf, from: API_CLIENT });
  assert.equal(set.status, 200, set.body);
  // A refused change whose argv carries markup: its audit event's text holds that markup.
  const hostile = await web(d, '/api/run', { body: { argv: ['config', 'set', 'alerts.adminEmails', JSON.stringify([HOSTILE])] }, cookie: s.cookie, csrf: s.csrf, from: API_CLIENT });
  assert.equal(hostile.json().ok, false, hostile.body);
  // Mail in over SMTP, delivered to bob's mailbox; the last one reaches the day's limit exactly.
  for (let i = 0; i < SENT; i++) assert.match(await sendOnce(HOST, d.ports.mx, 'bob@example.test', `dash-${i}`, SENDER), /^250/);
  await eventually('the messages counted in and delivered', async () => {
    const h = (await stats()).hours;
    return h.reduce((a, r) => a + r.in, 0) >= SENT && h.reduce((a, r) => a + r.outLocal, 0) >= SENT;
  });
});

after(async () => {
  await browser?.close();
  await d?.cleanup();
});

test('the hourly chart shows the mail sent in and delivered; near limits shows the threshold reached; the newest events show the change', async () => {
  const ui = await openAdmin(d, { browser });
  try {
    const { page } = ui;
    await page.waitForSelector('body[data-ready="dashboard"]');
    // The chart's buckets are the box's hours, oldest first, the current one last.
    const box = (await stats()).hours;
    const drawn = await chartHours(page);
    assert.deepEqual(
      drawn.map((b) => b.key),
      box.map((r) => r.start),
    );
    const inTotal = drawn.reduce((a, b) => a + b.in, 0);
    const outTotal = drawn.reduce((a, b) => a + b.out, 0);
    assert.ok(inTotal >= SENT, `in: ${inTotal}`);
    assert.ok(outTotal >= SENT, `out: ${outTotal}`);
    // Each bar names its exact number in its <title> (the tooltip a mouse or a screen reader gets).
    const busiest = drawn.reduce((a, b) => (b.in > a.in ? b : a));
    assert.equal(busiest.titles.length, 2);
    assert.match(busiest.titles[0]!, new RegExp(`In: ${busiest.in}$`));
    assert.match(busiest.titles[1]!, new RegExp(`Out: ${busiest.out}$`));
    assert.equal(await page.getAttribute('[data-chart="hours"] svg', 'role'), 'img');
    assert.equal(await page.locator('[data-chart="days"] g[data-key]').count(), 30);
    const today = await page.$eval('[data-chart="days"] g[data-key]:last-of-type', (g) => Number(g.getAttribute('data-in')));
    assert.ok(today >= SENT, `today in: ${today}`);

    // The threshold reached: the sender's address, 3 of 3, marked reached.
    const near = (await page.textContent('#dash-near')) ?? '';
    assert.match(near, /Messages per address per day/);
    assert.match(near, new RegExp(`${SENDER.replace(/\./g, '\\.')}`));
    assert.match(near, new RegExp(`${SENT} / ${SENT}`));
    assert.match(near, /reached/);

    // The queue section: nothing deferred (every message went to a local mailbox).
    assert.match((await page.textContent('#dash-queue')) ?? '', /Recipients deferred\s*0/);
    assert.match((await page.textContent('#dash-ha')) ?? '', /HA is not enabled/);
    assert.match((await page.textContent('#dash-disk')) ?? '', /healthy/);

    // The newest events: the threshold change made over the API is there.
    const events = (await page.textContent('#dash-events')) ?? '';
    assert.match(events, /config set thresholds\.perIpMessagesPerDay 3/);
    // Markup from the box is text: shown literally, no element made of it, nothing ran.
    assert.ok(events.includes(HOSTILE), events);
    assert.equal(await page.locator('#page-dashboard img').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    for (const u of ui.requests) assert.ok(u.startsWith(d.adminUrl) || u.startsWith('data:'), `request left the box: ${u}`);
    await shot(page, 'dashboard-en');
    // The page's head names every module for preloading (fetched at once, not import by import).
    const index = (await web(d, '/', { from: API_CLIENT })).body;
    for (const m of ['app.js', 'pages.js', 'page-dashboard.js', 'chart.js']) assert.ok(index.includes(`<link rel="modulepreload" href="/static/${m}">`), `${m} not preloaded`);
  } finally {
    await ui.close();
  }
});

test('the dashboard in Traditional Chinese, on a desktop and on a phone', async () => {
  const ui = await openAdmin(d, { browser, locale: 'zh-TW' });
  try {
    const { page } = ui;
    await page.waitForSelector('body[data-ready="dashboard"]');
    const text = (await page.textContent('#page-dashboard')) ?? '';
    for (const s of ['郵件流量', '最近 24 小時', '佇列', '接近門檻', '已達上限', '高可用性', '磁碟', '備份', '還原', '黑名單', '最新事件', '每個位址每日郵件數']) assert.ok(text.includes(s), `missing ${s}`);
    for (const s of ['Mail traffic', 'Near limits', 'Newest events', 'Backup']) assert.ok(!text.includes(s), `untranslated: ${s}`);
    assert.match((await page.textContent('[data-chart="hours"] rect > title')) ?? '', /收信：|收信: /);
    await shot(page, 'dashboard-zh-TW');
    // A phone: the cards stack, nothing wider than the screen but the tables' own scrollers.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
    await shot(page, 'dashboard-zh-TW-phone');
    await page.selectOption('#lang', 'en');
    await page.locator('#dash-traffic h2', { hasText: 'Mail traffic' }).waitFor();
    await shot(page, 'dashboard-en-phone');
  } finally {
    await ui.close();
  }
});

test('the dashboard refreshes itself every 30 s while shown, and stops once another page is shown', async () => {
  // In Taipei (UTC+8, no summer time): the hours are drawn in the browser's own time.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'en-US', timezoneId: 'Asia/Taipei' });
  const page = await context.newPage();
  // The page's clock is the test's: 30 s pass when the test says so.
  await page.clock.install();
  const asks: string[] = [];
  page.on('request', (r) => {
    if (r.url().endsWith('/api/run')) asks.push(String((JSON.parse(r.postData() ?? '{}') as { argv?: string[] }).argv?.join(' ')));
  });
  try {
    await page.goto(`${d.adminUrl}/`);
    await page.fill('#password', await adminPassword(d));
    await page.click('#login');
    await page.waitForSelector('body[data-ready="dashboard"]');
    const drawn = await chartHours(page);
    const last = drawn[drawn.length - 1]!;
    const taipeiHour = String((new Date(last.key).getUTCHours() + 8) % 24).padStart(2, '0');
    assert.match(last.titles[0]!, new RegExp(`, ${taipeiHour}:00 · In: `), `${last.key} → ${last.titles[0]}`);
    const before = drawn.reduce((a, b) => a + b.in, 0);
    // One more message to another mailbox (the sender's address is at its day's limit: another address sends).
    assert.match(await sendOnce(HOST, d.ports.mx, 'bob@example.test', 'dash-refresh', '127.0.156.21'), /^250/);
    await eventually('the new message counted', async () => (await stats()).hours.reduce((a, r) => a + r.in, 0) > before);
    const statsAsked = () => asks.filter((a) => a === 'mail stats').length;
    assert.equal(statsAsked(), 1);
    await page.clock.runFor(30_000);
    await eventually('the chart redrawn with the new message', async () => (await chartHours(page)).reduce((a, b) => a + b.in, 0) > before);
    assert.equal(statsAsked(), 2);
    // Another page: the dashboard's timer ends; a minute later nothing asked for its data.
    await goto(page, 'policy');
    await page.clock.runFor(61_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(statsAsked(), 2);
  } finally {
    await context.close();
  }
});
