// The web admin from a test: HTTPS requests from a chosen loopback address, and a logged-in
// Chromium page in a chosen language.
import { request } from 'node:https';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { artifactDir, launchChromium } from './browser.js';
import type { TestDaemon } from './daemon.js';

export interface WebReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json(): any;
  /** The session cookie the reply set, if any. */
  cookie: string | null;
}

/** One HTTPS request to the daemon's web admin (its self-signed certificate accepted). */
export function web(
  d: TestDaemon,
  path: string,
  o: { method?: string; body?: unknown; rawBody?: string; contentType?: string; cookie?: string; csrf?: string; from?: string; headers?: Record<string, string> } = {},
): Promise<WebReply> {
  return new Promise((resolve, reject) => {
    const payload = o.rawBody ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
    const headers: Record<string, string> = { ...o.headers };
    if (payload !== undefined) headers['content-type'] = o.contentType ?? 'application/json';
    if (o.cookie) headers.cookie = `mlsd_session=${o.cookie}`;
    if (o.csrf) headers['x-csrf-token'] = o.csrf;
    const req = request(
      { host: d.host, port: d.ports.admin, path, method: o.method ?? (payload === undefined ? 'GET' : 'POST'), headers, rejectUnauthorized: false, localAddress: o.from },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const set = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
          const m = set.map((c) => /^mlsd_session=([^;]*)/.exec(c)).find(Boolean);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body), cookie: m ? m[1]! : null });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export async function adminPassword(d: TestDaemon): Promise<string> {
  return (await readFile(join(d.configDir, 'initial-admin-password'), 'utf8')).trim();
}

/** Logs in over the API: the session cookie and its CSRF token. */
export async function apiLogin(d: TestDaemon, from?: string): Promise<{ cookie: string; csrf: string }> {
  const r = await web(d, '/api/login', { body: { user: 'admin', password: await adminPassword(d) }, from });
  if (r.status !== 200 || !r.cookie) throw new Error(`login failed: ${r.status} ${r.body}`);
  return { cookie: r.cookie, csrf: r.json().csrf as string };
}

export interface AdminBrowser {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Requests the page made, by URL (to prove none left the box). */
  requests: string[];
  close(): Promise<void>;
}

/** A Chromium page on the web admin, in `locale` (its Accept-Language), logged in unless `login: false`. */
export async function openAdmin(d: TestDaemon, o: { locale?: string; login?: boolean; browser?: Browser } = {}): Promise<AdminBrowser> {
  const browser = o.browser ?? (await launchChromium());
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: o.locale ?? 'en-US', viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`${d.adminUrl}/`);
  if (o.login !== false) {
    await page.fill('#password', await adminPassword(d));
    await page.click('#login');
    await page.waitForSelector('body[data-ready]');
  }
  return {
    browser,
    context,
    page,
    requests,
    close: async () => {
      await context.close();
      if (!o.browser) await browser.close();
    },
  };
}

/** Opens a page of the admin (#/id) and waits until it has its data. */
export async function goto(page: Page, id: string): Promise<void> {
  await page.evaluate(() => delete document.body.dataset.ready);
  await page.evaluate((h) => (location.hash = h), `#/${id}`);
  await page.waitForSelector(`body[data-ready="${id}"]`);
}

/** A full-page screenshot kept as a test artifact: <artifacts>/admin-<name>.png. */
export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(artifactDir(), `admin-${name}.png`), fullPage: true });
}
