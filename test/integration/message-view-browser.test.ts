import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { parseForView } from '../../src/admin/message-view.js';
import { artifactDir, launchChromium } from '../helpers/browser.js';

/*
 * The view document in real Chromium. The admin page lives on 127.0.152.1; 127.0.152.2 plays
 * the remote host a hostile message tries to reach (tracking pixel, script, CSS, refresh…).
 * The harness is first shown to catch the attack when the raw HTML is framed as is, so a
 * pass below means the view stopped it, not that the harness is blind.
 */

const PAGE_HOST = '127.0.152.1';
const REMOTE_HOST = '127.0.152.2';

let browser: Browser;
let pageServer: Server;
let remoteServer: Server;
let pageOrigin = '';
let remoteOrigin = '';
const remoteHits: string[] = [];
/** What the page server serves at /view, set by each test. */
let framePage = '';

function listen(server: Server, host: string): Promise<string> {
  return new Promise((resolve) => server.listen(0, host, () => resolve(`http://${host}:${(server.address() as AddressInfo).port}`)));
}

before(async () => {
  remoteServer = createServer((req, res) => {
    remoteHits.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'image/gif' }).end(Buffer.from('R0lGODlhAQABAAAAACw=', 'base64'));
  });
  pageServer = createServer((req, res) => {
    if (req.url === '/view') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(framePage);
    else res.writeHead(404).end();
  });
  remoteOrigin = await listen(remoteServer, REMOTE_HOST);
  pageOrigin = await listen(pageServer, PAGE_HOST);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  pageServer?.close();
  remoteServer?.close();
});

function attr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * The admin page as the front end builds it: the subject set with textContent from JSON,
 * the body in a frame. `sandbox` null frames the document without a sandbox attribute.
 */
function adminPage(subject: string, frameDoc: string, sandbox: string | null): string {
  const json = JSON.stringify(subject).replace(/</g, '\\u003c');
  const sb = sandbox === null ? '' : ` sandbox="${sandbox}"`;
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>admin view</title></head><body>
<h1 id="subject"></h1><script>document.getElementById('subject').textContent = ${json};</script>
<iframe id="body"${sb} srcdoc="${attr(frameDoc)}" style="width:900px;height:600px"></iframe></body></html>`;
}

function hostileHtml(remote: string): string {
  return `<html><head><meta http-equiv="refresh" content="0;url=${remote}/refresh"><base href="${remote}/base/">
<link rel="stylesheet" href="${remote}/link.css"><style>body { background: url(${remote}/style-element.png) } @import url(${remote}/import.css);</style></head>
<body onload="window.top.pwned='body-onload'; new Image().src='${remote}/body-onload'">
<h2>Quarterly report</h2>
<ScRiPt>window.top.pwned='script'; document.title='pwned'; fetch('${remote}/script');</sCrIpT>
<script src="${remote}/external.js"></script>
<img src="${remote}/track.gif" alt="logo">
<img src="x" onerror="window.top.pwned='onerror'; new Image().src='${remote}/onerror'">
<img src="relative.gif"><img srcset="${remote}/srcset.png 1x"><img src="${remote}/lazy.png" loading="lazy">
<svg onload="window.top.pwned='svg'"><script>window.top.pwned='svg-script'</script><image href="${remote}/svg-image.png"/></svg>
<p style="background:url(${remote}/style-attr.png)">styled</p>
<iframe src="${remote}/iframe"></iframe><object data="${remote}/object"></object><embed src="${remote}/embed">
<video poster="${remote}/poster.png"></video><audio src="${remote}/audio.mp3" autoplay></audio><input type="image" src="${remote}/input.png">
<table background="${remote}/table-bg.png"><tr><td>cell</td></tr></table>
<form action="${remote}/form" method="post"><button autofocus onfocus="this.form.submit()">go</button></form>
<a href="&#x6a;avascript:window.top.pwned='link'">click</a>
<!-- <img src="${remote}/comment.png"> --></body></html>`;
}

function hostileMessage(remote: string): Buffer {
  return Buffer.from(
    'From: Eve <eve@evil.test>\r\nTo: admin@example.test\r\nSubject: <script>window.top.pwned="subject"</script><img src=x onerror="window.top.pwned=1">\r\n' +
      `MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n${hostileHtml(remote)}`,
  );
}

interface Outcome {
  pwned: unknown;
  subjectText: string;
  pageTitle: string;
  frameTitle: string;
  requests: string[];
  remoteHits: string[];
}

/** Opens the admin page, lets everything the frame might do happen, and reports what left. */
async function view(page: string, screenshot?: string): Promise<Outcome> {
  framePage = page;
  remoteHits.length = 0;
  const p: Page = await browser.newPage();
  const requests: string[] = [];
  p.on('request', (r) => requests.push(r.url()));
  // Belt and braces: nothing may leave loopback whatever the page does
  await p.route('**/*', (route) => (new URL(route.request().url()).hostname.startsWith('127.0.152.') ? route.continue() : route.abort()));
  try {
    await p.goto(`${pageOrigin}/view`, { waitUntil: 'networkidle' });
    const frame = p.frames().find((f) => f !== p.mainFrame());
    assert.ok(frame, 'the body frame is there');
    const outcome: Outcome = {
      pwned: await p.evaluate(() => (window as unknown as { pwned?: unknown }).pwned),
      subjectText: await p.evaluate(() => document.getElementById('subject')?.textContent ?? ''),
      pageTitle: await p.title(),
      frameTitle: await frame.evaluate(() => document.title).catch(() => '(frame navigated away)'),
      requests,
      remoteHits: [...remoteHits],
    };
    if (screenshot) await p.screenshot({ path: join(artifactDir(), screenshot), fullPage: true });
    return outcome;
  } finally {
    await p.close();
  }
}

test('the harness catches the attack when the raw message HTML is framed without sandbox or sanitising', async () => {
  const o = await view(adminPage('control', hostileHtml(remoteOrigin), null));
  assert.notEqual(o.pwned, undefined, 'a hostile script ran');
  assert.ok(o.remoteHits.length > 0, 'requests reached the remote host');
  assert.ok(o.requests.some((u) => u.startsWith(remoteOrigin)));
});

for (const sandbox of ['', null]) {
  const how = sandbox === null ? 'a frame without sandbox (sanitiser and CSP alone)' : 'a sandbox="" frame';
  test(`a hostile subject and body are inert in ${how}: no script runs, no request leaves`, async () => {
    const v = await parseForView(hostileMessage(remoteOrigin), { remoteImages: false });
    const o = await view(adminPage(v.subject, v.bodyDocument, sandbox), sandbox === '' ? 'message-view-inert.png' : undefined);
    assert.equal(o.pwned, undefined);
    assert.equal(o.subjectText, v.subject);
    assert.match(o.subjectText, /^<script>window\.top\.pwned="subject"<\/script>/);
    assert.equal(o.pageTitle, 'admin view');
    assert.notEqual(o.frameTitle, 'pwned');
    assert.deepEqual(o.remoteHits, []);
    assert.deepEqual(o.requests, [`${pageOrigin}/view`]);
    assert.equal(v.remoteImagesBlocked, 2);
  });
}

test('with remote images asked for, the images load and nothing else does', async () => {
  const v = await parseForView(hostileMessage(remoteOrigin), { remoteImages: true });
  const o = await view(adminPage(v.subject, v.bodyDocument, ''));
  assert.equal(o.pwned, undefined);
  assert.deepEqual([...o.remoteHits].sort(), ['/lazy.png', '/track.gif']);
});
