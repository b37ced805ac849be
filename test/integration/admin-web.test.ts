// The web admin's core through the real daemon and Debian's Chromium: login, the language
// switch, a threshold changed on the page and felt over SMTP, and the hostile forms: a change
// without its CSRF token, a planted session id, a password guesser, a stranger's address,
// paths with `..`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon, eventually } from '../helpers/daemon.js';
import { sendOnce } from '../helpers/smtp-client.js';
import { adminPassword, apiLogin, goto, openAdmin, shot, web } from '../helpers/admin-web.js';

const HOST = '127.0.150.1';
const SENDER = '127.0.150.20';
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({ host: HOST, config: { admin: { lockoutFailures: 3, lockoutMinutes: 10 } } });
  await d.start();
  await d.addUser('bob@example.test', 'bob-password-1');
});

after(async () => {
  await d?.cleanup();
});

const events = async (kind: string) => {
  const r = await d.cli(['events', 'list', '--json']);
  return (JSON.parse(r.stdout) as { kind: string; text: string; ip?: string; data?: Record<string, unknown> }[]).filter((e) => e.kind === kind);
};

test('log in, change a threshold on the Mail policy page, and the next SMTP message over it is refused; the change is audited', async () => {
  const ui = await openAdmin(d);
  try {
    await goto(ui.page, 'policy');
    await shot(ui.page, 'policy-en');
    // Two messages from the sender's address go through before the limit is set.
    assert.match(await sendOnce(HOST, d.ports.mx, 'bob@example.test', 'before-1', SENDER), /^250/);
    await ui.page.fill('#f-thresholds-perIpMessagesPerMinute', '2');
    const form = ui.page.locator('form', { has: ui.page.locator('#f-thresholds-perIpMessagesPerMinute') });
    await form.locator('button[type=submit]').click();
    await form.locator('.msg.ok').waitFor();
    const r = await d.cli(['config', 'get', 'thresholds.perIpMessagesPerMinute']);
    assert.equal(r.stdout.trim(), '2');
    // The limit counts the minute's messages: one was sent, one more passes, the third is refused.
    assert.match(await sendOnce(HOST, d.ports.mx, 'bob@example.test', 'after-1', SENDER), /^250/);
    assert.match(await sendOnce(HOST, d.ports.mx, 'bob@example.test', 'after-2', SENDER), /^[45]\d\d/);
    // A value the schema refuses is refused with the key named, and nothing changes.
    await ui.page.fill('#f-thresholds-perIpMessagesPerMinute', '-5');
    await form.locator('button[type=submit]').click();
    const err = await form.locator('.field-error').filter({ hasText: /thresholds\.perIpMessagesPerMinute/ }).textContent();
    assert.match(err ?? '', /thresholds\.perIpMessagesPerMinute/);
    assert.equal((await d.cli(['config', 'get', 'thresholds.perIpMessagesPerMinute'])).stdout.trim(), '2');
    const audit = await eventually('the audit event', async () => (await events('admin.change')).find((e) => e.data?.key === 'thresholds.perIpMessagesPerMinute' && e.data?.ok === true));
    assert.equal(audit.data?.old, 0);
    assert.equal(audit.data?.new, 2);
    assert.equal(audit.data?.face, 'web');
    assert.equal(audit.data?.who, 'admin');
    assert.match(String(audit.data?.from), /^127\./);
    // The refused attempt is in the trail too.
    assert.ok((await events('admin.change')).some((e) => e.data?.ok === false && /-5/.test(String(e.data?.argv))));
    // Every request the page made went to the box itself.
    assert.ok(ui.requests.length > 0);
    for (const u of ui.requests) assert.ok(u.startsWith(d.adminUrl) || u.startsWith('data:'), `request left the box: ${u}`);
  } finally {
    await ui.close();
  }
});

test('the language switch: Traditional Chinese when the browser prefers it, English on request, kept across pages', async () => {
  const ui = await openAdmin(d, { locale: 'zh-TW' });
  try {
    assert.equal(await ui.page.getAttribute('html', 'lang'), 'zh-TW');
    await goto(ui.page, 'policy');
    assert.match((await ui.page.textContent('header nav')) ?? '', /郵件政策/);
    assert.match((await ui.page.textContent('#page-policy')) ?? '', /轉送控制/);
    await shot(ui.page, 'policy-zh-TW');
    await ui.page.selectOption('#lang', 'en');
    await ui.page.waitForSelector('body[data-ready="policy"]');
    assert.match((await ui.page.textContent('#page-policy')) ?? '', /Relay control/);
    assert.doesNotMatch((await ui.page.textContent('body')) ?? '', /轉送控制/);
    await goto(ui.page, 'dashboard');
    assert.equal(await ui.page.getAttribute('html', 'lang'), 'en');
    await ui.page.selectOption('#lang', 'zh-TW');
    await ui.page.waitForSelector('body[data-ready="dashboard"]');
    assert.match((await ui.page.textContent('header nav')) ?? '', /儀表板/);
  } finally {
    await ui.close();
  }
});

test('the headers: a Content-Security-Policy without inline script, a secure session cookie', async () => {
  const page = await web(d, '/');
  assert.equal(page.status, 200);
  const csp = String(page.headers['content-security-policy']);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(page.body, /<script(?![^>]*\bsrc=)[^>]*>/, 'an inline script in the page shell');
  const login = await web(d, '/api/login', { body: { user: 'admin', password: await adminPassword(d) } });
  const cookie = String(login.headers['set-cookie']);
  assert.match(cookie, /Secure/);
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
});

test('a change without the CSRF token, or with a wrong one, or from another site, is refused and changes nothing', async () => {
  const { cookie, csrf } = await apiLogin(d);
  const set = (o: { csrf?: string; headers?: Record<string, string>; contentType?: string }) =>
    web(d, '/api/run', { cookie, body: { argv: ['config', 'set', 'thresholds.perIpMessagesPerDay', '7'] }, ...o });
  assert.equal((await set({})).status, 403);
  assert.equal((await set({ csrf: csrf.slice(0, -1) + (csrf.endsWith('A') ? 'B' : 'A') })).status, 403);
  assert.equal((await set({ csrf, headers: { origin: 'https://evil.test' } })).status, 403);
  // A form another site posts as text/plain is not even parsed.
  const form = await web(d, '/api/run', { cookie, csrf, rawBody: '{"argv":["config","set","thresholds.perIpMessagesPerDay","7"]}', contentType: 'text/plain' });
  assert.equal(form.status, 415);
  assert.equal((await d.cli(['config', 'get', 'thresholds.perIpMessagesPerDay'])).stdout.trim(), '0');
  // With the token it goes through: the refusals above were the token's, not the command's.
  const ok = await set({ csrf });
  assert.equal(ok.status, 200);
  assert.equal(ok.json().ok, true);
  assert.equal((await d.cli(['config', 'get', 'thresholds.perIpMessagesPerDay'])).stdout.trim(), '7');
  // Without a session nothing runs, token or not.
  assert.equal((await web(d, '/api/run', { csrf, body: { argv: ['status'] } })).status, 401);
});

test('a session id planted before the login is not kept: the login issues a new one and the planted one opens nothing', async () => {
  const planted = 'A'.repeat(43);
  const ui = await openAdmin(d, { login: false });
  try {
    await ui.context.addCookies([{ name: 'mlsd_session', value: planted, url: d.adminUrl, secure: true, httpOnly: true, sameSite: 'Strict' }]);
    await ui.page.reload();
    await ui.page.fill('#password', await adminPassword(d));
    await ui.page.click('#login');
    await ui.page.waitForSelector('body[data-ready]');
    const now = (await ui.context.cookies(d.adminUrl)).find((c) => c.name === 'mlsd_session');
    assert.ok(now && now.value !== planted && now.value.length >= 40);
    assert.equal((await web(d, '/api/session', { cookie: planted })).status, 401);
    assert.equal((await web(d, '/api/session', { cookie: now.value })).status, 200);
    // Logging out ends the session on the box, not only in the browser.
    await ui.page.click('#logout');
    await ui.page.waitForSelector('#password');
    assert.equal((await web(d, '/api/session', { cookie: now.value })).status, 401);
  } finally {
    await ui.close();
  }
});

test('the lockout: a guesser is locked out (an event says so) even with the right password next; other networks still log in', async () => {
  const guesser = '127.0.150.30';
  // Sent all at once: each guess is counted as it starts, so the parallel ones cannot all pass
  // the check while the first passwords are being checked. Three guesses, the rest refused.
  const guesses = await Promise.all(Array.from({ length: 20 }, (_, i) => web(d, '/api/login', { body: { user: 'admin', password: `guess-${i}` }, from: guesser })));
  const statuses = guesses.map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 401).length, 3, `answers: ${statuses.join(' ')}`);
  assert.equal(statuses.filter((s) => s === 429).length, 17, `answers: ${statuses.join(' ')}`);
  const locked = await web(d, '/api/login', { body: { user: 'admin', password: await adminPassword(d) }, from: guesser });
  assert.equal(locked.status, 429);
  assert.ok(Number(locked.headers['retry-after']) > 0);
  const ev = await eventually('the lockout event', async () => (await events('admin.lockout')).find((e) => e.ip === guesser));
  assert.match(ev.text, /locked out/);
  const other = await web(d, '/api/login', { body: { user: 'admin', password: await adminPassword(d) }, from: '127.0.150.31' });
  assert.equal(other.status, 200);
});

test('admin.allowIps: an address outside it gets 403 for pages and API; a bad value is refused with the key named', async () => {
  const bad = await d.cli(['config', 'set', 'admin.allowIps', '["not-an-ip"]']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /admin\.allowIps/);
  assert.equal((await d.cli(['config', 'set', 'admin.allowIps', '["127.0.150.40/32"]'])).code, 0);
  try {
    assert.equal((await web(d, '/', { from: '127.0.150.41' })).status, 403);
    assert.equal((await web(d, '/api/login', { body: { user: 'admin', password: 'x' }, from: '127.0.150.41' })).status, 403);
    assert.equal((await web(d, '/', { from: '127.0.150.40' })).status, 200);
  } finally {
    await d.cli(['config', 'set', 'admin.allowIps', '["127.0.0.0/8"]']);
  }
});

test('paths with .. and odd names find nothing; only the shipped files are served', async () => {
  for (const p of ['/static/../package.json', '/static/..%2f..%2fpackage.json', '/static/%2e%2e%2fconfig.json', '/static/app.js%00.css', '/static/.hidden', '/static//etc/passwd', '/../../etc/passwd']) {
    const r = await web(d, p);
    assert.ok(r.status === 404 || r.status === 400, `${p}: ${r.status}`);
    assert.doesNotMatch(r.body, /"name": "mlsd"|root:x:0/);
  }
  assert.equal((await web(d, '/static/app.js')).status, 200);
  // Message downloads: ids with `..`, slashes or odd bytes, other sources, bad part numbers.
  const { cookie } = await apiLogin(d);
  const hostile = [
    '/api/message/archive/..%2F..%2Fetc%2Fpasswd/eml',
    '/api/message/archive/../../etc/passwd',
    '/api/message/archive/..%5C..%5Cboot.ini/eml',
    '/api/message/quarantine/a..b/eml',
    '/api/message/quarantine/%00x/eml',
    '/api/message/spool/1/eml',
    '/api/message/__proto__/1/eml',
  ];
  for (const p of hostile) {
    const r = await web(d, p, { cookie });
    assert.ok([400, 404].includes(r.status), `${p}: ${r.status}`);
    assert.doesNotMatch(r.body, /root:x:0/);
  }
  // Without a session not even the refusal says whether a message exists.
  assert.equal((await web(d, '/api/message/archive/1/eml')).status, 401);
});

// Last: it changes the password the other tests log in with.
test('a new administrator password, set from any face, ends every web session', async () => {
  const { cookie } = await apiLogin(d);
  assert.equal((await web(d, '/api/session', { cookie })).status, 200);
  const r = await d.cli(['admin', 'passwd', '--password-stdin'], 'a-new-admin-password\n');
  assert.equal(r.code, 0, r.stderr);
  await eventually('the old session to end', async () => (await web(d, '/api/session', { cookie })).status === 401);
  const again = await web(d, '/api/login', { body: { user: 'admin', password: 'a-new-admin-password' } });
  assert.equal(again.status, 200);
  // The trail says the password changed, never what it is.
  const ev = (await events('admin.change')).find((e) => /admin passwd/.test(String(e.data?.argv)));
  assert.ok(ev && ev.data?.face === 'cli');
  assert.doesNotMatch(JSON.stringify(await events('admin.change')), /a-new-admin-password/);
});
