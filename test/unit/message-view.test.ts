import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { attachmentOf, contentDisposition, parseForView, safeFilename, viewCsp } from '../../src/admin/message-view.js';

const PNG_1PX = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

function message(headers: string, body: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from(`From: Eve <eve@evil.test>\r\nTo: admin@example.test\r\nDate: Wed, 05 Mar 2025 10:00:00 +0000\r\nMessage-ID: <m1@evil.test>\r\nMIME-Version: 1.0\r\n${headers}\r\n`), Buffer.isBuffer(body) ? body : Buffer.from(body)]);
}

function htmlMail(html: string, subject = 'hostile'): Buffer {
  return message(`Subject: ${subject}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n`, html);
}

interface Part {
  headers: string;
  body: Buffer | string;
}

function multipart(type: string, parts: Part[], subject = 'parts'): Buffer {
  const b = 'b0undary-xyz';
  const chunks: Buffer[] = [Buffer.from('preamble\r\n')];
  for (const p of parts) chunks.push(Buffer.from(`--${b}\r\n${p.headers}\r\n`), Buffer.isBuffer(p.body) ? p.body : Buffer.from(p.body), Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${b}--\r\n`));
  return message(`Subject: ${subject}\r\nContent-Type: multipart/${type}; boundary="${b}"\r\n`, Buffer.concat(chunks));
}

function attachmentPart(filenameParam: string, content: Buffer, type = 'application/octet-stream'): Part {
  return { headers: `Content-Type: ${type}\r\nContent-Disposition: attachment; ${filenameParam}\r\nContent-Transfer-Encoding: base64\r\n`, body: content.toString('base64') };
}

/** The body element's markup: what came from the message, without the document's own head. */
function bodyOf(doc: string): string {
  const m = /<body>([\s\S]*)<\/body><\/html>$/.exec(doc);
  assert.ok(m, 'the document has one body');
  return m[1] ?? '';
}

/** Every attribute of every tag in the markup, as [tag, name, value]. */
function attributes(markup: string): Array<[string, string, string]> {
  const out: Array<[string, string, string]> = [];
  for (const tag of markup.matchAll(/<([a-z0-9]+)((?:\s+[^\s=>/]+(?:="[^"]*")?)*)\s*\/?>/gi)) {
    for (const a of (tag[2] ?? '').matchAll(/([^\s=>/]+)(?:="([^"]*)")?/g)) out.push([tag[1]!.toLowerCase(), a[1]!.toLowerCase(), a[2] ?? '']);
  }
  return out;
}

function tagNames(markup: string): Set<string> {
  return new Set([...markup.matchAll(/<\s*([a-z][a-z0-9-]*)/gi)].map((m) => m[1]!.toLowerCase()));
}

const SCRIPT_HOSTILE = `<ScRiPt>window.top.pwned=1</sCrIpT><script src="http://remote.test/x.js"></script>
<img src=x onerror="window.top.pwned=2"><body onload="window.top.pwned=3"><svg onload="window.top.pwned=4"><script>window.top.pwned=5</script></svg>
<p OnMouseOver="window.top.pwned=6">hover</p><div><img src="data:image/png;base64,AAAA" onload=alert(1)></div>`;

test('a <script> subject stays plain text and a script body keeps no script, no handler', async () => {
  const v = await parseForView(htmlMail(SCRIPT_HOSTILE, '<script>alert("subject")</script>'), { remoteImages: false });
  assert.equal(v.subject, '<script>alert("subject")</script>');
  const body = bodyOf(v.bodyDocument);
  assert.doesNotMatch(v.bodyDocument, /<\s*script/i);
  assert.doesNotMatch(body, /pwned/);
  assert.deepEqual(attributes(body).filter(([, name]) => name.startsWith('on')), []);
  assert.ok(!tagNames(body).has('svg'));
  assert.match(body, /hover/, 'the words of the message are kept');
});

test('javascript:, encoded and data:text/html links lose their href; http and mailto links stay, opening apart', async () => {
  const html = `<a href="javascript:alert(1)">j1</a><a href="JaVaScRiPt:alert(1)">j2</a><a href="&#x6a;avascript:alert(1)">j3</a>
<a href="&amp;#x6a;avascript:alert(1)">j4</a><a href="jav&#x09;ascript:alert(1)">j5</a><a href=" &#14; javascript:alert(1)">j6</a>
<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">d1</a><a href="vbscript:x">v</a><a href="/api/run?cmd=x">rel</a>
<a href="https://ok.example/path?a=1&b=2" onclick="x()">ok</a><a href="mailto:someone@example.test">mail</a>`;
  const v = await parseForView(htmlMail(html), { remoteImages: false });
  const body = bodyOf(v.bodyDocument);
  const hrefs = attributes(body).filter(([tag, name]) => tag === 'a' && name === 'href').map(([, , value]) => value);
  assert.deepEqual(hrefs, ['https://ok.example/path?a=1&amp;b=2', 'mailto:someone@example.test']);
  const anchors = [...body.matchAll(/<a [^>]*>/g)].map((m) => m[0]);
  assert.equal(anchors.length, 11);
  for (const a of anchors) {
    assert.match(a, /rel="noopener noreferrer"/);
    assert.match(a, /target="_blank"/);
  }
});

test('a remote image is replaced by a placeholder and counted, and kept only when remote images are asked for', async () => {
  const html = `<p>hi</p><img src="http://tracker.test/track.gif?u=admin" alt="logo"><img src="//tracker.test/p.gif"><img src=" HTTPS://tracker.test/q.png ">
<img src="data:image/png;base64,${PNG_1PX.toString('base64')}" alt="ok"><img srcset="http://tracker.test/s.png 2x" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="><img src="data:text/html,<b>x</b>"><img src="/relative.png"><img src="file:///etc/passwd">`;
  const blocked = await parseForView(htmlMail(html), { remoteImages: false });
  assert.equal(blocked.remoteImagesBlocked, 3);
  const body = bodyOf(blocked.bodyDocument);
  assert.doesNotMatch(body, /tracker\.test|srcset|svg|text\/html|relative\.png|file:/);
  const srcs = attributes(body).filter(([, name]) => name === 'src').map(([, , v]) => v);
  assert.deepEqual(srcs.map((s) => s.slice(0, 15)), ['data:image/png;', 'data:image/gif;']);
  assert.equal((body.match(/\[remote image blocked\]/g) ?? []).length, 3);
  assert.match(blocked.bodyDocument, /content="default-src 'none'; img-src data:; /);

  const shown = await parseForView(htmlMail(html), { remoteImages: true });
  assert.equal(shown.remoteImagesBlocked, 0);
  const shownSrcs = attributes(bodyOf(shown.bodyDocument)).filter(([, name]) => name === 'src').map(([, , v]) => v);
  assert.deepEqual(shownSrcs.filter((s) => s.includes('tracker.test')), ['http://tracker.test/track.gif?u=admin', 'https://tracker.test/p.gif', 'https://tracker.test/q.png']);
  assert.match(shown.bodyDocument, /img-src data: https: http:;/);
  assert.doesNotMatch(bodyOf(shown.bodyDocument), /srcset|svg\+xml|relative\.png|file:/);
});

test('CSS that could fetch (url(), expression(), escapes, @import, <style>) is gone; plain formatting stays', async () => {
  const html = `<style>@import url(http://remote.test/a.css); body { background: url(http://remote.test/bg.png) }</style>
<p style="color:red;background:url(http://remote.test/b.png);background-image:url('x')">red</p>
<p style="color: rgb(1, 2, 3); font-family: 'Noto Sans', serif; font-weight: bold">fonts</p>
<div style="width:expression(alert(1))">ex</div><div style="background:u\\72l(http://remote.test/e)">esc</div>
<div style="list-style-image: url(http://remote.test/l)">li</div><div style="behavior: url(x.htc); -moz-binding: url(x.xml#x)">b</div>
<div style="color: red; } body { background: url(http://remote.test/inj) } p {">inj</div><div style="background-color: var(--x, url(http://remote.test/v))">var</div>`;
  const v = await parseForView(htmlMail(html), { remoteImages: true });
  const body = bodyOf(v.bodyDocument);
  assert.doesNotMatch(v.bodyDocument, /url\s*\(|expression|@import|remote\.test|\\/i);
  assert.match(body, /<p style="color:red">red<\/p>/);
  assert.match(body, /color:rgb\(1, 2, 3\);font-family:'Noto Sans', serif;font-weight:bold/);
  assert.ok(!tagNames(body).has('style'));
});

test('meta refresh, base, form, iframe, object, embed, link, svg and math do not come through', async () => {
  const html = `<html><head><meta http-equiv="refresh" content="0;url=http://remote.test/"><base href="http://remote.test/"><link rel=stylesheet href="http://remote.test/s.css"><title>t</title></head>
<body><form action="http://remote.test/post"><input name=a value=b><button>go</button><select><option>o</option></select><textarea>t</textarea></form>
<iframe src="http://remote.test/f"><img src=http://remote.test/inframe></iframe><object data="http://remote.test/o"><p>fallback</p></object><embed src="http://remote.test/e">
<svg><image href="http://remote.test/svg.png"/><use href="http://remote.test/u#x"/></svg><math><mtext>m</mtext></math><video poster="http://remote.test/v"></video><audio src="http://remote.test/a"></audio>
<table background="http://remote.test/t"><tr><td background="http://remote.test/td">cell</td></tr></table><portal src="http://remote.test/p"></portal></body></html>`;
  const v = await parseForView(htmlMail(html), { remoteImages: false });
  const body = bodyOf(v.bodyDocument);
  const allowed = new Set(['p', 'table', 'tbody', 'tr', 'td', 'img']);
  for (const t of tagNames(body)) assert.ok(allowed.has(t), `tag <${t}> came through`);
  assert.doesNotMatch(body, /remote\.test|background=/);
  assert.match(body, /cell/);
  assert.match(body, /fallback/);
});

test('comments, CDATA and conditional comments hide nothing that comes back to life', async () => {
  const html = `<!-- <img src="http://remote.test/c1"> --><![CDATA[<img src="http://remote.test/c2">]]><!--[if IE]><img src="http://remote.test/c3"><![endif]-->
<!--><img src=x onerror=alert(1)>--><p>after</p><!-- unclosed <script>alert(1)</script>`;
  const v = await parseForView(htmlMail(html), { remoteImages: true });
  const body = bodyOf(v.bodyDocument);
  assert.doesNotMatch(body, /remote\.test|<!--|onerror|script/i);
  assert.match(body, /after/);
});

test('a cid: image of the message itself is shown inline as a data: URI; an svg part is not', async () => {
  const raw = multipart('related', [
    { headers: 'Content-Type: text/html; charset=utf-8\r\n', body: '<p>logo:</p><img src="cid:logo@x"><img src="cid:vector@x"><img src="cid:missing@x">' },
    { headers: 'Content-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n', body: PNG_1PX.toString('base64') },
    { headers: 'Content-Type: image/svg+xml\r\nContent-ID: <vector@x>\r\n', body: '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>' },
  ]);
  const v = await parseForView(raw, { remoteImages: false });
  const srcs = attributes(bodyOf(v.bodyDocument)).filter(([, name]) => name === 'src').map(([, , s]) => s);
  assert.deepEqual(srcs, [`data:image/png;base64,${PNG_1PX.toString('base64')}`]);
  assert.doesNotMatch(v.bodyDocument, /svg|cid:/);
  assert.equal(v.attachments.length, 2, 'the inline parts are still offered as downloads');
});

test('a text/plain message is escaped into a <pre>, its URLs left as text', async () => {
  const raw = message('Subject: plain\r\nContent-Type: text/plain; charset=utf-8\r\n', '<script>alert(1)</script> & see http://remote.test/x <img src=http://remote.test/y>\r\n');
  const v = await parseForView(raw, { remoteImages: true });
  const body = bodyOf(v.bodyDocument);
  assert.match(body, /^<pre class="plain">&#60;script&#62;alert\(1\)&#60;\/script&#62; &#38; see http:\/\/remote\.test\/x &#60;img src=http:\/\/remote\.test\/y&#62;/);
  assert.deepEqual([...tagNames(body)], ['pre']);
});

test('a Chinese subject (RFC 2047, UTF-8 and Big5) and Big5 / GB2312 bodies are decoded', async () => {
  const big5 = message('Subject: =?Big5?B?tPq41aVEpq4=?=\r\nContent-Type: text/plain; charset=big5\r\nContent-Transfer-Encoding: 8bit\r\n', Buffer.from('b4fab8d5b66ca5f3', 'hex'));
  const v1 = await parseForView(big5, { remoteImages: false });
  assert.equal(v1.subject, '測試主旨');
  assert.match(bodyOf(v1.bodyDocument), /測試郵件/);

  const utf8Subject = `=?UTF-8?B?${Buffer.from('季度報告 <b>').toString('base64')}?=`;
  const gb = message(`Subject: ${utf8Subject}\r\nContent-Type: text/html; charset=gb2312\r\nContent-Transfer-Encoding: 8bit\r\n`, Buffer.concat([Buffer.from('<p>'), Buffer.from('b2e2cad4d3cabcfe', 'hex'), Buffer.from('</p>')]));
  const v2 = await parseForView(gb, { remoteImages: false });
  assert.equal(v2.subject, '季度報告 <b>');
  assert.match(bodyOf(v2.bodyDocument), /<p>测试邮件<\/p>/);
});

test('headers are plain strings, with controls and bidi overrides taken out', async () => {
  const raw = message('Subject: pay \u202etxt.exe now\r\nCc: "<img src=x onerror=alert(1)>" <cc@example.test>\r\nContent-Type: text/plain\r\n', 'x');
  const v = await parseForView(raw, { remoteImages: false });
  assert.equal(v.subject, 'pay txt.exe now');
  assert.equal(v.from, '"Eve" <eve@evil.test>');
  assert.equal(v.to, 'admin@example.test');
  assert.match(v.cc, /^"?<img src=x onerror=alert\(1\)>"? <cc@example\.test>$/);
  assert.equal(v.date, '2025-03-05T10:00:00.000Z');
  assert.equal(v.messageId, '<m1@evil.test>');
});

const HOSTILE_NAMES: Array<[string, string]> = [
  ['filename="../../etc/passwd"', '_.._etc_passwd'],
  ['filename="..\\\\..\\\\boot.ini"', '_.._boot.ini'],
  ["filename*=UTF-8''a%00b", 'ab'],
  ["filename*=UTF-8''%E2%80%AEgnp.exe", 'gnp.exe'],
  ["filename*=UTF-8''%E6%B8%AC%E8%A9%A6.pdf", '測試.pdf'],
  ['filename="...hidden"', 'hidden'],
  ['filename="C:\\\\Windows\\\\x.dll"', 'C__Windows_x.dll'],
  ['filename="con.txt"', '_con.txt'],
  ['filename=".."', 'attachment-9'],
  ['name=""', 'attachment-10'],
];

function hostileNamesMail(): Buffer {
  const parts: Part[] = [{ headers: 'Content-Type: text/plain\r\n', body: 'see attachments' }];
  HOSTILE_NAMES.forEach(([param], i) => parts.push(attachmentPart(param, Buffer.from(`content ${i}`))));
  return multipart('mixed', parts);
}

test('attachment names with paths, NUL, bidi overrides and leading dots are made safe; Chinese names kept', async () => {
  const v = await parseForView(hostileNamesMail(), { remoteImages: false });
  assert.deepEqual(v.attachments.map((a) => a.filename), HOSTILE_NAMES.map(([, expected]) => expected));
  assert.deepEqual(v.attachments.map((a) => a.index), HOSTILE_NAMES.map((_, i) => i));
  assert.deepEqual(v.attachments.map((a) => a.size), HOSTILE_NAMES.map((_, i) => Buffer.byteLength(`content ${i}`)));
  // mailparser names the type of an octet-stream part from its extension
  for (const a of v.attachments) assert.match(a.contentType, /^[a-z0-9.+-]+\/[a-z0-9.+-]+$/);
});

test('attachmentOf returns the bytes of a valid index and null for anything else', async () => {
  const raw = hostileNamesMail();
  const first = await attachmentOf(raw, 0);
  assert.deepEqual(first, { filename: '_.._etc_passwd', contentType: 'application/octet-stream', content: Buffer.from('content 0') });
  const chinese = await attachmentOf(raw, '4');
  assert.equal(chinese?.filename, '測試.pdf');
  assert.deepEqual(chinese?.content, Buffer.from('content 4'));
  for (const bad of [-1, 10, 1.5, NaN, Infinity, 2 ** 53, '', ' 1', '1e0', '0x1', '-1', '01', '1/../2', '../0', '10']) {
    assert.equal(await attachmentOf(raw, bad), null, `index ${JSON.stringify(bad)}`);
  }
});

test('contentDisposition: an ASCII fallback and an RFC 5987 filename*, nothing that breaks the header', () => {
  assert.equal(contentDisposition('測試.pdf'), `attachment; filename="__.pdf"; filename*=UTF-8''%E6%B8%AC%E8%A9%A6.pdf`);
  assert.equal(contentDisposition('report (1).pdf'), `attachment; filename="report (1).pdf"; filename*=UTF-8''report%20%281%29.pdf`);
  const evil = contentDisposition('a"; filename="x.html\r\nSet-Cookie: s=1\\..\\x');
  assert.doesNotMatch(evil, /[\r\n]/);
  assert.equal(evil.split('"').length, 3, 'exactly one quoted string');
  assert.doesNotMatch(evil, /[/\\]/);
});

test('safeFilename: never a separator, control, bidi control or leading dot, at most 200 characters', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 400 }), fc.nat(1000), (name, n) => {
      const s = safeFilename(name, n);
      assert.ok(s.length > 0);
      assert.ok([...s].length <= 200);
      assert.doesNotMatch(s, /[/\\\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]|^\./);
      const header = contentDisposition(name);
      assert.doesNotMatch(header, /[\r\n\u0000-\u001f\u007f-\uffff]/);
      assert.equal(header.split('"').length, 3);
    }),
    { numRuns: 2000 },
  );
  const long = `${'長'.repeat(300)}.pdf`;
  assert.equal(safeFilename(long, 1), `${'長'.repeat(196)}.pdf`);
});

test('a huge message (5 MB of HTML) is viewed quickly, cut and still inert', async () => {
  const unit = '<div><img src="http://remote.test/t.gif" onerror="x()"><a href="javascript:x()">l</a><script>x()</script></div>';
  const html = unit.repeat(Math.ceil((5 * 1024 * 1024) / unit.length));
  const started = process.hrtime.bigint();
  const v = await parseForView(htmlMail(html), { remoteImages: false });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.equal(v.bodyTruncated, true);
  assert.ok(v.remoteImagesBlocked > 5_000);
  assert.doesNotMatch(v.bodyDocument, /<script|onerror|javascript:|remote\.test/);
  // Generous: well under a second here; the point is that it is not proportional to all 5 MB squared
  assert.ok(ms < 5_000, `took ${ms} ms`);
});

test('a nesting bomb (1 MB of unclosed <div>) is cut instead of stalling the parser; sloppy <p> and <li> are not cut', async () => {
  const started = process.hrtime.bigint();
  const bomb = await parseForView(htmlMail(`<p>top</p>${'<div>x'.repeat(170_000)}`), { remoteImages: false });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  // Without the cut this took about 16 s (the parser's stack is quadratic in depth)
  assert.ok(ms < 5_000, `took ${ms} ms`);
  assert.equal(bomb.bodyTruncated, true);
  assert.match(bodyOf(bomb.bodyDocument), /^<p>top<\/p><div>x<div>x/);

  const sloppy = await parseForView(htmlMail(`${'<p>para'.repeat(3000)}<ul>${'<li>item'.repeat(3000)}</ul><p>end`), { remoteImages: false });
  assert.equal(sloppy.bodyTruncated, false);
  assert.match(bodyOf(sloppy.bodyDocument), /<p>end<\/p>$/);
});

test('broken MIME still gives a view: a missing end boundary, garbage headers, bad base64, bare bytes', async () => {
  const noEnd = Buffer.from('Subject: cut\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n--zz\r\nContent-Type: text/html\r\n\r\n<p>part one<script>x()</script>\r\n--zz\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="cut.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBER');
  const v1 = await parseForView(noEnd, { remoteImages: false });
  assert.equal(v1.subject, 'cut');
  assert.match(bodyOf(v1.bodyDocument), /part one/);
  assert.doesNotMatch(v1.bodyDocument, /<script/);
  assert.deepEqual(v1.attachments.map((a) => a.filename), ['cut.pdf']);

  const garbage = Buffer.from('\u0000\u0001: \r\nContent-Type: text/html; charset=no-such-charset\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!not base64 <script>alert(1)</script>');
  const v2 = await parseForView(garbage, { remoteImages: false });
  assert.doesNotMatch(v2.bodyDocument, /<script/);

  const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256));
  const v3 = await parseForView(bytes, { remoteImages: false });
  assert.doesNotMatch(bodyOf(v3.bodyDocument), /<(?!\/?pre)/);
});

test('viewCsp: nothing but data: images unless remote images are asked for; no script source at all', () => {
  assert.equal(viewCsp(false), "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'");
  assert.equal(viewCsp(true), "default-src 'none'; img-src data: https: http:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'");
});
