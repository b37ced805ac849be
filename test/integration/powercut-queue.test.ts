// Power cuts of the outbound queue: mail from a local sender to remote domains streams in and
// the queue delivers it to remote MTAs on loopback while the power is cut at random moments.
// One remote accepts, one refuses every recipient for good (5xx at RCPT: the daemon must mail a
// DSN to the sender's local mailbox), one defers (4xx: the message stays queued). After each
// restart: every 250 reached the remote (copies counted) or is still queued; every refused one
// has its DSN in the sender's Maildir (or is still queued, its DSN to come); a lost DSN is a loss.
// Every other cut comes while no mail arrives: the accepting and refusing MX hosts' addresses
// first point at a dead one (mail piles up deferred), then at the live ones, the queue is
// flushed, and the power goes while the queue works the backlog.
// Addresses 127.0.161.x: .1 mlsd, .2 the sending PC, .53 dnsmasq, .25 the accepting MX,
// .26 the refusing MX, .27 the deferring MX; 127.0.162.99 the dead address. Needs root (FUSE).
// POWERCUT_CUTS sets the cuts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DnsServer } from '../helpers/dns.js';
import { SmtpSink } from '../helpers/smtp-sink.js';
import type { QueueEntry } from '../../src/delivery/queue.js';
import { figuresLine, MailStream, pause, PowerCutRig, queuedIds, tally, waitRouted, type Acked, needsRoot } from '../helpers/powercut-mail.js';
import type { TestDaemon } from '../helpers/daemon.js';
import { destroyAllMounts } from '../helpers/powercut-fs.js';

const HOST = '127.0.161.1';
const PC = '127.0.161.2';
const ACCEPTING = '127.0.161.25';
const REFUSING = '127.0.161.26';
const DEFERRING = '127.0.161.27';
const DEAD = '127.0.162.99';
const CUTS = Number(process.env.POWERCUT_CUTS ?? 4);
const SENDER = 'alice@example.test';
const skip = needsRoot;
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await destroyAllMounts();
});

// Six in ten accepted, three refused (a DSN each), one deferred.
const rcpt = (i: number): string => {
  const k = i % 10;
  if (k < 6) return `partner${k}@accept.test`;
  if (k < 9) return `nobody${k}@refuse.test`;
  return `busy@defer.test`;
};
const kind = (a: Acked): 'accepted' | 'refused' | 'deferred' => (a.to.endsWith('@accept.test') ? 'accepted' : a.to.endsWith('@refuse.test') ? 'refused' : 'deferred');

/** Subject tokens of the messages a sink took (complete transactions only), with copies. */
async function sinkTokens(sink: SmtpSink): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const d of await sink.dumps()) {
    const m = /^Subject: (pc-\S+)$/m.exec(d.message);
    if (m) out.set(m[1]!, (out.get(m[1]!) ?? 0) + 1);
  }
  return out;
}

/**
 * The DSNs in a local mailbox (new and cur): the Subject token of the original each one
 * reports (from its text/rfc822-headers part) and the recipient it names, with copies.
 */
async function dsnTokens(dataDir: string, address: string): Promise<Map<string, { copies: number; recipients: Set<string> }>> {
  const [user, domain] = address.split('@') as [string, string];
  const out = new Map<string, { copies: number; recipients: Set<string> }>();
  for (const sub of ['new', 'cur']) {
    const dir = join(dataDir, 'mail', domain, user, 'Maildir', sub);
    for (const n of await readdir(dir).catch(() => [] as string[])) {
      const text = await readFile(join(dir, n), 'latin1');
      if (!text.includes('report-type=delivery-status')) continue;
      const token = /^Subject: (pc-\S+)\r?$/m.exec(text)?.[1];
      if (!token) continue;
      const e = out.get(token) ?? { copies: 0, recipients: new Set<string>() };
      e.copies++;
      for (const m of text.matchAll(/^Final-Recipient: rfc822; ?(\S+)\r?$/gm)) e.recipients.add(m[1]!.toLowerCase());
      out.set(token, e);
    }
  }
  return out;
}

async function queueEntries(d: TestDaemon): Promise<QueueEntry[]> {
  const r = await d.cli(['queue', 'list', '--json']);
  if (r.code !== 0) throw new Error(`queue list: ${r.stderr}`);
  return JSON.parse(r.stdout) as QueueEntry[];
}

/**
 * Lets the daemon finish: the spool routed, every waiting recipient made due (queue flush),
 * and then waits until the queue holds nothing but messages the deferring MX keeps refusing
 * for now (each already tried since the flush), and the DSNs written meanwhile are routed.
 */
async function settle(d: TestDaemon, timeoutMs = 60_000): Promise<void> {
  await waitRouted(d, timeoutMs);
  const flushedAt = Date.now();
  const f = await d.cli(['queue', 'flush']);
  if (f.code !== 0) throw new Error(`queue flush: ${f.stderr}`);
  const until = Date.now() + timeoutMs;
  for (;;) {
    const q = await queueEntries(d);
    const unsettled = q.filter((e) => e.recipients.some((r) => !r.address.endsWith('@defer.test') || r.state !== 'deferred' || Date.parse(r.nextAttempt) < flushedAt));
    if (unsettled.length === 0) break;
    if (Date.now() > until) {
      const ids = new Set(unsettled.map((e) => e.id));
      const said = d.logs.filter((l) => ids.has(String(l.id)) || ids.has(String(l.dsn)));
      throw new Error(`the queue never settled: ${JSON.stringify(unsettled.slice(0, 3))}\nwhat the daemon said of them since it started: ${said.map((l) => JSON.stringify(l)).join('\n')}`);
    }
    await pause(200);
  }
  await waitRouted(d, timeoutMs);
}

test(`outbound queue, outcomes and DSNs: ${CUTS} power cuts while the queue delivers lose no 250 and no DSN`, { skip, timeout: 30 * 60_000 }, async () => {
  const dns = await DnsServer.start({
    host: '127.0.161.53',
    records: {
      mx: [
        { domain: 'accept.test', host: 'mx.accept.test', pref: 10 },
        { domain: 'refuse.test', host: 'mx.refuse.test', pref: 10 },
        { domain: 'defer.test', host: 'mx.defer.test', pref: 10 },
      ],
      // The accepting and refusing MX hosts' addresses are set at run time (setA, below).
      a: [{ name: 'mx.defer.test', ip: DEFERRING }],
    },
  });
  cleanups.push(() => dns.stop());
  const mxAt = (accept: string, refuse: string) => dns.setA([{ name: 'mx.accept.test', ip: accept }, { name: 'mx.refuse.test', ip: refuse }]);
  await mxAt(ACCEPTING, REFUSING);
  const accepting = await SmtpSink.start({ host: ACCEPTING, port: 25, dumpDir: true });
  cleanups.push(() => accepting.stop());
  const refusing = await SmtpSink.start({ host: REFUSING, port: 25, dumpDir: true, reply: 'reject-rcpt', hardReply: '550 5.1.1 Recipient address rejected: User unknown' });
  cleanups.push(() => refusing.stop());
  const deferring = await SmtpSink.start({ host: DEFERRING, port: 25, dumpDir: true, reply: 'defer-rcpt', softReply: '450 4.2.0 Mailbox busy, try later' });
  cleanups.push(() => deferring.stop());

  const rig = await PowerCutRig.create(HOST, {
    relay: { allowIps: [PC], allowRecipientDomains: [], allowAuthenticated: true },
    dns: { servers: [dns.address], timeoutSeconds: 2 },
    // Long waits: a deferred recipient is tried again by `queue flush`, not while mail streams.
    delivery: { retryBaseSeconds: 600, retryMaxSeconds: 3600 },
  });
  cleanups.push(() => rig.cleanup());
  await rig.powerOn();
  await rig.d.addUser(SENDER, 'a-long-password-1');

  const acked: Acked[] = [];
  try {
    for (let cut = 1; cut <= CUTS; cut++) {
      const backlog = cut % 2 === 0;
      // A backlog: the remote hosts unreachable (connection refused: deferred) while it builds.
      if (backlog) await mxAt(DEAD, DEAD);
      const stream = new MailStream(HOST, rig.d.ports.mx, SENDER, PC, rcpt);
      stream.start(6, `q${cut}`);
      const want = 10 + Math.floor(Math.random() * 80);
      await stream.waitAcked(want);
      if (backlog) {
        // No more mail comes in; the remote hosts are back and the queue is flushed: the cut
        // comes at a random moment while the queue alone delivers and writes outcomes and DSNs.
        await stream.stop();
        await waitRouted(rig.d);
        await mxAt(ACCEPTING, REFUSING);
        const f = await rig.d.cli(['queue', 'flush']);
        assert.equal(f.code, 0, f.stderr);
        await pause(Math.random() * 500);
      } else {
        // A cut at a random moment while mail comes in and the queue delivers it.
        await pause(Math.random() * 400);
      }
      await rig.cut();
      await stream.stop();
      acked.push(...stream.acked);
      if (backlog) {
        // Where the cut landed in the backlog (a cut after the queue had emptied tests less).
        const atRemote = await sinkTokens(accepting);
        const accepted = stream.acked.filter((a) => kind(a) === 'accepted');
        process.stdout.write(`# backlog cut ${cut}: ${accepted.filter((a) => atRemote.has(a.token)).length} of ${accepted.length} accepted messages had reached the remote\n`);
      }

      await rig.powerOn();
      await settle(rig.d);

      const remote = await sinkTokens(accepting);
      const dsns = await dsnTokens(rig.mnt, SENDER);
      // A refused recipient's DSN counts as its copy: tokens are unique, so one map serves.
      const present = new Map(remote);
      for (const [t, e] of dsns) present.set(t, (present.get(t) ?? 0) + e.copies);
      const lost = await tally(rig, acked, { local: () => false, delivered: async () => present });
      assert.deepEqual(lost, [], `after cut ${cut}: ${lost.length} of ${acked.length} acknowledged messages lost (neither at the remote, nor DSN'd, nor queued)`);

      // Each outcome where it belongs: nothing refused or deferred reached the accepting MX,
      // no DSN for a message that was accepted or is only deferred, every DSN names the refused
      // recipient, and every deferred message is still queued.
      const queued = await queuedIds(rig.d);
      for (const a of acked) {
        const k = kind(a);
        const dsn = dsns.get(a.token);
        if (k !== 'accepted') assert.equal(remote.get(a.token) ?? 0, 0, `${a.token} (${k}) reached the accepting MX`);
        if (k !== 'refused') assert.equal(dsn, undefined, `${a.token} (${k}) got a DSN`);
        if (k === 'refused' && dsn) assert.deepEqual([...dsn.recipients], [a.to], `${a.token}: its DSN names ${[...dsn.recipients].join(', ')}`);
        if (k === 'deferred') assert.ok(queued.has(a.id), `${a.token} (deferred) is not queued`);
      }
      assert.equal((await refusing.dumps()).length, 0, 'the refusing MX took a message');
    }
  } finally {
    process.stdout.write(figuresLine('outbound-queue-dsn', rig.figures));
  }
  assert.equal(rig.figures.lost, 0);
  assert.ok(acked.some((a) => kind(a) === 'refused') && acked.some((a) => kind(a) === 'deferred'), 'the stream sent no refused or no deferred mail');
  assert.ok(rig.figures.cutsThatDropped > 0, 'no cut dropped anything');
  await rig.shutdown();
});
