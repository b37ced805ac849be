// Clients for the external content scanners mlsd hands outbound mail to: SpamAssassin's spamd
// (SPAMC protocol), ClamAV's clamd (INSTREAM) and Rspamd (HTTP /checkv2). Each is one request
// on its own connection: the engines close the connection after answering anyway, and a fresh
// connection means a wedged engine can never leave a half-read reply for the next message.
import { connect, type Socket } from 'node:net';

export type ScanEngine = 'spamd' | 'clamd' | 'rspamd';

/**
 * Why a scan gave no verdict. Callers decide on this whether to defer the message (the engine
 * is down or slow: 'connect', 'timeout'), or to treat it as a broken/incompatible engine
 * ('protocol') or as an answer about this message ('engine': e.g. clamd's size limit).
 */
export type ScanErrorKind = 'connect' | 'timeout' | 'protocol' | 'engine';

export class ScanEngineError extends Error {
  override readonly name = 'ScanEngineError';
  constructor(
    readonly engine: ScanEngine,
    /** "host:port" or the URL: which engine instance failed, when several are configured. */
    readonly target: string,
    readonly kind: ScanErrorKind,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${engine} ${target}: ${detail}`, options);
  }
}

export interface TcpEngineOptions {
  host: string;
  port: number;
  /** For the whole exchange (connect, send, verdict), not per read: a daemon that trickles
   *  bytes must not hold a message longer than this. */
  timeoutMs: number;
}

export interface SpamdOptions extends TcpEngineOptions {
  /** Whose preferences spamd applies (SPAMC "User:" header). spamd's own default otherwise. */
  user?: string;
}

export interface SpamdVerdict {
  spam: boolean;
  score: number;
  threshold: number;
  /** Names of the rules that hit, as spamd lists them. */
  symbols: string[];
}

export interface ClamdVerdict {
  infected: boolean;
  /** The signature name exactly as clamd reports it (unofficial databases add ".UNOFFICIAL"). */
  signature?: string;
}

export interface RspamdOptions {
  /** Base URL of a normal/proxy worker, e.g. http://127.0.0.1:11333 (a path prefix is kept). */
  url: string;
  timeoutMs: number;
}

export interface RspamdVerdict {
  spam: boolean;
  /** Rspamd's action: "no action", "greylist", "add header", "rewrite subject", "soft reject",
   *  "reject". */
  action: string;
  score: number;
  /** The score at which Rspamd rejects (its "required_score"). */
  threshold: number;
  symbols: string[];
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * One request/response exchange over TCP. `complete` says whether the bytes read so far are a
 * whole reply: it lets clamd's reply win over a reset that follows it (clamd closes as soon as
 * it refuses a stream, and our unsent chunks then earn an RST).
 */
function exchange(
  engine: ScanEngine,
  opts: TcpEngineOptions,
  send: (s: Socket) => void,
  complete: (reply: Buffer) => boolean,
): Promise<Buffer> {
  const target = hostPort(opts.host, opts.port);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let connected = false;
    let settled = false;
    const s = connect({ host: opts.host, port: opts.port });
    const finish = (err: ScanEngineError | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(
      () =>
        finish(
          new ScanEngineError(engine, target, 'timeout', connected ? `no verdict within ${opts.timeoutMs} ms` : `connect timed out after ${opts.timeoutMs} ms`),
        ),
      opts.timeoutMs,
    );
    s.setNoDelay(true);
    s.once('connect', () => {
      connected = true;
      send(s);
    });
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      if (complete(Buffer.concat(chunks))) finish(null);
    });
    s.once('end', () => {
      if (complete(Buffer.concat(chunks))) finish(null);
      else finish(new ScanEngineError(engine, target, 'protocol', chunks.length ? `connection closed mid-reply: ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}` : 'connection closed without a reply'));
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      if (complete(Buffer.concat(chunks))) return finish(null);
      const what = err.code ?? err.message;
      finish(
        connected
          ? new ScanEngineError(engine, target, 'protocol', `connection broken (${what})`, { cause: err })
          : new ScanEngineError(engine, target, 'connect', `connection failed (${what})`, { cause: err }),
      );
    });
    s.once('close', () => finish(new ScanEngineError(engine, target, 'protocol', 'connection closed without a reply')));
  });
}

// --- spamd ---------------------------------------------------------------------------------

const SPAMD_HEAD_END = Buffer.from('\r\n\r\n');

/** Whether the bytes so far are a whole reply: the head plus as many body bytes as its
 *  Content-length says, or an error status line (which spamd sends alone, then closes). */
function spamdReplyComplete(reply: Buffer): boolean {
  const headEnd = reply.indexOf(SPAMD_HEAD_END);
  if (headEnd < 0) {
    // An error reply ("SPAMD/1.0 76 Bad header line") may be a status line alone.
    return /^SPAMD\/\S+ [1-9]\d* [^\r\n]*\r\n$/.test(reply.toString('latin1'));
  }
  const len = /\r\nContent-length:\s*(\d+)/i.exec(reply.subarray(0, headEnd).toString('latin1'));
  return !len || reply.length - headEnd - 4 >= Number(len[1]);
}

/**
 * Asks spamd for a verdict and the names of the rules that hit (SYMBOLS), which is what a
 * sender-side policy logs; spamd leaves the message itself alone in this mode.
 */
export async function spamdCheck(opts: SpamdOptions, message: Buffer): Promise<SpamdVerdict> {
  const target = hostPort(opts.host, opts.port);
  // A CR or LF in the user name would let a caller inject SPAMC headers.
  if (opts.user !== undefined && !/^[^\s\x00-\x1f\x7f]+$/.test(opts.user))
    throw new TypeError(`spamd user ${JSON.stringify(opts.user)}: not a valid user name`);
  const head =
    'SYMBOLS SPAMC/1.5\r\n' +
    `Content-length: ${message.length}\r\n` +
    (opts.user !== undefined ? `User: ${opts.user}\r\n` : '') +
    '\r\n';
  const reply = await exchange(
    'spamd',
    opts,
    // end(): spamc half-closes too, so spamd never waits for more than Content-length says.
    (s) => {
      s.write(head);
      s.end(message);
    },
    spamdReplyComplete,
  );
  return parseSpamdReply(target, reply);
}

function parseSpamdReply(target: string, reply: Buffer): SpamdVerdict {
  const text = reply.toString('utf8');
  const headEnd = text.indexOf('\r\n\r\n');
  const head = headEnd < 0 ? text : text.slice(0, headEnd);
  const body = headEnd < 0 ? '' : text.slice(headEnd + 4);
  const [status = '', ...headers] = head.split('\r\n');
  const st = /^SPAMD\/(\d+(?:\.\d+)?) (\d+) (.*)$/.exec(status);
  if (!st) throw new ScanEngineError('spamd', target, 'protocol', `unexpected reply ${JSON.stringify(status.slice(0, 200))}`);
  // Non-zero codes are sysexits values (EX_PROTOCOL 76, EX_TEMPFAIL 75, EX_UNAVAILABLE 69...).
  if (st[2] !== '0') throw new ScanEngineError('spamd', target, 'engine', `spamd said ${st[2]} ${st[3]}`);
  let verdict: { spam: boolean; score: number; threshold: number } | undefined;
  for (const h of headers) {
    // "Spam: True ; 1000.0 / 5.0" (older spamd versions also say "Yes"/"No").
    const m = /^Spam:\s*(True|False|Yes|No)\s*;\s*(-?\d+(?:\.\d+)?)\s*\/\s*(-?\d+(?:\.\d+)?)\s*$/i.exec(h);
    if (m) verdict = { spam: /^(true|yes)$/i.test(m[1]!), score: Number(m[2]), threshold: Number(m[3]) };
  }
  if (!verdict) throw new ScanEngineError('spamd', target, 'protocol', `no Spam: header in reply ${JSON.stringify(head.slice(0, 200))}`);
  const symbols = body
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return { ...verdict, symbols };
}

// --- clamd ---------------------------------------------------------------------------------

// clamd's own default StreamMaxLength is 25M and its per-chunk sanity limit is far above this;
// 64 KiB keeps each write small without making a header per handful of bytes.
const CLAMD_CHUNK = 64 * 1024;

/**
 * Streams the message to clamd (INSTREAM). clamd recognises a mail and scans its decoded parts
 * (ScanMail, on by default), so a base64 attachment is checked as the file it carries.
 */
export async function clamdScan(opts: TcpEngineOptions, message: Buffer): Promise<ClamdVerdict> {
  const target = hostPort(opts.host, opts.port);
  const reply = await exchange(
    'clamd',
    opts,
    (s) => {
      // The "z" form: command and reply are NUL-terminated, so the reply's end is unambiguous.
      s.cork();
      s.write('zINSTREAM\0');
      for (let off = 0; off < message.length; off += CLAMD_CHUNK) {
        const chunk = message.subarray(off, off + CLAMD_CHUNK);
        const len = Buffer.alloc(4);
        len.writeUInt32BE(chunk.length);
        s.write(len);
        s.write(chunk);
      }
      s.write(Buffer.alloc(4)); // a zero length ends the stream
      s.uncork();
    },
    (r) => r.includes(0),
  );
  const text = reply.subarray(0, reply.indexOf(0) < 0 ? reply.length : reply.indexOf(0)).toString('utf8').trim();
  if (text === 'stream: OK') return { infected: false };
  const found = /^stream: (.+) FOUND$/.exec(text);
  if (found) return { infected: true, signature: found[1]! };
  // e.g. "INSTREAM size limit exceeded. ERROR", "stream: Can't allocate memory ERROR".
  if (/ ERROR$/.test(text)) throw new ScanEngineError('clamd', target, 'engine', text);
  throw new ScanEngineError('clamd', target, 'protocol', `unexpected reply ${JSON.stringify(text.slice(0, 200))}`);
}

// --- rspamd --------------------------------------------------------------------------------

const RSPAMD_SPAM_ACTIONS = new Set(['reject', 'add header', 'rewrite subject']);
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export async function rspamdCheck(opts: RspamdOptions, message: Buffer): Promise<RspamdVerdict> {
  // Relative resolution keeps a path prefix (Rspamd behind a reverse proxy) instead of
  // replacing it, which new URL('/checkv2', base) would do.
  const url = new URL('checkv2', opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
  const fail = (kind: ScanErrorKind, detail: string, cause?: unknown) =>
    new ScanEngineError('rspamd', opts.url, kind, detail, cause === undefined ? undefined : { cause });
  // One signal for the whole exchange, body included: undici's own timeouts are minutes long.
  const signal = AbortSignal.timeout(opts.timeoutMs);
  let status: number;
  let body: string;
  try {
    // A view, not a copy; the cast only narrows ArrayBufferLike, as Node's Buffers are never
    // backed by a SharedArrayBuffer unless made from one on purpose.
    const body8 = new Uint8Array(message.buffer as ArrayBuffer, message.byteOffset, message.byteLength);
    const res = await fetch(url, { method: 'POST', body: body8, signal });
    status = res.status;
    body = await res.text();
  } catch (err) {
    if ((err as Error).name === 'TimeoutError' || signal.aborted) throw fail('timeout', `no verdict within ${opts.timeoutMs} ms`, err);
    // fetch() reports every transport failure as "fetch failed"; what went wrong is in the
    // cause: an errno while connecting, or e.g. HPE_* when the peer does not speak HTTP.
    const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
    const what = cause?.code ?? cause?.message ?? (err as Error).message;
    throw fail(CONNECT_ERRORS.has(cause?.code ?? '') ? 'connect' : 'protocol', `request failed (${what})`, err);
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw fail(status === 200 ? 'protocol' : 'engine', `HTTP ${status}, not JSON: ${JSON.stringify(body.slice(0, 200))}`);
  }
  const r = json as { action?: unknown; score?: unknown; required_score?: unknown; symbols?: unknown; error?: unknown };
  if (status !== 200 || typeof r.error === 'string')
    throw fail('engine', `HTTP ${status}: ${typeof r.error === 'string' ? r.error : body.slice(0, 200)}`);
  if (typeof r.action !== 'string' || typeof r.score !== 'number' || typeof r.required_score !== 'number')
    throw fail('protocol', `reply lacks action/score/required_score: ${body.slice(0, 200)}`);
  const symbols = r.symbols && typeof r.symbols === 'object' ? Object.keys(r.symbols) : [];
  return {
    spam: RSPAMD_SPAM_ACTIONS.has(r.action),
    action: r.action,
    score: r.score,
    threshold: r.required_score,
    symbols,
  };
}
