import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// A refusal at the end of DATA is a verdict on the message and must reach the sender as the
// permanent reply it is, even when the session has used up its error budget (one refusal
// under stress mode, smtp.maxBadCommands otherwise); only the next refusal ends the session.
// Daemon on 127.0.112.1, client 127.0.112.2.
const HOST = '127.0.112.1';
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({ host: HOST, config: { smtp: { maxBadCommands: 1 } } });
  await d.start();
  await d.addUser('bob@example.test', 'bob-secret-1');
});
after(async () => d.cleanup());

test('with the error budget at 1, a message refused at end of DATA gets its 5xx, not 421; the next refusal ends the session', async () => {
  const c = await RawSmtp.open(HOST, d.ports.mx, '127.0.112.2');
  try {
    await c.reply();
    await c.cmd('EHLO client.test');
    assert.match(await c.cmd('MAIL FROM:<a@remote.test>'), /^250 /);
    assert.match(await c.cmd('RCPT TO:<bob@example.test>'), /^250 /);
    assert.match(await c.cmd('DATA'), /^354 /);
    const reply = await c.cmd('From: a@remote.test\r\nFrom : b@remote.test\r\nSubject: two From fields\r\n\r\nbody\r\n.');
    assert.match(reply, /^550 5\.7\.1 /);
    // The budget is spent: the next refusal is the 421 that ends the session.
    // (a forged local sender, refused at MAIL with 550 5.7.1 on a fresh budget)
    assert.match(await c.cmd('MAIL FROM:<ceo@example.test>'), /^421 /);
  } finally {
    c.close();
  }
});
