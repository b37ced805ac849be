// What `make run` prints: every face of the sim board, as commands that can be pasted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { facesText } from '../../src/commands/faces.js';

const listeners = [
  { name: 'mx', host: '127.0.0.1', port: 2525, starttls: true, implicitTls: false, authRequired: false },
  { name: 'submission', host: '127.0.0.1', port: 2587, starttls: true, implicitTls: false, authRequired: true },
  { name: 'smtps', host: '127.0.0.1', port: 2465, starttls: false, implicitTls: true, authRequired: false },
];

test('the faces of the sim board: SMTP listeners, the CLI, console, LCD, buttons, web admin', () => {
  const text = facesText({ configDir: '/repo/var/config', listeners, console: null, panel: { lcdDevice: null }, admin: 'https://127.0.0.1:8443/' }, '/repo/dist/src/cli.js', '/repo');
  assert.match(text, /SMTP mx +127\.0\.0\.1:2525 \(STARTTLS\)/);
  assert.match(text, /SMTP submission +127\.0\.0\.1:2587 \(STARTTLS, AUTH required\)/);
  assert.match(text, /SMTP smtps +127\.0\.0\.1:2465 \(implicit TLS\)/);
  assert.match(text, /node dist\/src\/cli\.js --config-dir var\/config panel screen/);
  assert.match(text, /panel press up\|down\|enter\|esc/);
  assert.match(text, /serial console +none/);
  assert.match(text, /web admin +https:\/\/127\.0\.0\.1:8443\/ +\(user admin\)/);
  assert.doesNotMatch(text, /LCD line/);
});

test('a console device and an LCD on a serial line are named; a panel turned off says so', () => {
  const on = facesText({ configDir: '/c', listeners, console: '/tmp/console-a', panel: { lcdDevice: '/tmp/lcd-a' }, admin: null }, '/x/cli.js', '/x');
  assert.match(on, /serial console +\/tmp\/console-a/);
  assert.match(on, /LCD line +\/tmp\/lcd-a/);
  const off = facesText({ configDir: '/c', listeners, console: null, panel: null, admin: null }, '/x/cli.js', '/x');
  assert.match(off, /front panel +off/);
  assert.doesNotMatch(off, /panel screen/);
  assert.match(off, /web admin +off \(admin\.enabled is false\)/);
});
