import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { TestDaemon } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// Issue 12 finding 11: default concurrency limits per address and per network, over real SMTP.
// Daemon on 127.1.255.3; one network is 127.1.2.0/24, the other 127.1.3.0/24. No threshold is
// configured: these are the defaults.
const HOST = '127.1.255.3';
let d: TestDaemon;
const held: Socket[] = [];

before(async () => {
  d = await TestDaemon.create({ host: HOST, config: { thresholds: { alert: false } } });
  await d.start();
});

after(async () => {
  for (const s of held) s.destroy();
  await d.cleanup();
});

/** Opens a connection and waits for its first reply line (the greeting or a refusal). */
function firstLine(localAddress: string): Promise<{ sock: Socket; line: string }> {
  return new Promise((resolve) => {
    const sock = connect({ host: HOST, port: d.ports.mx, localAddress });
    let buf = '';
    sock.on('error', () => undefined);
    sock.on('data', (b: Buffer) => {
      buf += b.toString('latin1');
      const i = buf.indexOf('\r\n');
      if (i >= 0) resolve({ sock, line: buf.slice(0, i) });
    });
    sock.on('close', () => resolve({ sock, line: buf || '(closed)' }));
  });
}

test('by default one /24 holds at most 100 open connections and one address 50: the 101st from the /24 gets 421 4.7.0 naming the network, the next /24 is not affected', async () => {
  // 10 addresses x 10: under the per-address limit, at the per-network one.
  const first = await Promise.all(Array.from({ length: 100 }, (_, i) => firstLine(`127.1.2.${1 + (i % 10)}`)));
  held.push(...first.map((f) => f.sock));
  assert.deepEqual(first.filter((f) => !f.line.startsWith('220 ')).map((f) => f.line), []);
  const over = await firstLine('127.1.2.11');
  held.push(over.sock);
  assert.equal(over.line, '421 4.7.0 Error: too many open connections from 127.1.2.0/24 (limit thresholds.perSubnetConcurrentConnections = 100), try again later');

  // The other network delivers as usual.
  const c = await RawSmtp.open(HOST, d.ports.mx, '127.1.3.1');
  assert.match(await c.reply(), /^220 /);
  assert.match(await c.cmd('EHLO other.example.net'), /^250/);
  c.close();

  // One address: 50.
  const one = await Promise.all(Array.from({ length: 50 }, () => firstLine('127.1.3.2')));
  held.push(...one.map((f) => f.sock));
  assert.deepEqual(one.filter((f) => !f.line.startsWith('220 ')).map((f) => f.line), []);
  const fiftyFirst = await firstLine('127.1.3.2');
  held.push(fiftyFirst.sock);
  assert.equal(fiftyFirst.line, '421 4.7.0 Error: too many open connections from 127.1.3.2 (limit thresholds.perIpConcurrentConnections = 50), try again later');
});
