/**
 * Web admin speed bench: the Dashboard's weight and time to interactive on the sim board.
 *
 * mlsd runs as the box runs it (the unit's node flags, temp dirs) with the web admin on
 * loopback; some mail goes in over SMTP first so the charts have something to draw. Debian's
 * Chromium (playwright-core) then loads the dashboard RUNS times with an empty cache (a fresh
 * browser context each time, the session cookie already set, as after a login) and RUNS times
 * with a warm cache (the same context reloaded: the files answer 304). For each load:
 *   bytes     the sum of every response's encoded (on-the-wire) size, from the DevTools
 *             protocol's Network.loadingFinished encodedDataLength (headers included)
 *   requests  how many requests the load made
 *   TTI       navigation start -> body[data-ready="dashboard"] (the page has its data on screen
 *             and answers clicks), taken in the page by a MutationObserver, no polling delay
 * and the daemon's RSS before and after all loads.
 *
 *   node dist/test/bench/admin-page.js
 *   BENCH_RUNS=20       loads of each kind
 *   BENCH_MESSAGES=30   messages sent in before the loads
 *
 * No reference beside it: a web page has no Postfix equivalent (Postfix has no web admin), so
 * the figures are printed against the targets (300 KB transferred, interactive in 1 s).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { freePort, runCli } from '../helpers/daemon.js';
import { sendOnce } from '../helpers/smtp-client.js';
import { launchChromium } from '../helpers/browser.js';
import { startMlsd } from './lib.js';

const HOST = '127.0.156.50';
const SENDER = '127.0.156.51';
const API_CLIENT = '127.0.156.52';
const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? '20'));
const MESSAGES = Math.max(1, Number(process.env.BENCH_MESSAGES ?? '30'));
const TARGET_BYTES = 300 * 1024;
const TARGET_MS = 1000;
const USER = 'u@bench.test';

interface Load {
  bytes: number;
  requests: number;
  ttiMs: number;
  /** Where the time went (ms from navigation start): the page, its last script, its last API answer. */
  docMs: number;
  scriptsMs: number;
  dataMs: number;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

async function rssKiB(pid: number): Promise<number> {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** A session as the login gives it (the cookie only: the page asks /api/session for its CSRF token). */
async function login(adminUrl: string, password: string): Promise<string> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const u = new URL('/api/login', adminUrl);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json' }, rejectUnauthorized: false, localAddress: API_CLIENT }, (res) => {
      res.resume();
      const m = ([] as string[]).concat(res.headers['set-cookie'] ?? []).map((c) => /^mlsd_session=([^;]*)/.exec(c)).find(Boolean);
      if (res.statusCode !== 200 || !m) reject(new Error(`login failed: HTTP ${res.statusCode}`));
      else resolve(m[1]!);
    });
    req.on('error', reject);
    req.end(JSON.stringify({ user: 'admin', password }));
  });
}

/** Records in the page when body[data-ready] first says "dashboard" (ms since navigation start). */
const READY_PROBE = `
  new MutationObserver((_, obs) => {
    if (document.body && document.body.dataset.ready === 'dashboard') { window.__readyAt = performance.now(); obs.disconnect(); }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-ready'] });
`;

async function instrument(context: BrowserContext, page: Page): Promise<() => { bytes: number; requests: number }> {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  let bytes = 0;
  let requests = 0;
  cdp.on('Network.requestWillBeSent', () => requests++);
  cdp.on('Network.loadingFinished', (e: { encodedDataLength: number }) => (bytes += e.encodedDataLength));
  return () => {
    const r = { bytes, requests };
    bytes = 0;
    requests = 0;
    return r;
  };
}

async function loadOnce(page: Page, url: string, take: () => { bytes: number; requests: number }, reload: boolean): Promise<Load> {
  take();
  if (reload) await page.reload({ waitUntil: 'commit' });
  else await page.goto(url, { waitUntil: 'commit' });
  await page.waitForFunction(() => (window as unknown as { __readyAt?: number }).__readyAt !== undefined, null, { timeout: 30_000 });
  const t = await page.evaluate(() => {
    const res = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
    const last = (re: RegExp) => Math.max(0, ...res.filter((r) => re.test(r.name)).map((r) => r.responseEnd));
    performance.clearResourceTimings();
    return { ttiMs: (window as unknown as { __readyAt: number }).__readyAt, docMs: (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).responseEnd, scriptsMs: last(/\.js$/), dataMs: last(/\/api\/run$/) };
  });
  // Whatever the load started has finished by now (the three API answers are on screen).
  await page.waitForLoadState('networkidle');
  return { ...t, ...take() };
}

function report(label: string, loads: Load[]): { bytes: number; p95: number } {
  const bytes = loads.map((l) => l.bytes);
  const tti = loads.map((l) => l.ttiMs);
  const ms = (k: 'docMs' | 'scriptsMs' | 'dataMs') => `${pct(loads.map((l) => l[k]), 50).toFixed(0).padStart(7)} ms`;
  const row = [label.padEnd(12), `${(pct(bytes, 50) / 1024).toFixed(1).padStart(8)} KB`, String(pct(loads.map((l) => l.requests), 50)).padStart(9), `${pct(tti, 50).toFixed(0).padStart(7)} ms`, `${pct(tti, 95).toFixed(0).padStart(7)} ms`, `${(Math.max(...bytes) / 1024).toFixed(1).padStart(8)} KB`, ms('docMs'), ms('scriptsMs'), ms('dataMs')];
  console.log(row.join('  '));
  return { bytes: Math.max(...bytes), p95: pct(tti, 95) };
}

async function main(): Promise<void> {
  const mx = await freePort(HOST);
  const admin = await freePort(HOST);
  const mlsd = await startMlsd(
    {
      hostname: 'mx.bench.test',
      domains: ['bench.test'],
      smtp: { listeners: [{ name: 'mx', host: HOST, port: mx, starttls: true, greetingDelayMs: 0 }] },
      admin: { listen: `${HOST}:${admin}` },
      spool: { minFreeBytes: 0 },
      routing: { sourceAddress: HOST },
      dns: { servers: ['127.0.0.1:9'], timeoutSeconds: 1 },
    },
    [USER],
  );
  const browser = await launchChromium();
  try {
    const adminUrl = `https://${HOST}:${admin}`;
    for (let i = 0; i < MESSAGES; i++) {
      const r = await sendOnce(HOST, mx, USER, `bench ${i}`, SENDER);
      if (!r.startsWith('250')) throw new Error(`message ${i} refused: ${r}`);
    }
    // Wait until the stats count them, so the charts draw real bars.
    for (let i = 0; ; i++) {
      const s = JSON.parse((await runCli(['mail', 'stats', '--json', '--config-dir', mlsd.configDir])).stdout) as { hours: { in: number }[] };
      if (s.hours.reduce((a, h) => a + h.in, 0) >= MESSAGES) break;
      if (i > 100) throw new Error('the messages never showed in mail stats');
      await new Promise((r) => setTimeout(r, 100));
    }
    const password = (await readFile(join(mlsd.configDir, 'initial-admin-password'), 'utf8')).trim();
    const url = `${adminUrl}/#/dashboard`;
    const rssBefore = await rssKiB(mlsd.pid);

    // One unmeasured load first: Chromium's own start-up and the daemon's first JIT.
    const cold: Load[] = [];
    const warm: Load[] = [];
    for (let i = 0; i <= RUNS; i++) {
      const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'en-US' });
      await context.addCookies([{ name: 'mlsd_session', value: await login(adminUrl, password), url: adminUrl, secure: true, httpOnly: true, sameSite: 'Strict' }]);
      await context.addInitScript(READY_PROBE);
      const page = await context.newPage();
      const take = await instrument(context, page);
      const c = await loadOnce(page, url, take, false);
      const w = await loadOnce(page, url, take, true);
      if (i > 0) {
        cold.push(c);
        warm.push(w);
      }
      await context.close();
    }
    const rssAfter = await rssKiB(mlsd.pid);

    console.log(`\nWeb admin dashboard on the sim board (${RUNS} loads each, ${MESSAGES} messages in the stats; Chromium ${browser.version()})`);
    console.log(['load'.padEnd(12), 'bytes p50'.padStart(11), 'requests'.padStart(9), 'TTI p50'.padStart(10), 'TTI p95'.padStart(10), 'bytes max'.padStart(11), 'page p50'.padStart(10), 'scripts'.padStart(10), 'data'.padStart(10)].join('  '));
    const c = report('cold cache', cold);
    const w = report('warm cache', warm);
    console.log(`\ndaemon RSS: ${(rssBefore / 1024).toFixed(1)} MB before the loads, ${(rssAfter / 1024).toFixed(1)} MB after`);
    console.log('No reference run beside it: a web page has no Postfix equivalent. Against the targets (issue 16):');
    const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
    console.log(`  transferred, cold cache, worst load: ${(c.bytes / 1024).toFixed(1)} KB of 300 KB: ${verdict(c.bytes <= TARGET_BYTES)}`);
    console.log(`  time to interactive, p95: cold ${c.p95.toFixed(0)} ms, warm ${w.p95.toFixed(0)} ms, of 1000 ms: ${verdict(c.p95 <= TARGET_MS && w.p95 <= TARGET_MS)}`);
  } finally {
    await browser.close();
    await mlsd.stop();
  }
}

await main();
