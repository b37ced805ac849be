// The serial console over a socat pseudo-terminal pair: the daemon holds one end (config
// console.device), the test types at the other as a person at a terminal would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon, eventually } from '../helpers/daemon.js';
import { startPtyPair, type PtyPair } from '../helpers/socat.js';
import { Terminal } from '../helpers/terminal.js';

const HOST = '127.0.121.1';
let d: TestDaemon;
let pair: PtyPair;
let term: Terminal;
let password: string;

before(async () => {
  d = await TestDaemon.create({ host: HOST, config: { console: { device: 'PLACEHOLDER', idleMinutes: 10 } } });
  pair = await startPtyPair(d.root, 'console');
  // The config names the pty end the daemon opens.
  const cfgPath = join(d.configDir, 'config.json');
  const cfg = JSON.parse(await readFile(cfgPath, 'utf8'));
  cfg.console.device = pair.a;
  await (await import('node:fs/promises')).writeFile(cfgPath, JSON.stringify(cfg));
  term = await Terminal.open(pair.b);
  await d.start();
  await d.waitFor((l) => l.evt === 'serial.open' && l.device === pair.a);
  password = (await readFile(join(d.configDir, 'initial-admin-password'), 'utf8')).trim();
});

after(async () => {
  await term?.close();
  await d?.cleanup();
  await pair?.stop();
});

/** A fresh login prompt: Enter on an empty login line asks again. */
async function toLoginPrompt(): Promise<void> {
  term.skip();
  // Ctrl-C: its "^C" echo marks the prompt that answers it, not one still on its way from before.
  await term.type('\x03');
  // Still logged in (a test before failed half-way): log out first.
  if (/> $/.test(await term.expect(/\^C\r\n[^\n]*((login|帳號): |> )$/))) await logout();
}

async function login(pw = password): Promise<string> {
  await toLoginPrompt();
  await term.line('admin');
  await term.expect('Password: ');
  await term.line(pw);
  return term.expect(/(admin@[^>]+> |Login incorrect)/);
}

async function run(cmd: string): Promise<string> {
  await term.line(cmd);
  const out = await term.expect(/admin@[^>]+> $/);
  return out.replace(/\r\n/g, '\n');
}

async function logout(): Promise<void> {
  await term.line('exit');
  await term.expect(/(login|帳號): $/);
}

async function events(kind: string): Promise<{ kind: string; text: string; data?: Record<string, unknown> }[]> {
  const r = await d.cli(['events', 'list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { kind: string; text: string }[]).filter((e) => e.kind === kind);
}

test('log in with the admin password (never echoed), run status, user list, config get; exit', async () => {
  await d.addUser('alice@example.test', 'alice-password-1');
  const got = await login();
  assert.match(got, /Logged in/);
  assert.ok(!term.received.includes(password), 'the password is never echoed');
  const status = await run('status');
  const cliStatus = await d.cli(['status']);
  for (const l of cliStatus.stdout.trim().split('\n').filter((l) => !/\bup \d/.test(l)).slice(0, 3)) {
    assert.ok(status.includes(l.trim()), `console status has "${l.trim()}":\n${status}`);
  }
  assert.match(await run('user list'), /alice@example\.test/);
  assert.match(await run('config get hostname'), /mail\.example\.test/);
  assert.match(await run('config set hostname \'"box.example.test"\''), /hostname set/);
  assert.match(await run('config get hostname'), /box\.example\.test/);
  assert.match(await run('nosuch thing'), /error: unknown command: nosuch thing/);
  assert.match(await run('help'), /Commands:[\s\S]*user list[\s\S]*exit/);
  await logout();
  assert.ok((await events('console.login')).length >= 1);
});

test('help in Traditional Chinese with console.lang zh-TW', async () => {
  assert.equal((await d.cli(['config', 'set', 'console.lang', '"zh-TW"'])).code, 0);
  try {
    await toLoginPrompt();
    await term.line('admin');
    await term.expect('密碼: ');
    await term.line(password);
    await term.expect('已登入');
    await term.expect(/> $/);
    const help = await run('help');
    assert.match(help, /指令：/);
    assert.match(help, /列出郵件使用者/);
    await logout();
  } finally {
    assert.equal((await d.cli(['config', 'set', 'console.lang', '"en"'])).code, 0);
  }
});

test('line editing: backspace, Ctrl-U, left arrow, history with the up arrow', async () => {
  await login();
  // "statxx" + two backspaces + "us" = status
  let out = await run('statxx\x7f\x7fus');
  assert.match(out, /accounts: \d+ users/);
  assert.doesNotMatch(out, /unknown command/);
  // Ctrl-U erases what was typed
  out = await run('rubbish\x15config get hostname');
  assert.match(out, /box\.example\.test/);
  assert.doesNotMatch(out, /error/);
  // "satus", four left arrows, "t" inserted after the s = status
  out = await run('satus\x1b[D\x1b[D\x1b[D\x1b[Dt');
  assert.doesNotMatch(out, /unknown command/);
  // Up arrow twice brings back "config get hostname"
  out = await run('\x1b[A\x1b[A');
  assert.match(out, /box\.example\.test/);
  await logout();
});

test('commands before login are refused; wrong passwords are refused, then delayed, and logged as events', async () => {
  const before = (await events('console.loginFailed')).length;
  // "status" typed at the login prompt is a user name, not a command.
  await toLoginPrompt();
  await term.line('status');
  await term.expect('Password: ');
  await term.line('status');
  const first = await term.expect('Login incorrect');
  assert.doesNotMatch(first, /daemon|uptime|queue/i);
  assert.match(await login('wrong-password-2'), /Login incorrect/);
  assert.match(await login('wrong-password-3'), /Login incorrect/);
  await term.expect(/wait 1 s/);
  await term.expect('login: ');
  assert.match(await login('wrong-password-4'), /Login incorrect/);
  await term.expect(/wait 2 s/);
  // Typed during the wait: dropped, not taken as the next login (the prompt after the wait is empty).
  await term.line('admin');
  await term.expect('login: ');
  await new Promise((r) => setTimeout(r, 300));
  assert.doesNotMatch(term.since, /Password/);
  const failed = await eventually('failed-login events', async () => {
    const e = await events('console.loginFailed');
    return e.length >= before + 4 && e;
  });
  assert.ok(failed.some((e) => /failed login as "admin" \(4 in a row; next attempt in 2 s\)/.test(e.text)), JSON.stringify(failed.map((e) => e.text)));
  // The right password still works after the wait, and clears the count.
  assert.match(await login(), /admin@/);
  await logout();
  assert.match(await login('wrong-again'), /Login incorrect/);
  await term.expect('login: ');
  assert.doesNotMatch(term.since, /wait/);
});

test('mlsd admin passwd --password-stdin: the new password logs in, the old does not, the first-start file is deleted', async () => {
  const short = await d.cli(['admin', 'passwd', '--password-stdin'], 'short\n');
  assert.notEqual(short.code, 0);
  assert.match(short.stderr, /at least 8 characters/);
  const ctl = await d.cli(['admin', 'passwd', '--password-stdin'], 'new\x1b[2Jpassword\n');
  assert.notEqual(ctl.code, 0);
  assert.match(ctl.stderr, /no control characters/);
  const r = await d.cli(['admin', 'passwd', '--password-stdin'], 'console-pass-42\n');
  assert.equal(r.code, 0, r.stderr);
  await assert.rejects(access(join(d.configDir, 'initial-admin-password')));
  assert.match(await login(password), /Login incorrect/);
  await term.expect('login: ');
  assert.match(await login('console-pass-42'), /admin@/);
  await logout();
  password = 'console-pass-42';
});

test('an idle session is logged out, and nothing runs after that without a login', async () => {
  assert.equal((await d.cli(['config', 'set', 'console.idleMinutes', '0.05'])).code, 0);
  try {
    assert.match(await login(), /admin@/);
    await term.expect('Idle too long: logged out', 30000);
    await term.expect('login: ');
    await term.line('status');
    await term.expect('Password: ');
    assert.doesNotMatch(term.since, /daemon/);
    await term.line('');
    await term.expect('Login incorrect');
    assert.ok((await events('console.logout')).some((e) => /idle/.test(e.text)));
  } finally {
    assert.equal((await d.cli(['config', 'set', 'console.idleMinutes', '10'])).code, 0);
  }
});

test('hostile input: long lines, control characters, escape sequences, binary garbage; the daemon stays up', async () => {
  const hostile = [
    'A'.repeat(200_000) + '\r',
    '\x1b[' + '9'.repeat(50_000) + 'm\r',
    '\x00\x01\x02\x04\x07\x1a\x1c\x7f\x9b\x85\r',
    '\x1b]0;owned\x07\x1b[2J\x1bc\r',
    '\xff\xfe\xc3\x28\xe2\x82\r',
  ];
  // At the login prompt ...
  for (const h of hostile) await term.type(Buffer.from(h, 'latin1'));
  await term.type(randomBytes(100_000));
  await term.type('\x03\r');
  // ... and in the shell.
  await eventually('a login after the garbage', async () => /admin@/.test(await login().catch(() => '')), 60000);
  for (const h of hostile) await term.type(Buffer.from(h, 'latin1'));
  await term.type(randomBytes(100_000));
  await term.type('\x15\r');
  // Still there, on both faces.
  const st = await d.cli(['status']);
  assert.equal(st.code, 0, st.stderr);
  assert.equal(d.proc!.exitCode, null);
  term.skip();
  await term.type('\x15');
  const out = await run('config get hostname');
  assert.match(out, /box\.example\.test/);
  // No escape sequence typed was ever printed back: only the editor's own backspaces and bells.
  assert.doesNotMatch(term.received, /\x1b\]0;owned|\x1b\[2J|\x1bc/);
  await logout();
});
