import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon, eventually } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// Issue 12 finding 2: the size limit is enforced while the message streams in, and the bytes
// that DATA transfers in progress hold are bounded. Daemon on 127.0.101.1, clients .2 to .5.
const HOST = '127.0.101.1';
const MiB = 1024 * 1024;
const LIMIT = 1 * MiB;
// Room for one message of the maximum size and a half: a second large one does not fit.
const IN_FLIGHT = 1.5 * MiB;
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({ host: HOST, config: { smtp: { maxMessageBytes: LIMIT, maxDataBytesInFlight: IN_FLIGHT } } });
  await d.start();
  await d.addUser('bob@example.test', 'bob-secret-1');
});
after(async () => d.cleanup());

const spoolDir = () => join(d.dataDir, 'spool');

/** The .eml files in the spool and their sizes. */
async function spoolFiles(): Promise<{ name: string; size: number }[]> {
  const names = (await readdir(spoolDir()).catch(() => [] as string[])).filter((n) => n.endsWith('.eml'));
  const out: { name: string; size: number }[] = [];
  for (const name of names) {
    const s = await stat(join(spoolDir(), name)).catch(() => null);
    if (s) out.push({ name, size: s.size });
  }
  return out;
}

/** A message body of about `bytes` bytes, in 78-character lines. */
function body(bytes: number, subject: string): Buffer {
  const line = 'x'.repeat(76) + '\r\n';
  return Buffer.from(`Subject: ${subject}\r\n\r\n` + line.repeat(Math.ceil(bytes / line.length)));
}

async function open(client: string): Promise<RawSmtp> {
  const c = await RawSmtp.open(HOST, d.ports.mx, client);
  assert.match(await c.reply(), /^220 /);
  assert.match(await c.cmd('EHLO client.test'), /^250/);
  return c;
}

async function envelope(c: RawSmtp): Promise<void> {
  assert.equal(await c.cmd('MAIL FROM:<sender@remote.test>'), '250 2.1.0 Accepted');
  assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5 Accepted');
  assert.match(await c.cmd('DATA'), /^354 /);
}

test('a 40 MiB DATA over a 1 MiB limit: the spool never holds much more than the limit, 552 5.3.4, nothing kept, the session goes on', async (t) => {
  const c = await open('127.0.101.2');
  await envelope(c);
  // Sample the spool folder's size while the transfer runs.
  let peak = 0;
  let samples = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const total = (await spoolFiles()).reduce((n, f) => n + f.size, 0);
      peak = Math.max(peak, total);
      samples++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  c.writeRaw(body(40 * MiB, 'huge'));
  c.writeRaw('.\r\n');
  const reply = await c.reply(120_000);
  sampling = false;
  await sampler;
  t.diagnostic(`spool peak ${peak} bytes over ${samples} samples`);
  assert.match(reply, /^552 5\.3\.4 /);
  assert.ok(samples > 3, `the spool was sampled during the transfer (${samples} samples)`);
  assert.ok(peak < 2 * LIMIT, `the spool held at most ${peak} bytes during a 40 MiB transfer (limit ${LIMIT})`);
  // Nothing of it is left in the spool, and nothing was queued or delivered.
  assert.deepEqual(await spoolFiles(), []);
  assert.deepEqual(await d.mailbox('bob'), []);
  // The session is still in step: RSET, then a normal message is accepted.
  assert.equal(await c.cmd('RSET'), '250 2.0.0 Flushed');
  await envelope(c);
  c.writeRaw(body(1000, 'after the big one'));
  c.writeRaw('.\r\n');
  assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as /);
  await eventually('the small message delivered', async () => (await d.mailbox('bob')).length === 1);
  assert.match((await d.mailbox('bob'))[0]!, /Subject: after the big one/);
  c.close();
});

test('concurrent DATA transfers share smtp.maxDataBytesInFlight: the one that would pass it gets 452 4.3.1, the other is kept, and a retry later goes through', async () => {
  const before = (await d.mailbox('bob')).length;
  // A holds most of a maximum-size message in flight and waits before its final dot.
  const a = await open('127.0.101.3');
  await envelope(a);
  a.writeRaw(body(LIMIT - 64 * 1024, 'first, large'));
  await eventually('A holds its bytes in the spool', async () => (await spoolFiles()).some((f) => f.size >= LIMIT - 192 * 1024), 30_000);
  // B's message alone fits the size limit, but not the budget beside A's.
  const b = await open('127.0.101.4');
  await envelope(b);
  b.writeRaw(body(800 * 1024, 'second, refused for now'));
  b.writeRaw('.\r\n');
  assert.equal(await b.reply(60_000), '452 4.3.1 Insufficient system storage');
  await d.waitFor((l) => l.evt === 'smtp.data.budget');
  // B's partial file is gone at once; only A's is in the spool.
  assert.equal((await spoolFiles()).length, 1);
  // A finishes and is kept.
  a.writeRaw('.\r\n');
  assert.match(await a.reply(60_000), /^250 2\.0\.0 Ok: queued as /);
  // B tries again (same session): the budget is free again.
  await envelope(b);
  b.writeRaw(body(800 * 1024, 'second, retried'));
  b.writeRaw('.\r\n');
  assert.match(await b.reply(60_000), /^250 2\.0\.0 Ok: queued as /);
  await eventually('both delivered', async () => (await d.mailbox('bob')).length === before + 2, 30_000);
  const subjects = (await d.mailbox('bob')).map((m) => /Subject: (.*)/.exec(m)?.[1]).sort();
  assert.ok(subjects.includes('first, large') && subjects.includes('second, retried') && !subjects.includes('second, refused for now'));
  a.close();
  b.close();
});

test('smtp.maxDataBytesInFlight below smtp.maxMessageBytes is refused with the key named', async () => {
  const r = await d.cli(['config', 'set', 'smtp.maxDataBytesInFlight', String(LIMIT - 1)]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr + r.stdout, /smtp\.maxDataBytesInFlight/);
});
