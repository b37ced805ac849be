import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { Readable } from 'node:stream';
import type { Logger } from '../log/logger.js';
import { needsSmtpUtf8 } from '../policy/address.js';

export type TlsMode = 'none' | 'opportunistic' | 'starttls' | 'implicit';

/** One host to hand mail to. */
export interface Destination {
  /** Address to connect to (already resolved through our resolver). */
  address: string;
  port: number;
  /** The host's name: for SNI, certificate checks and the log. */
  name: string;
  tls: TlsMode;
  verifyCertificate: boolean;
  auth?: { user: string; pass: string };
}

export interface Transaction {
  from: string;
  rcpts: string[];
  size: number;
  /** The message as it goes on the wire (DKIM header included); called once per try. */
  message: () => Readable;
}

export interface RcptOutcome {
  rcpt: string;
  /** 2 delivered, 4 try again later, 5 failed for good. */
  klass: 2 | 4 | 5;
  reply: string;
}

export interface TransactionResult {
  outcomes: RcptOutcome[];
  /** The host that answered, as name[address]:port. */
  remote: string;
  ms: number;
}

/** The host could not be used at all (connect, greeting, TLS or AUTH failed): try the next. */
export class HostUnusable extends Error {
  constructor(
    message: string,
    /** The reply recorded for every recipient when no host could be used. */
    readonly reply: string,
  ) {
    super(message);
  }
}

interface NodemailerError extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
  command?: string;
  rejectedErrors?: NodemailerError[];
  recipient?: string;
}

interface Idle {
  conn: SMTPConnection;
  timer: NodeJS.Timeout;
}

export interface ClientSettings {
  heloName: string;
  sourceAddress: string;
  connectTimeoutMs: number;
  idleMs: number;
}

/**
 * The client side of outbound SMTP, on nodemailer's SMTPConnection (PIPELINING, STARTTLS,
 * SMTPUTF8, AUTH all come from it). Connections that finished a transaction cleanly are
 * kept a few seconds for the next message to the same host, as Postfix's connection
 * cache does: a burst to the smarthost then costs one greeting, not one per message.
 */
export class SmtpClient {
  private readonly idle = new Map<string, Idle[]>();
  private closed = false;

  constructor(
    private readonly settings: () => ClientSettings,
    private readonly log: Logger,
  ) {}

  /** Sends one transaction; per-recipient outcomes, or HostUnusable when the host took none. */
  async send(dest: Destination, tx: Transaction): Promise<TransactionResult> {
    const started = Date.now();
    const key = `${dest.address}|${dest.port}|${dest.tls}|${dest.auth?.user ?? ''}`;
    const remote = `${dest.name}[${dest.address}]:${dest.port}`;
    const reused = this.takeIdle(key);
    const conn = reused ?? (await this.open(dest, remote));
    // RFC 6531 3.2: a UTF-8 address goes only to a server that offers SMTPUTF8; the rest
    // of the transaction still goes (nodemailer would send it without the parameter).
    const refused = offersSmtpUtf8(conn) ? [] : smtpUtf8Refusals(tx, remote);
    if (refused.length) {
      this.log.info({ evt: 'delivery.smtputf8.unsupported', remote, from: tx.from, rcpts: refused.map((o) => o.rcpt) }, 'remote does not offer SMTPUTF8');
      const rest = tx.rcpts.filter((r) => !refused.some((o) => o.rcpt === r));
      if (!rest.length) {
        this.keep(key, conn);
        return { outcomes: refused, remote, ms: Date.now() - started };
      }
      const result = await this.transact(dest, { ...tx, rcpts: rest }, conn, reused, key, remote, started);
      return { ...result, outcomes: [...result.outcomes, ...refused] };
    }
    return this.transact(dest, tx, conn, reused, key, remote, started);
  }

  /** One MAIL..DATA on `conn` (fresh, or `reused` from the idle cache). */
  private async transact(dest: Destination, tx: Transaction, conn: SMTPConnection, reused: SMTPConnection | null, key: string, remote: string, started: number): Promise<TransactionResult> {
    try {
      const info = await new Promise<{ accepted: string[]; rejectedErrors?: NodemailerError[]; response: string }>((resolve, reject) =>
        conn.send({ from: tx.from === '' ? false : tx.from, to: tx.rcpts, size: tx.size, use8BitMime: true }, tx.message(), (err, info) =>
          err ? reject(err) : resolve(info as never),
        ),
      );
      const outcomes: RcptOutcome[] = info.accepted.map((rcpt) => ({ rcpt, klass: 2, reply: oneLine(info.response) }));
      for (const e of info.rejectedErrors ?? []) outcomes.push(rejected(e.recipient ?? '', e));
      this.keep(key, conn);
      return { outcomes, remote, ms: Date.now() - started };
    } catch (err) {
      conn.close();
      const e = err as NodemailerError;
      if (e.code === 'EMESSAGE' && /larger than allowed/.test(e.message)) {
        // The host's SIZE limit, known from its EHLO: it will never take this message.
        return { outcomes: tx.rcpts.map((rcpt) => ({ rcpt, klass: 5, reply: `552 5.3.4 ${remote}: ${e.message}` })), remote, ms: Date.now() - started };
      }
      if (!e.responseCode && reused && (e.command === 'API' || e.command === 'CONN' || e.command === 'MAIL FROM') && e.code !== 'ETIMEDOUT') {
        // A cached connection the host had already closed before our MAIL FROM: not the
        // host's answer, try afresh. (A failure later in the transaction is not retried here,
        // so that a message the host may have taken is not sent again at once.)
        return this.send(dest, tx);
      }
      if (!e.responseCode) {
        // No SMTP reply at all: the connection broke or timed out mid-transaction.
        throw new HostUnusable(`${remote}: ${e.message}`, `451 4.4.2 ${remote}: ${e.code ?? 'error'}: ${e.message}`);
      }
      // Recipients refused one by one keep their own reply; a refused MAIL or DATA is everyone's.
      const perRcpt = new Map((e.rejectedErrors ?? []).map((r) => [r.recipient ?? '', r]));
      const outcomes = tx.rcpts.map((rcpt) => rejected(rcpt, perRcpt.get(rcpt) ?? e));
      return { outcomes, remote, ms: Date.now() - started };
    }
  }

  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const i of list) (clearTimeout(i.timer), i.conn.quit());
    this.idle.clear();
  }

  private takeIdle(key: string): SMTPConnection | null {
    const list = this.idle.get(key);
    while (list?.length) {
      const i = list.pop()!;
      clearTimeout(i.timer);
      if (list.length === 0) this.idle.delete(key);
      if (usable(i.conn)) return i.conn;
    }
    return null;
  }

  private keep(key: string, conn: SMTPConnection): void {
    const ms = this.settings().idleMs;
    if (this.closed || ms <= 0 || !usable(conn)) {
      conn.quit();
      return;
    }
    const list = this.idle.get(key) ?? [];
    const entry: Idle = {
      conn,
      timer: setTimeout(() => {
        const l = this.idle.get(key);
        const i = l?.indexOf(entry) ?? -1;
        if (l && i >= 0) l.splice(i, 1);
        if (l?.length === 0) this.idle.delete(key);
        conn.quit();
      }, ms),
    };
    entry.timer.unref();
    list.push(entry);
    this.idle.set(key, list);
  }

  private async open(dest: Destination, remote: string): Promise<SMTPConnection> {
    const s = this.settings();
    const conn = new SMTPConnection({
      host: dest.address,
      port: dest.port,
      secure: dest.tls === 'implicit',
      requireTLS: dest.tls === 'starttls',
      ignoreTLS: dest.tls === 'none',
      // Opportunistic TLS to MX hosts: encrypt when offered, carry on in clear when the
      // upgrade fails, and do not insist on a certificate nobody on the MX path can check.
      opportunisticTLS: dest.tls === 'opportunistic',
      name: s.heloName,
      localAddress: s.sourceAddress || undefined,
      connectionTimeout: s.connectTimeoutMs,
      greetingTimeout: s.connectTimeoutMs,
      socketTimeout: 5 * 60_000,
      tls: {
        rejectUnauthorized: dest.tls === 'opportunistic' ? false : dest.verifyCertificate,
        servername: dest.name !== dest.address ? dest.name : undefined,
        minVersion: 'TLSv1.2',
      },
      logger: false,
    });
    // Errors after connect arrive through send()'s callback; this keeps a late socket error
    // (on an idle connection, or after a failed connect) from becoming an uncaught exception.
    conn.on('error', (err: Error) => this.log.debug({ evt: 'delivery.conn.error', remote, err: err.message }, 'connection error'));
    try {
      await new Promise<void>((resolve, reject) => {
        conn.once('error', reject);
        conn.connect(() => {
          conn.removeListener('error', reject);
          resolve();
        });
      });
      if (dest.auth) {
        await new Promise<void>((resolve, reject) =>
          conn.login({ user: dest.auth!.user, pass: dest.auth!.pass }, (err) => (err ? reject(err) : resolve())),
        );
      }
    } catch (err) {
      conn.close();
      const e = err as NodemailerError;
      const reply = e.response ? oneLine(e.response) : `${e.code ?? 'error'}: ${e.message}`;
      this.log.warn({ evt: 'delivery.connect', remote, stage: e.command ?? 'CONN', err: e.message }, 'could not use remote host');
      // A refused login is our configuration, not the host: the next one would refuse it too.
      if (e.code === 'EAUTH') throw new HostUnusable(`${remote}: AUTH failed: ${reply}`, `451 4.7.8 ${remote} refused our login: ${reply}`);
      throw new HostUnusable(`${remote}: ${e.message}`, `451 4.4.1 ${remote}: ${reply}`);
    }
    return conn;
  }
}

function offersSmtpUtf8(conn: SMTPConnection): boolean {
  return ((conn as unknown as { _supportedExtensions?: string[] })._supportedExtensions ?? []).includes('SMTPUTF8');
}

/** The recipients that cannot go to a server without SMTPUTF8: all if the sender needs it, else those that do. */
function smtpUtf8Refusals(tx: Transaction, remote: string): RcptOutcome[] {
  const senderNeeds = needsSmtpUtf8(tx.from);
  return tx.rcpts
    .filter((rcpt) => senderNeeds || needsSmtpUtf8(rcpt))
    .map((rcpt) => ({ rcpt, klass: 5 as const, reply: `550 5.6.7 ${remote} does not support SMTPUTF8, which the ${senderNeeds ? 'sender' : 'recipient'} address needs (RFC 6531)` }));
}

function usable(conn: SMTPConnection): boolean {
  const c = conn as unknown as { _destroyed?: boolean; _closing?: boolean };
  return !c._destroyed && !c._closing;
}

function rejected(rcpt: string, e: NodemailerError): RcptOutcome {
  const code = e.responseCode ?? 451;
  return { rcpt, klass: code >= 500 ? 5 : 4, reply: oneLine(e.response ?? e.message) };
}

/** Multi-line replies become one line for the queue record and the DSN. */
function oneLine(reply: string): string {
  return reply.replace(/\r?\n(\d{3}[- ])?/g, ' ').trim();
}
