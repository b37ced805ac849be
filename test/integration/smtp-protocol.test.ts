import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// Exact wire replies, pinned with a line-level client. Daemon on 127.0.6.1, client 127.0.6.2.
const HOST = '127.0.6.1';
const CLIENT = '127.0.6.2';
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({ host: HOST, config: { smtp: { maxMessageBytes: 20000, maxRecipients: 3, maxBadCommands: 5 } } });
  await d.start();
  for (const u of ['bob', 'carol', 'dave', 'erin']) await d.addUser(`${u}@example.test`, `${u}-secret-1`);
});
after(async () => d.cleanup());

const open = async () => {
  const c = await RawSmtp.open(HOST, d.ports.mx, CLIENT);
  assert.match(await c.reply(), /^220 mail\.example\.test ESMTP mlsd$/);
  return c;
};

test('EHLO advertises SIZE, ENHANCEDSTATUSCODES, STARTTLS and no AUTH in clear text', async () => {
  const c = await open();
  const ehlo = await c.cmd('EHLO client.test');
  assert.match(ehlo, /250-ENHANCEDSTATUSCODES/);
  assert.match(ehlo, /250-STARTTLS/);
  assert.match(ehlo, /250 SIZE 20000$/);
  assert.doesNotMatch(ehlo, /AUTH/);
  assert.match(await c.cmd('AUTH PLAIN AGJvYkBleGFtcGxlLnRlc3QAYm9iLXNlY3JldC0x'), /^538 5\.7\.0 Error: Must issue a STARTTLS command first$/);
  await c.starttls();
  assert.match(await c.cmd('EHLO client.test'), /250-AUTH PLAIN LOGIN/);
  c.close();
});

test('a full transaction gets the exact replies of the catalogue', async () => {
  const c = await open();
  await c.cmd('EHLO client.test');
  assert.equal(await c.cmd('MAIL FROM:<a@remote.test>'), '250 2.1.0 Accepted');
  assert.equal(await c.cmd('RCPT TO:<x@remote.test>'), '554 5.7.1 Relay access denied');
  assert.equal(await c.cmd('RCPT TO:<nobody@example.test>'), '550 5.1.1 Recipient address rejected: User unknown in local recipient table');
  assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5 Accepted');
  assert.match(await c.data('Subject: t\r\n\r\nhello'), /^250 2\.0\.0 Ok: queued as [0-9A-Z]+$/);
  assert.equal(await c.cmd('QUIT'), '221 2.0.0 Bye');
  c.close();
});

test('size limit: SIZE= too big is refused at MAIL, a body too big gets 552 5.3.4 and is not kept', async () => {
  const c = await open();
  await c.cmd('EHLO client.test');
  assert.match(await c.cmd('MAIL FROM:<a@remote.test> SIZE=30000'), /^552 5\.3\.4 /);
  assert.equal(await c.cmd('MAIL FROM:<a@remote.test>'), '250 2.1.0 Accepted');
  assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5 Accepted');
  const big = 'Subject: big\r\n\r\n' + ('x'.repeat(70) + '\r\n').repeat(400);
  assert.match(await c.data(big), /^552 5\.3\.4 Error: message exceeds fixed maximum message size/);
  // the session goes on normally
  assert.equal(await c.cmd('MAIL FROM:<a@remote.test>'), '250 2.1.0 Accepted');
  c.close();
  const q = JSON.parse((await d.cli(['queue', 'list', '--json'])).stdout) as unknown[];
  assert.equal(q.length, 0);
});

test('size and recipient limits set with the CLI apply to the running listeners', async () => {
  assert.equal((await d.cli(['config', 'set', 'smtp.maxMessageBytes', '30000'])).code, 0);
  assert.equal((await d.cli(['config', 'set', 'smtp.maxRecipients', '1'])).code, 0);
  try {
    const c = await open();
    assert.match(await c.cmd('EHLO client.test'), /250 SIZE 30000$/);
    await c.cmd('MAIL FROM:<a@remote.test>');
    assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5 Accepted');
    assert.equal(await c.cmd('RCPT TO:<carol@example.test>'), '452 4.5.3 Error: too many recipients');
    c.close();
  } finally {
    await d.cli(['config', 'set', 'smtp.maxMessageBytes', '20000']);
    await d.cli(['config', 'set', 'smtp.maxRecipients', '3']);
  }
});

test('too many recipients: 452 4.5.3 past smtp.maxRecipients', async () => {
  const c = await open();
  await c.cmd('EHLO client.test');
  await c.cmd('MAIL FROM:<a@remote.test>');
  for (const u of ['bob', 'carol', 'dave']) assert.equal(await c.cmd(`RCPT TO:<${u}@example.test>`), '250 2.1.5 Accepted');
  assert.equal(await c.cmd('RCPT TO:<erin@example.test>'), '452 4.5.3 Error: too many recipients');
  c.close();
});

test('garbage gets 5xx, and repeated errors end the session with 421; the daemon stays up', async () => {
  const c = await open();
  assert.equal(await c.cmd('HELLO?'), '500 5.5.2 Error: command not recognized');
  assert.equal(await c.cmd('MAIL FROM:<a@remote.test>'), '503 5.5.1 Error: send HELO/EHLO first');
  await c.cmd('EHLO client.test');
  assert.match(await c.cmd('MAIL FROM:garbage'), /^501 /);
  assert.equal(await c.cmd('MAIL FROM:<a@remote.test>'), '250 2.1.0 Accepted');
  for (let i = 0; i < 4; i++) assert.equal(await c.cmd(`RCPT TO:<x${i}@remote.test>`), '554 5.7.1 Relay access denied');
  assert.equal(await c.cmd('RCPT TO:<x9@remote.test>'), '421 4.7.0 Error: too many errors, closing connection');
  await c.reply(2000).catch(() => '');
  assert.equal(c.closed, true);
  // binary junk and an over-long line: refused, never a crash
  const j = await open();
  j.writeRaw(Buffer.from([0, 1, 2, 255, 254, 13, 10]));
  assert.match(await j.reply(), /^5\d\d /);
  j.send('NOOP ' + 'a'.repeat(10000));
  assert.match(await j.reply(), /^5\d\d |^421 |\(closed\)/);
  j.close();
  const again = await open();
  assert.equal(await again.cmd('NOOP'), '250 2.0.0 OK');
  again.close();
  assert.equal(d.proc!.exitCode, null);
});

test('every refusal is logged once, including the ones smtp-server makes itself', async () => {
  const LOGGED = '127.0.6.3'; // a client address of its own, to find its log lines
  const c = await RawSmtp.open(HOST, d.ports.mx, LOGGED);
  await c.reply();
  assert.equal(await c.cmd('FOO'), '500 5.5.2 Error: command not recognized');
  await c.cmd('EHLO client.test');
  await c.cmd('MAIL FROM:<a@remote.test> SIZE=999999');
  await c.cmd('MAIL FROM:<a@remote.test>');
  assert.equal(await c.cmd('RCPT TO:<y@remote.test>'), '554 5.7.1 Relay access denied');
  c.close();
  const proto = await d.waitFor((l) => l.evt === 'smtp.refuse' && l.ip === LOGGED && l.reply === '500 5.5.2 Error: command not recognized');
  assert.equal(proto.stage, 'protocol');
  assert.equal(proto.listener, 'mx');
  const size = await d.waitFor((l) => l.evt === 'smtp.refuse' && l.cid === proto.cid && typeof l.reply === 'string' && l.reply.startsWith('552 5.3.4'));
  assert.equal(size.ip, LOGGED);
  await d.waitFor((l) => l.evt === 'smtp.refuse' && l.cid === proto.cid && l.rcpt === 'y@remote.test');
  const relay = d.logs.filter((l) => l.evt === 'smtp.refuse' && l.cid === proto.cid && l.reply === '554 5.7.1 Relay access denied');
  assert.equal(relay.length, 1);
  assert.equal(relay[0]!.stage, 'rcpt');
});

test('ten unknown commands disconnect with 421', async () => {
  const c = await open();
  let last = '';
  for (let i = 0; i < 10; i++) last = await c.cmd(`XYZZY${i}`);
  assert.match(last, /^421 4\.\d\.\d Error: too many unrecognized commands$/);
});
