// Mail streamed into a daemon whose data dir sits on the power-cut filesystem, the power cut at
// a random moment, the daemon started again on what survived, again and again. Used by the
// power-cut tests (a few cuts, in `make test`) and the soak (hundreds, `make soak-powercut`).
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDaemon } from './daemon.js';
import { PowerCutFs, type CutReport } from './powercut-fs.js';
import { RawSmtp } from './smtp-client.js';

export const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The power-cut tests' `skip`: FUSE mounts need root (CI runs as root). */
export const needsRoot = process.getuid?.() !== 0 ? 'FUSE mounts need root' : false;

/** Local mailboxes in two domains, and every fourth message to a remote domain (queued). */
export const MIXED_LOCAL = ['bob@example.test', 'carol@example.test', 'dave@example2.test'];
export const mixedRcpt = (i: number): string => (i % 4 === 3 ? `partner${i % 7}@remote.test` : MIXED_LOCAL[i % MIXED_LOCAL.length]!);
export const isMixedLocal = (a: Acked): boolean => !a.to.endsWith('@remote.test');

/** A message that got its 250: the token in its Subject and the id the 250 named. */
export interface Acked {
  token: string;
  id: string;
  /** Where it was addressed: a local mailbox, or a remote domain (it then sits in the queue or reaches the remote MTA). */
  to: string;
  /** When the sender read the 250 (Date.now()): a test that must tell which 250s came before some moment. */
  at?: number;
}

/** The figures the issue asks for, plus what the cuts threw away. */
export interface PowerCutFigures {
  cuts: number;
  acknowledged: number;
  lost: number;
  duplicated: number;
  /** Summed over the cuts: data written but not yet fsynced, and names not yet synced in their folder. */
  bytesDropped: number;
  entriesDropped: number;
  entriesRevived: number;
  /** Cuts that landed while something unsynced was pending (a cut between two writes drops nothing). */
  cutsThatDropped: number;
}

export function figuresLine(name: string, f: PowerCutFigures): string {
  return `# powercut ${name}: cuts ${f.cuts}, acknowledged ${f.acknowledged}, lost ${f.lost}, duplicated ${f.duplicated}` +
    ` (cuts that dropped unsynced data ${f.cutsThatDropped}; dropped ${f.bytesDropped} bytes, ${f.entriesDropped} names; revived ${f.entriesRevived} names)\n`;
}

/**
 * SMTP senders that loop MAIL/RCPT/DATA until stopped, recording every 250. Each message
 * carries a unique token in its Subject. `rcpt(i)` picks the recipient of message i.
 */
export class MailStream {
  readonly acked: Acked[] = [];
  private stopped = false;
  private sent = 0;
  /** Connections still sending. */
  private senders = 0;
  private readonly running: Promise<void>[] = [];

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly from: string,
    private readonly clientAddress: string,
    private readonly rcpt: (i: number) => string,
    private readonly body: (token: string) => string = (token) => `Subject: ${token}\r\nFrom: <pc@example.test>\r\nMessage-ID: <${token}@pc.example.test>\r\n\r\n${'a line of the message body\r\n'.repeat(30)}`,
  ) {}

  start(connections: number, tag: string): void {
    for (let n = 0; n < connections; n++) this.running.push(this.sender(`${tag}-${n}`));
  }

  /**
   * Resolves once `n` messages got their 250; throws when every connection has ended first or
   * after `timeoutMs`, with what the daemon's answers were, rather than waiting for ever.
   */
  async waitAcked(n: number, timeoutMs = 120_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.acked.length < n) {
      if (this.senders === 0 && this.running.length > 0) throw new Error(`every connection ended after ${this.acked.length} of ${n} acknowledged: ${this.lastRefusal}`);
      if (Date.now() > until) throw new Error(`${this.acked.length} of ${n} acknowledged in ${timeoutMs} ms: ${this.lastRefusal}`);
      await pause(5);
    }
  }

  /** The last answer that ended a connection (for an error message). */
  private lastRefusal = '';

  private async sender(tag: string): Promise<void> {
    this.senders++;
    try {
      await this.send(tag);
    } finally {
      this.senders--;
    }
  }

  private async send(tag: string): Promise<void> {
    let c: RawSmtp;
    try {
      c = await RawSmtp.open(this.host, this.port, this.clientAddress);
      await c.reply();
      await c.cmd('EHLO pc.example.test');
    } catch (err) {
      this.lastRefusal = `connect: ${(err as Error).message}`;
      return;
    }
    try {
      for (let i = 0; !this.stopped; i++) {
        const token = `pc-${tag}-${i}-${Math.random().toString(36).slice(2, 10)}`;
        // Numbered across all the connections, so the mix of recipients holds in a short run.
        const to = this.rcpt(this.sent++);
        const mail = await c.cmd(`MAIL FROM:<${this.from}>`);
        if (!mail.startsWith('250')) return void (this.lastRefusal = `MAIL: ${mail}`);
        const rcptReply = await c.cmd(`RCPT TO:<${to}>`);
        if (!rcptReply.startsWith('250')) return void (this.lastRefusal = `RCPT ${to}: ${rcptReply}`);
        const r = await c.data(this.body(token));
        const m = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(r);
        if (!m) return void (this.lastRefusal = `DATA: ${r}`);
        this.acked.push({ token, id: m[1]!, to, at: Date.now() });
      }
    } catch {
      // The daemon died under the connection: what got a 250 is recorded.
    } finally {
      c.close();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }
}

/**
 * Every Subject token in a Maildir (new and cur), with how many copies of each. `seen` caches
 * file name -> token across calls (a Maildir file never changes under its name), so a soak
 * with hundreds of checks reads each message once.
 */
export async function maildirTokens(dataDir: string, address: string, seen = new Map<string, string | null>()): Promise<Map<string, number>> {
  const [user, domain] = address.split('@') as [string, string];
  const out = new Map<string, number>();
  for (const sub of ['new', 'cur']) {
    const dir = join(dataDir, 'mail', domain, user, 'Maildir', sub);
    for (const n of await readdir(dir).catch(() => [] as string[])) {
      const key = join(dir, n);
      let token = seen.get(key);
      if (token === undefined) {
        const text = await readFile(key, 'latin1').catch(() => '');
        token = /^Subject: (\S+)\r?$/m.exec(text)?.[1] ?? null;
        seen.set(key, token);
      }
      if (token) out.set(token, (out.get(token) ?? 0) + 1);
    }
  }
  return out;
}

/** Waits until the spool has routed everything it holds (delivered or queued). */
export async function waitRouted(d: TestDaemon, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await d.cli(['status', '--json']);
    if (r.code === 0 && (JSON.parse(r.stdout) as { spoolPending: number }).spoolPending === 0) return;
    if (Date.now() > until) throw new Error(`the spool never drained: ${r.stdout} ${r.stderr}`);
    await pause(100);
  }
}

/** The ids in the outbound queue. */
export async function queuedIds(d: TestDaemon): Promise<Set<string>> {
  const r = await d.cli(['queue', 'list', '--json']);
  if (r.code !== 0) throw new Error(`queue list: ${r.stderr}`);
  return new Set((JSON.parse(r.stdout) as { id: string }[]).map((e) => e.id));
}

/** A daemon on the power-cut filesystem, with the cut, the restart and the running tally. */
export class PowerCutRig {
  fs: PowerCutFs | null = null;
  readonly figures: PowerCutFigures = { cuts: 0, acknowledged: 0, lost: 0, duplicated: 0, bytesDropped: 0, entriesDropped: 0, entriesRevived: 0, cutsThatDropped: 0 };
  readonly reports: CutReport[] = [];
  /** Maildir file name -> Subject token, for tally (see maildirTokens); emptied at every cut. */
  readonly maildirSeen = new Map<string, string | null>();

  private constructor(
    readonly d: TestDaemon,
    readonly root: string,
    readonly backing: string,
    readonly mnt: string,
  ) {}

  /** A daemon whose data dir is the mount of `backing` (empty: a blank data disk). */
  static async create(host: string, config: Record<string, unknown>): Promise<PowerCutRig> {
    const root = await mkdtemp(join(tmpdir(), 'mlsd-powercut-'));
    const backing = join(root, 'disk');
    const mnt = join(root, 'data');
    await mkdir(backing);
    const d = await TestDaemon.create({ host, dataDir: mnt, config });
    return new PowerCutRig(d, root, backing, mnt);
  }

  /** Power on: the disk mounted, the daemon started on it (it must start without repair). */
  async powerOn(): Promise<void> {
    await this.mount();
    await this.d.start();
  }

  /** The disk alone (for a cut during the daemon's start-up: then startDaemon() and cut()). */
  async mount(): Promise<void> {
    this.fs = await PowerCutFs.mount(this.backing, this.mnt);
  }

  /** Starts the daemon on the mounted disk; settles when it is ready, or rejects if it died first. */
  startDaemon(): Promise<void> {
    const started = this.d.start();
    started.catch(() => undefined);
    return started;
  }

  /** The power goes: what was not durable is gone, and so is the daemon. */
  async cut(): Promise<CutReport> {
    const fs = this.fs!;
    const r = await fs.powerCut([this.d.proc!]);
    this.fs = null;
    this.maildirSeen.clear();
    this.reports.push(r);
    this.figures.cuts++;
    this.figures.bytesDropped += r.bytesLost;
    this.figures.entriesDropped += r.entriesLost;
    this.figures.entriesRevived += r.entriesRevived;
    if (r.bytesLost + r.entriesLost + r.entriesRevived > 0) this.figures.cutsThatDropped++;
    return r;
  }

  /** What the daemon logged at error level or worse since it last started (pino: 50 and up). */
  errorLogs(): string[] {
    return this.d.logs.filter((l) => typeof l.level === 'number' && l.level >= 50).map((l) => JSON.stringify(l));
  }

  /** An orderly stop: the daemon by SIGTERM, then the mount with everything on it. */
  async shutdown(): Promise<void> {
    await this.d.stop();
    await this.fs?.unmount();
    this.fs = null;
  }

  async cleanup(): Promise<void> {
    // The daemon first gets its SIGKILL, then the mount goes: a daemon waiting on a frozen
    // mount dies only once the mount answers.
    const dead = this.d.kill9().catch(() => undefined);
    await this.fs?.destroy().catch(() => undefined);
    await dead;
    await rm(this.root, { recursive: true, force: true });
    await this.d.cleanup();
  }
}

/**
 * Checks the acknowledged messages against what the daemon holds now: each local one in its
 * Maildir, each remote one in the queue (or, with `delivered`, at the remote end). Counts the
 * lost and the duplicated into the figures and returns the tokens lost.
 */
export async function tally(
  rig: PowerCutRig,
  acked: Acked[],
  o: { local: (a: Acked) => boolean; delivered?: () => Promise<Map<string, number>> },
): Promise<string[]> {
  const mailboxes = new Map<string, Map<string, number>>();
  const queued = await queuedIds(rig.d);
  const remote = o.delivered ? await o.delivered() : new Map<string, number>();
  const lost: string[] = [];
  let duplicated = 0;
  for (const a of acked) {
    let copies: number;
    if (o.local(a)) {
      let box = mailboxes.get(a.to);
      // Read from the backing folder: the same files as the mount shows, without FUSE's cost.
      if (!box) mailboxes.set(a.to, (box = await maildirTokens(rig.backing, a.to, rig.maildirSeen)));
      copies = box.get(a.token) ?? 0;
    } else {
      copies = (remote.get(a.token) ?? 0) + (queued.has(a.id) ? 1 : 0);
    }
    if (copies === 0) lost.push(`${a.token} (${a.id} to ${a.to})`);
    if (copies > 1) duplicated++;
  }
  rig.figures.acknowledged = acked.length;
  rig.figures.lost = lost.length;
  rig.figures.duplicated = duplicated;
  return lost;
}
