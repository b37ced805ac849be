import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon, eventually } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// Daemon on 127.0.11.1; an infected LAN PC at 127.0.11.5 (relay-allowed).
const HOST = '127.0.11.1';
const PC = '127.0.11.5';
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({
    host: HOST,
    config: {
      relay: { allowIps: [PC], allowRecipientDomains: [], allowAuthenticated: true },
      thresholds: { alert: true, perIpMessagesPerMinute: 2 },
      alerts: { adminEmails: ['admin@example.test'], periodMinutes: 60 },
    },
  });
  await d.start();
  await d.addUser('admin@example.test', 'admin-secret-1');
});
after(async () => d.cleanup());

async function adminMail(): Promise<string[]> {
  const dir = join(d.dataDir, 'mail', 'example.test', 'admin', 'Maildir', 'new');
  const names = await readdir(dir).catch(() => [] as string[]);
  return Promise.all(names.map((n) => readFile(join(dir, n), 'utf8')));
}

test('a tripped threshold mails the administrator once, in English and Traditional Chinese', async () => {
  const c = await RawSmtp.open(HOST, d.ports.mx, PC);
  await c.reply();
  await c.cmd('EHLO infected-pc.example.test');
  for (let i = 0; i < 6; i++) {
    const m = await c.cmd('MAIL FROM:<pc@example.test>');
    if (!m.startsWith('250')) continue;
    await c.cmd('RCPT TO:<victim@remote.test>');
    await c.data(`From: pc@example.test\r\nSubject: cheap pills ${i}\r\n\r\nbuy`);
  }
  c.close();
  // one warning (80% reached) and one trip, whatever the number of refused attempts
  for (let i = 0; i < 200 && (await adminMail()).length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  // Nothing more will arrive once the alerter has decided on every threshold event the
  // attempts raised (each was emitted before its reply) and each mail it sent is in the box.
  const mails = await eventually('an alert decision for every threshold event, and every alert mailed delivered', async () => {
    const raised = d.logs.filter((l) => l.evt === 'event' && l.ip === PC && String(l.kind).startsWith('threshold.')).length;
    const decided = d.logs.filter((l) => (l.evt === 'alert.sent' || l.evt === 'alert.suppressed') && String(l.kind).startsWith('threshold.') && String(l.key).split('\n')[1] === PC);
    const sent = decided.filter((l) => l.evt === 'alert.sent').length;
    const box = await adminMail();
    return decided.length === raised && box.length === sent && box;
  });
  const kinds = mails.map((m) => /^X-Mlsd-Event: (.+)$/m.exec(m)?.[1]?.trim()).sort();
  assert.deepEqual(kinds, ['threshold.tripped', 'threshold.warning']);
  const trip = mails.find((m) => /X-Mlsd-Event: threshold\.tripped/.test(m))!;
  assert.match(trip, /^Delivered-To: admin@example\.test\r$/m);
  assert.match(trip, /^Subject: =\?UTF-8\?/im);
  assert.match(trip, /^Auto-Submitted: auto-generated/m);
  const body = decodeBody(trip);
  assert.match(body, new RegExp(PC.replace(/\./g, '\\.')));
  assert.match(body, /thresholds\.perIpMessagesPerMinute/);
  assert.match(body, /[\u4e00-\u9fff]/); // Traditional Chinese section present
});

/** The text part of the alert, decoded from its transfer encoding. */
function decodeBody(raw: string): string {
  const [head, ...rest] = raw.split(/\r?\n\r?\n/);
  const body = rest.join('\n\n');
  if (/Content-Transfer-Encoding: base64/i.test(head!)) return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (/Content-Transfer-Encoding: quoted-printable/i.test(head!)) {
    const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return body;
}
