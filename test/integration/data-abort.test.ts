import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon, eventually } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// Clients that leave in the middle of a transaction must not leave anything behind: not the
// bytes their DATA held of smtp.maxDataBytesInFlight, not their partial spool file, not their
// session bookkeeping. Daemon on 127.0.110.1; each client has its own address in 127.0.110.0/24.
const HOST = '127.0.110.1';
const KiB = 1024;
const MiB = 1024 * KiB;
const LIMIT = 1 * MiB;
const IN_FLIGHT = 2 * MiB;
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({
    host: HOST,
    config: {
      smtp: { maxMessageBytes: LIMIT, maxDataBytesInFlight: IN_FLIGHT },
      // Every AUTH waits its turn for the one password check at a time; no lock cuts the queue short.
      auth: { maxConcurrentChecks: 1, maxQueuedChecks: 100, lockout: { maxFailures: 1000 } },
    },
  });
  await d.start();
  await d.addUser('bob@example.test', 'bob-secret-1');
});
after(async () => d.cleanup());

async function spoolFiles(): Promise<string[]> {
  return (await readdir(join(d.dataDir, 'spool')).catch(() => [] as string[])).filter((n) => n.endsWith('.eml'));
}

/** What `mlsd status --json` says about the SMTP layer. */
async function smtpStatus(): Promise<{ smtpSessionsOpen: number; smtpDataBytesInFlight: number; smtpDataBytesInFlightMax: number }> {
  const r = await d.cli(['status', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** A message body of about `bytes` bytes, in 78-character lines. */
function body(bytes: number, subject: string): Buffer {
  const line = 'x'.repeat(76) + '\r\n';
  return Buffer.from(`Subject: ${subject}\r\n\r\n` + line.repeat(Math.ceil(bytes / line.length)));
}

async function startData(client: string): Promise<RawSmtp> {
  const c = await RawSmtp.open(HOST, d.ports.mx, client);
  assert.match(await c.reply(), /^220 /);
  assert.match(await c.cmd('EHLO client.test'), /^250/);
  assert.equal(await c.cmd('MAIL FROM:<sender@remote.test>'), '250 2.1.0 Accepted');
  assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5 Accepted');
  assert.match(await c.cmd('DATA'), /^354 /);
  return c;
}

test('clients that drop mid-DATA give their bytes back: after more aborted transfers than smtp.maxDataBytesInFlight could hold, a 900 KiB message still gets 250, and no partial file is left', async (t) => {
  // Five aborted transfers of 900 KiB: 4.4 MiB against a 2 MiB budget.
  for (let i = 0; i < 5; i++) {
    const c = await startData(`127.0.110.${10 + i}`);
    c.writeRaw(body(900 * KiB, `aborted ${i}`));
    // All of it reaches the daemon before the close, so each transfer held its share.
    await c.flushed();
    c.close();
    await eventually(`the daemon saw client ${i} leave`, async () => (await smtpStatus()).smtpSessionsOpen === 0, 30_000);
  }
  // Nothing of the aborted transfers stays in the spool, and nothing was delivered.
  await eventually('no partial message in the spool', async () => (await spoolFiles()).length === 0, 30_000);
  assert.deepEqual(await d.mailbox('bob'), []);
  // A normal client now sends a message as large as each aborted one.
  const c = await startData('127.0.110.20');
  c.writeRaw(body(900 * KiB, 'after the aborts'));
  c.writeRaw('.\r\n');
  assert.match(await c.reply(60_000), /^250 2\.0\.0 Ok: queued as /);
  assert.equal(await c.cmd('QUIT'), '221 2.0.0 Bye');
  c.close();
  await eventually('the message delivered', async () => (await d.mailbox('bob')).length === 1, 30_000);
  assert.match((await d.mailbox('bob'))[0]!, /Subject: after the aborts/);
  assert.equal(d.proc?.exitCode, null, 'the daemon is still running');
  // mlsd status shows the budget free again once no DATA is in progress.
  const held = (await smtpStatus()).smtpDataBytesInFlight;
  t.diagnostic(`DATA bytes in flight at the end: ${held}`);
  assert.equal(held, 0, 'no DATA is in progress, so none of the budget is held');
  assert.ok(!d.logs.some((l) => l.evt === 'smtp.data.budget'), 'no DATA was refused for the budget');
  // Each abort is logged as the client's doing, not as a fault of the daemon.
  assert.ok(d.logs.filter((l) => l.evt === 'smtp.data.abort').length >= 5, 'every aborted transfer is logged as smtp.data.abort');
  assert.ok(!d.logs.some((l) => l.evt === 'smtp.data.error'), 'no aborted transfer is logged as a storage error');
});

test('AUTHs whose clients left while they waited for a password check leave no session behind (mlsd status: smtp sessions open returns to 0)', async () => {
  const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');
  const N = 20;
  // Every client logs in over implicit TLS, each from its own address and with its own wrong password.
  const clients = await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      const c = await RawSmtp.open(HOST, d.ports.smtps, `127.0.110.${100 + i}`, true);
      assert.match(await c.reply(), /^220 /);
      assert.match(await c.cmd('EHLO client.test'), /^250/);
      return c;
    }),
  );
  const refusedBefore = d.logs.filter((l) => l.evt === 'smtp.refuse' && l.stage === 'auth').length;
  // All AUTHs arrive together (one password check at a time, the rest queue), and every
  // client leaves before its reply.
  for (const [i, c] of clients.entries()) c.send(`AUTH PLAIN ${plain('bob@example.test', `wrong-${i}`)}`);
  await Promise.all(clients.map((c) => c.flushed()));
  for (const c of clients) c.close();
  // Every check ran and was refused, most of them after their client had gone.
  await eventually('every AUTH decided', async () => d.logs.filter((l) => l.evt === 'smtp.refuse' && l.stage === 'auth').length - refusedBefore >= N, 60_000);
  await eventually('no session is left open', async () => (await smtpStatus()).smtpSessionsOpen === 0, 10_000);
  // And it stays so (nothing is re-created once the last decisions are out).
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await smtpStatus()).smtpSessionsOpen, 0);
  // The text form names it for an administrator.
  assert.match((await d.cli(['status'])).stdout, /smtp sessions open: 0/);
});
