import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// Daemon on 127.0.105.1; the SMTP client on 127.0.105.2.
const HOST = '127.0.105.1';
const CLIENT = '127.0.105.2';
const SHARED_KEY = 'ha-shared-key-0123456789-SECRET';
const SMARTHOST_PASSWORD = 'isp-password-SECRET-42';
const MASK = '********';
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({
    host: HOST,
    config: {
      routing: { sourceAddress: HOST, smarthost: { host: 'smtp.isp.test', user: 'box', password: SMARTHOST_PASSWORD } },
      ha: { sharedKey: SHARED_KEY },
    },
  });
  await d.start();
});
after(async () => d.cleanup());

/** Everything the daemon itself printed (its journal under systemd). */
const daemonOutput = () => [...d.notices, ...d.logs.map((l) => JSON.stringify(l)), d.stderr].join('\n');

async function get(args: string[]): Promise<string> {
  const r = await d.cli(['config', 'get', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

test('config get masks every secret at any depth: the key itself, its section, the whole document, text and --json', async () => {
  for (const out of [
    await get(['ha']),
    await get(['ha.sharedKey']),
    await get(['routing']),
    await get(['routing.smarthost']),
    await get(['routing.smarthost.password']),
    await get([]),
    await get(['--json']),
    await get(['ha', '--json']),
  ]) {
    assert.ok(!out.includes(SHARED_KEY), `ha.sharedKey printed: ${out}`);
    assert.ok(!out.includes(SMARTHOST_PASSWORD), `routing.smarthost.password printed: ${out}`);
  }
  assert.equal(JSON.parse(await get(['ha'])).sharedKey, MASK);
  assert.equal(JSON.parse(await get(['ha.sharedKey'])), MASK);
  assert.equal(JSON.parse(await get(['routing.smarthost'])).password, MASK);
  const whole = JSON.parse(await get(['--json']));
  assert.equal(whole.ha.sharedKey, MASK);
  assert.equal(whole.routing.smarthost.password, MASK);
  // What is not secret is shown as it is.
  assert.equal(whole.routing.smarthost.user, 'box');
  assert.equal(whole.hostname, 'mail.example.test');
});

test('config set of a secret: saved, never echoed by the reply or the daemon log; an unset secret shows as empty', async () => {
  const next = 'next-isp-password-SECRET-77';
  const r = await d.cli(['config', 'set', 'routing.smarthost.password', JSON.stringify(next)]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'routing.smarthost.password set\n');
  const json = await d.cli(['config', 'set', 'routing.smarthost', JSON.stringify({ host: 'smtp.isp.test', user: 'box', password: next }), '--json']);
  assert.equal(json.code, 0, json.stderr);
  assert.equal(JSON.parse(json.stdout).value.password, MASK);
  await d.waitFor((l) => l.evt === 'config.set' && l.key === 'routing.smarthost');
  assert.ok(!daemonOutput().includes(next), 'the new password reached the daemon output');
  assert.ok(!daemonOutput().includes(SHARED_KEY));
  // It is really saved (the file is 0600 on the config flash).
  assert.equal(JSON.parse(await readFile(join(d.configDir, 'config.json'), 'utf8')).routing.smarthost.password, next);
  assert.equal((await d.cli(['config', 'set', 'routing.smarthost.password', '""'])).code, 0);
  assert.equal(JSON.parse(await get(['routing.smarthost.password'])), '');
});

test('config get/set refuse the path segments __proto__, constructor and prototype with the key named; the daemon is not polluted', async () => {
  const hostname = await get(['hostname']);
  for (const key of ['__proto__.toString', '__proto__', 'constructor.prototype.valueOf', 'smtp.constructor', 'relay.allowIps.prototype', 'hostname.__proto__.length']) {
    const bad = key.split('.').find((p) => ['__proto__', 'constructor', 'prototype'].includes(p));
    const set = await d.cli(['config', 'set', key, '1']);
    assert.equal(set.code, 1, `${key}: ${set.stdout}`);
    assert.equal(set.stderr, `mlsd: config: ${key}: the path segment ${bad} is not allowed\n`);
    const read = await d.cli(['config', 'get', key]);
    assert.equal(read.code, 1, `${key}: ${read.stdout}`);
    assert.equal(read.stderr, `mlsd: config: ${key}: the path segment ${bad} is not allowed\n`);
  }
  // A JSON value carrying a __proto__ key is an unknown key, not a prototype.
  const viaValue = await d.cli(['config', 'set', 'relay', '{"__proto__":{"allowIps":["0.0.0.0/0"]},"allowAuthenticated":true}']);
  assert.equal(viaValue.code, 1, viaValue.stdout);
  assert.match(viaValue.stderr, /^mlsd: config: relay\.__proto__: unknown key\n$/);
  assert.deepEqual(JSON.parse(await get(['relay.allowIps'])), []);
  // The daemon still works as before: the same config, status, and an SMTP session.
  assert.equal(await get(['hostname']), hostname);
  assert.equal((await d.cli(['status'])).code, 0);
  const c = await RawSmtp.open(HOST, d.ports.mx, CLIENT);
  try {
    assert.match(await c.reply(), /^220 /);
    assert.match(await c.cmd('EHLO client.test'), /^250[ -]/);
    assert.match(await c.cmd('MAIL FROM:<a@remote.test>'), /^250 /);
    assert.match(await c.cmd('RCPT TO:<nobody@remote.test>'), /^5\d\d /);
  } finally {
    c.close();
  }
});
