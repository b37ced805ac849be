// Postfix's smtp-sink as a scriptable remote MTA: it answers a fixed script (accept, or a 4xx or
// 5xx at one stage) and can dump each transaction to a file, so a test can play the remote
// side of a delivery that is accepted, deferred or bounced.
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeDir, shutDown, spawnDaemon, talk, waitUntilReady, type DaemonProcess } from './daemon-process.js';

const SMTP_SINK = '/usr/sbin/smtp-sink';

/**
 * How the sink answers. With the default reply texts (see softReply/hardReply):
 * - accept:      250 to everything; end of data: "250 2.0.0 Ok"
 * - defer-mail / reject-mail: MAIL FROM gets "450 4.3.0 Error: command failed" / "500 5.3.0 Error: command failed"
 * - defer-rcpt / reject-rcpt: each RCPT TO gets that 450 / 500 line
 * - defer-data / reject-data: the DATA command gets it (no 354, no message is sent)
 * - defer-eod / reject-eod:   354, the message is read, and the final "." gets it (the message
 *                             is still dumped: smtp-sink writes it before replying)
 * Every mode but accept also drops PIPELINING from the EHLO reply (smtp-sink's -r/-f imply -p).
 */
export type SinkReply =
  | 'accept'
  | 'defer-mail'
  | 'reject-mail'
  | 'defer-rcpt'
  | 'reject-rcpt'
  | 'defer-data'
  | 'reject-data'
  | 'defer-eod'
  | 'reject-eod';

export interface SmtpSinkOptions {
  host: string;
  port: number;
  reply?: SinkReply;
  /** Dump every transaction (smtp-sink -d) to a temp dir, for messages(). */
  dumpDir?: boolean;
  /** Greeting/EHLO name (-h). smtp-sink's default is "smtp-sink". */
  hostname?: string;
  /** The 4xx line for defer-* modes (-b), e.g. "451 4.7.1 Try again later". */
  softReply?: string;
  /** The 5xx line for reject-* modes (-B), e.g. "550 5.1.1 No such user". */
  hardReply?: string;
  /** Any other smtp-sink options, e.g. ['-w', '5'] to wait 5 s before answering DATA. */
  extraArgs?: string[];
}

/** One dumped transaction, split into smtp-sink's envelope headers and the message. */
export interface SinkDump {
  path: string;
  clientAddr: string;
  helo: string;
  mailFrom: string;
  /** RCPT TO arguments, in order, as sent ("<u@x.test>" plus any ESMTP parameters). */
  rcptTo: string[];
  /** MAIL FROM arguments as sent. */
  mailArgs: string;
  /** The message as received (LF line ends; smtp-sink's own Received: header and trailing empty
   *  line removed). */
  message: string;
  raw: Buffer;
  /** The end-of-data was seen: smtp-sink's Received: header is there and the file ends with
   *  the empty line smtp-sink appends when it closes it. */
  complete: boolean;
}

const REPLY_ARGS: Record<SinkReply, string[]> = {
  accept: [],
  'defer-mail': ['-r', 'MAIL'],
  'reject-mail': ['-f', 'MAIL'],
  'defer-rcpt': ['-r', 'RCPT'],
  'reject-rcpt': ['-f', 'RCPT'],
  'defer-data': ['-r', 'DATA'],
  'reject-data': ['-f', 'DATA'],
  'defer-eod': ['-r', '.'],
  'reject-eod': ['-f', '.'],
};

export class SmtpSink {
  private constructor(
    private readonly daemon: DaemonProcess,
    readonly host: string,
    readonly port: number,
    /** Where dumps go (null without dumpDir). */
    readonly dumpDir: string | null,
  ) {}

  static async start(opts: SmtpSinkOptions): Promise<SmtpSink> {
    const dumpDir = opts.dumpDir ? await mkdtemp(join(tmpdir(), 'mlsd-sink-')) : null;
    const args = [
      // smtp-sink refuses to run as root without -u; "root" keeps the parent-death signal
      // (a uid change would clear it) and lets it write into the root-owned dump dir.
      ...(process.getuid?.() === 0 ? ['-u', 'root'] : []),
      '-4',
      // Look like a plain MX: no AUTH, XCLIENT or XFORWARD in the EHLO reply.
      '-a', '-C', '-F',
      ...(opts.hostname ? ['-h', opts.hostname] : []),
      ...(opts.softReply ? ['-b', opts.softReply] : []),
      ...(opts.hardReply ? ['-B', opts.hardReply] : []),
      ...REPLY_ARGS[opts.reply ?? 'accept'],
      // %s (epoch seconds) then smtp-sink's random hex: one file per transaction.
      ...(dumpDir ? ['-d', join(dumpDir, '%s.')] : []),
      ...(opts.extraArgs ?? []),
      `inet:${opts.host}:${opts.port}`,
      '64',
    ];
    // Under setpriv (see spawnDaemon), so a crashed run cannot leave a sink holding a port the
    // next run wants.
    const sink = new SmtpSink(spawnDaemon('smtp-sink', SMTP_SINK, args), opts.host, opts.port, dumpDir);
    try {
      await sink.waitForGreeting(5000);
      return sink;
    } catch (err) {
      // Not stop(): if something else holds the port, waiting for it to be free would only
      // hide the real error behind a timeout.
      await sink.kill();
      if (dumpDir) await removeDir(dumpDir);
      throw err;
    }
  }

  /** The raw dump files of complete transactions (smtp-sink's X-* envelope headers, its
   *  Received: header, the message, an empty line), oldest first. Empty without dumpDir. */
  async messages(): Promise<Buffer[]> {
    return (await this.dumps()).map((d) => d.raw);
  }

  /** The complete dumps, parsed. A transaction's file exists from MAIL FROM on and is
   *  written until the final "."; those still being written are left out. */
  async dumps(): Promise<SinkDump[]> {
    if (!this.dumpDir) return [];
    // smtp-sink removes the file of a transaction that ends without its final "." (the client
    // went away): one listed here may be gone by the time it is read.
    const gone = (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    };
    const listed = await Promise.all(
      (await readdir(this.dumpDir)).map(async (n) => {
        const path = join(this.dumpDir!, n);
        const s = await stat(path).catch(gone);
        return s && { path, mtime: s.mtimeMs };
      }),
    );
    const files = listed.filter((f) => f !== null);
    files.sort((a, b) => a.mtime - b.mtime || a.path.localeCompare(b.path));
    const dumps = await Promise.all(files.map(async (f) => {
      const raw = await readFile(f.path).catch(gone);
      return raw && parseDump(f.path, raw);
    }));
    return dumps.filter((d) => d !== null && d.complete) as SinkDump[];
  }

  /** Resolves once n transactions were dumped completely. */
  async waitForMessages(n: number, timeoutMs = 10000): Promise<SinkDump[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = await this.dumps();
      if (d.length >= n) return d;
      if (Date.now() > deadline) throw new Error(`smtp-sink: ${d.length} of ${n} messages after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** What smtp-sink printed (fatal errors, -v / -c output). */
  output(): string {
    return this.daemon.output;
  }

  /** Stops the sink and resolves once host:port can be bound again, so a test can start the
   *  next sink there at once. Removes the dump dir. */
  stop(): Promise<void> {
    return shutDown(() => this.kill(), this.host, this.port, 'smtp-sink', this.dumpDir);
  }

  private kill(): Promise<void> {
    return this.daemon.terminate(3000);
  }

  private waitForGreeting(timeoutMs: number): Promise<number> {
    return waitUntilReady(this.daemon, {
      timeoutMs,
      intervalMs: 25,
      // Reads the first reply line (sending nothing before it), then says QUIT and hangs up.
      // Any complete reply line will do: with -r/-f CONNECT the greeting itself is 4xx/5xx.
      probe: async () =>
        /^\d{3}[ -]/.test(await talk(this.host, this.port, { until: (got) => got.includes('\n'), farewell: 'QUIT\r\n', timeoutMs: 1000 })),
      timeoutMessage: `smtp-sink gave no greeting on ${this.host}:${this.port}`,
    });
  }
}

function parseDump(path: string, raw: Buffer): SinkDump {
  const text = raw.toString('utf8');
  const lines = text.split('\n');
  const d: SinkDump = { path, clientAddr: '', helo: '', mailFrom: '', mailArgs: '', rcptTo: [], message: '', raw, complete: false };
  let i = 0;
  for (; i < lines.length; i++) {
    const l = lines[i]!;
    const m = /^(X-Client-Addr|X-Client-Proto|X-Helo-Args|X-Mail-Args|X-Rcpt-Args): ?(.*)$/.exec(l);
    if (!m) break;
    const v = m[2]!;
    if (m[1] === 'X-Client-Addr') d.clientAddr = v;
    else if (m[1] === 'X-Helo-Args') d.helo = v;
    else if (m[1] === 'X-Mail-Args') {
      d.mailArgs = v;
      d.mailFrom = /^<([^>]*)>/.exec(v)?.[1] ?? v;
    } else if (m[1] === 'X-Rcpt-Args') d.rcptTo.push(v);
  }
  // smtp-sink's Received: is three lines (the 2nd and 3rd folded with a tab).
  if (lines[i]?.startsWith('Received: ')) {
    i++;
    while (i < lines.length && /^[ \t]/.test(lines[i]!)) i++;
    let body = lines.slice(i).join('\n');
    d.complete = body.endsWith('\n\n');
    if (d.complete) body = body.slice(0, -1); // the empty line smtp-sink appends
    d.message = body;
  }
  return d;
}
