import { SMTPServer, type SMTPServerOptions, type SMTPServerSession, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerAuthentication } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import type { Config, ListenerConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { TlsMaterial } from './tls.js';
import { replies, type Reply } from './reply.js';
import { normalizeIp } from '../policy/ipList.js';
import { normalizeAddress } from '../policy/address.js';
import { escalate, failureReply, type PolicyChain, type Stage } from '../policy/chain.js';
import type { SessionFacts } from '../policy/types.js';
import type { Envelope, Incoming } from '../spool/spool.js';
import { HeaderCollector, receivedHeader } from './headers.js';
import type { Clock } from '../core/clock.js';
import type { EventInput } from '../events/events.js';
import { Admission, type ListenerKind } from './admission.js';
import { DataBudget, dataBudgetBytes, type DataClaim } from './data-budget.js';
import { loopRefusal } from './loops.js';
import { drainStream } from './drain.js';
import { headerRefusal } from './headerChecks.js';

export interface SmtpSpool {
  hasRoom(): Promise<boolean>;
  begin(): Promise<Incoming>;
  commit(msg: Incoming, env: Envelope): Promise<void>;
}

export interface SmtpDeps {
  config: () => Config;
  /** Decides every stage (policy/chain.ts); this layer only turns its outcomes into replies. */
  chain: PolicyChain;
  spool: SmtpSpool;
  onCommitted: (env: Envelope, body: Buffer[] | null) => void;
  tls: TlsMaterial;
  log: Logger;
  clock: Clock;
  emit: (ev: EventInput) => void;
}

interface SessionState {
  ip: string;
  errors: number;
  login: string | null;
  /** The login's credential fingerprint at AUTH (policy: accounts.loginValid). */
  loginStamp: string | null;
  rcpt: string[];
  /** The refusal our hooks logged last, so the protocol logger does not log it again. */
  logged: string | null;
  /** The connect stage's outcome, once known: true when accepted (the chain is told of its end). */
  connected: Promise<boolean> | null;
}

/** An error smtp-server writes as `${responseCode} ${message}`; the message carries our enhanced code. */
class ReplyError extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

export class SmtpService {
  private readonly servers: { listener: ListenerConfig; server: SMTPServer }[] = [];
  private readonly sessions = new Map<string, SessionState>();
  /** The connection budget over all listeners and stress mode (admission.ts). */
  private readonly admission: Admission;
  /** Bytes all DATA phases in progress may hold at once (smtp.maxDataBytesInFlight). */
  private readonly dataBudget: DataBudget;

  constructor(private readonly deps: SmtpDeps) {
    this.dataBudget = new DataBudget(() => dataBudgetBytes(deps.config().smtp));
    this.admission = new Admission({
      settings: () => {
        const { maxClients, submissionReserve, stress } = deps.config().smtp;
        return { maxClients, submissionReserve, threshold: stress.threshold, idleTimeoutMs: stress.idleTimeoutMs, errorLimit: stress.errorLimit, alertAfterMs: stress.alertAfterMinutes * 60_000 };
      },
      clock: deps.clock,
      emit: deps.emit,
      log: deps.log,
      close: (id, reply) => this.closeSession(id, reply, true),
    });
  }

  async start(): Promise<void> {
    for (const l of this.deps.config().smtp.listeners) {
      const server = new SMTPServer(this.options(l));
      // smtp-server re-emits its socket's errors and would throw without a listener. A
      // failure to bind is the caller's to report (it may be retrying); later ones are logged.
      let bound = false;
      server.on('error', (err) => {
        if (bound) this.deps.log.error({ evt: 'smtp.error', listener: l.name, err: err.message }, 'listener error');
      });
      await new Promise<void>((resolve, reject) => {
        const onErr = (err: Error) => reject(new Error(`smtp.listeners ${l.name}: cannot listen on ${l.host}:${l.port}: ${err.message}`));
        server.server.once('error', onErr);
        server.listen(l.port, l.host, () => {
          server.server.off('error', onErr);
          resolve();
        });
      });
      bound = true;
      const addr = server.server.address() as AddressInfo;
      this.deps.log.info({ evt: 'smtp.listen', listener: l.name, host: addr.address, port: addr.port }, 'listening');
      this.servers.push({ listener: l, server });
    }
  }

  /**
   * Applies changed limits and names to the running listeners. smtp-server reads these
   * options when it uses them (size and recipients per command, the rest per new
   * connection), so no restart is needed; only the listener list itself needs one.
   */
  applyConfig(cfg: Config): void {
    for (const { server } of this.servers) {
      Object.assign(server.options, {
        name: cfg.hostname,
        size: cfg.smtp.maxMessageBytes,
        maxRecipients: cfg.smtp.maxRecipients,
        maxClients: libraryMaxClients(cfg),
        maxCommandLength: cfg.smtp.maxCommandLength,
        socketTimeout: cfg.smtp.socketTimeoutMs,
      });
    }
  }

  addresses(): { name: string; host: string; port: number }[] {
    return this.servers.map(({ listener, server }) => {
      const a = server.server.address() as AddressInfo;
      return { name: listener.name, host: a.address, port: a.port };
    });
  }

  async stop(): Promise<void> {
    this.admission.stop();
    await Promise.all(this.servers.map(({ server }) => new Promise<void>((r) => server.close(() => r()))));
    this.servers.length = 0;
  }

  private options(l: ListenerConfig): SMTPServerOptions {
    const cfg = this.deps.config();
    const opts: SMTPServerOptions & { greetingDelay: number; rejectOversized: boolean; maxCommandLength: number; maxRecipients: number } = {
      name: cfg.hostname,
      banner: 'mlsd',
      secure: l.implicitTls,
      key: this.deps.tls.key,
      cert: this.deps.tls.cert,
      hideSTARTTLS: !l.starttls,
      // AUTH is neither advertised nor accepted before TLS: passwords never cross in clear.
      allowInsecureAuth: false,
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: !l.authRequired,
      authRequiredMessage: `${replies.authRequired.enhanced} ${replies.authRequired.text}`,
      size: cfg.smtp.maxMessageBytes,
      rejectOversized: true,
      maxClients: libraryMaxClients(cfg),
      maxRecipients: cfg.smtp.maxRecipients,
      maxCommandLength: cfg.smtp.maxCommandLength,
      socketTimeout: cfg.smtp.socketTimeoutMs,
      // Decisions never use reverse DNS, and a PTR look-up per connection costs latency.
      disableReverseLookup: true,
      // Enhanced codes on library replies (552 5.3.4, 530 5.7.0); ours carry their own.
      hideENHANCEDSTATUSCODES: false,
      hideDSN: true,
      // RFC 6531: UTF-8 local parts, accepted only in a transaction that asks for it
      // (policy/units.ts); domains in either label form are stored as A-labels.
      hideSMTPUTF8: false,
      // Early-talker wait (patched option): worth it on the public MX port only.
      greetingDelay: l.greetingDelayMs ?? (l.implicitTls || l.authRequired ? 0 : 100),
      logger: this.protocolLogger(l) as unknown as SMTPServerOptions['logger'],
      onConnect: (session, cb) => void this.onConnect(l, session, cb),
      onClose: (session) => {
        const st = this.sessions.get(session.id);
        if (st?.connected) {
          const facts = this.facts(l, session);
          // A session may close while its connect stage is still being decided.
          void st.connected.then((accepted) => accepted && this.deps.chain.disconnect(facts));
        }
        this.sessions.delete(session.id);
        this.admission.release(session.id);
      },
      // While a hook decides, the client waits for us: stress mode does not count it idle.
      onAuth: (auth, session, cb) => void this.onAuth(l, auth, session, this.whileBusy(session, cb)),
      onMailFrom: (address, session, cb) => void this.onMailFrom(l, address, session, this.whileBusy(session, cb)),
      onRcptTo: (address, session, cb) => void this.onRcptTo(l, address, session, this.whileBusy(session, cb)),
      onData: (stream, session, cb) => {
        // Stress mode counts each chunk as activity and never closes a transfer to make room (admission.ts).
        this.admission.dataStarted(session.id);
        void this.onData(l, stream, session, (err, message) => {
          this.admission.dataEnded(session.id);
          cb(err, message);
        });
      },
    };
    return opts;
  }

  /** Marks the session busy (admission.ts) until `cb`, the hook's answer, is called. */
  private whileBusy<A extends unknown[]>(session: SMTPServerSession, cb: (...args: A) => void): (...args: A) => void {
    this.admission.busy(session.id, true);
    return (...args: A) => {
      this.admission.busy(session.id, false);
      cb(...args);
    };
  }

  /** Sessions open now, over all listeners (`mlsd status`). */
  get sessionsOpen(): number {
    return this.sessions.size;
  }

  /** Bytes DATA phases in progress hold now, and the most they may (`mlsd status`). */
  get dataInFlight(): { bytes: number; max: number } {
    return { bytes: this.dataBudget.inFlight, max: this.dataBudget.max };
  }

  /**
   * The session's bookkeeping, made only in onConnect. A hook that finishes after its client
   * left (an AUTH that waited in the password-check queue, a DATA whose client dropped) gets
   * a detached entry that is never stored: onClose deleted the real one, and storing a new
   * one would keep it for the daemon's lifetime.
   */
  private state(session: SMTPServerSession): SessionState {
    return this.sessions.get(session.id) ?? newSessionState(session);
  }

  /** False once onClose has run for this session: what a hook learns after an await. */
  private isOpen(session: SMTPServerSession): boolean {
    return this.sessions.has(session.id);
  }

  /**
   * smtp-server refuses some things itself (unknown commands, bad syntax, size, AUTH
   * required). It reports every line it sends to its logger at debug level; this logger
   * keeps the 4xx/5xx ones that our hooks did not already log, so every refusal is logged.
   */
  private protocolLogger(l: ListenerConfig) {
    const ignore = () => undefined;
    const debug = (entry: { tnx?: string; cid?: string }, _msg: string, payload?: unknown) => {
      // Every command line the client sends passes here: it is what "idle" is measured by.
      if (entry.tnx === 'command' && entry.cid) this.admission.active(entry.cid);
      if (entry.tnx !== 'send' || typeof payload !== 'string' || !/^[45]\d\d /.test(payload)) return;
      const st = entry.cid ? this.sessions.get(entry.cid) : undefined;
      if (st && st.logged === payload) {
        st.logged = null;
        return;
      }
      this.deps.log.info({ evt: 'smtp.refuse', stage: 'protocol', listener: l.name, cid: entry.cid, ip: st?.ip, login: st?.login ?? null, reply: payload }, 'refused');
      // Under stress the library's own refusals (unknown command, bad syntax) count too, and
      // the error limit drops (Postfix's junk and hard error limits of 1 under stress).
      const cid = entry.cid;
      if (cid && st && payload.startsWith('5') && this.admission.underStress && ++st.errors >= this.admission.errorLimit(this.deps.config().smtp.maxBadCommands)) {
        setImmediate(() => this.closeSession(cid, replies.tooManyErrors, false));
      }
    };
    return { trace: ignore, info: ignore, warn: ignore, error: ignore, fatal: ignore, debug };
  }

  private facts(l: ListenerConfig, session: SMTPServerSession): SessionFacts {
    return {
      clientIp: normalizeIp(session.remoteAddress),
      listener: l.name,
      login: this.state(session).login,
      loginStamp: this.state(session).loginStamp,
      tls: !!(session as { secure?: boolean }).secure,
      smtputf8: (session.envelope as { smtpUtf8?: boolean } | undefined)?.smtpUtf8 === true,
    };
  }

  /** Logs the refusal and turns it into the error smtp-server writes; repeated errors end the session. */
  private refuse(l: ListenerConfig, session: SMTPServerSession, reply: Reply, stage: string, extra: Record<string, unknown> = {}): ReplyError {
    const st = this.state(session);
    st.errors++;
    // A refusal at the end of DATA is a verdict on the message (a virus, a loop, a forged
    // From): it is sent as it is, or a 421 would have the sender retry it for days. It still
    // counts, so the session's next refusal may end it (as Postfix's hard_error_limit does).
    const limit = this.admission.errorLimit(this.deps.config().smtp.maxBadCommands);
    const final = stage === 'data' ? reply : escalate(reply, st.errors, limit);
    const f = this.facts(l, session);
    st.logged = `${final.code} ${final.enhanced} ${final.text}`;
    this.deps.log.info(
      { evt: 'smtp.refuse', stage, listener: l.name, cid: session.id, ip: f.clientIp, login: f.login, reply: `${final.code} ${final.enhanced} ${final.text}`, ...extra },
      'refused',
    );
    return new ReplyError(final.code, `${final.enhanced} ${final.text}`);
  }

  /** A stage that could not be decided: the system's fault, logged as an error and answered with a temporary reply. */
  private failed(l: ListenerConfig, session: SMTPServerSession, stage: Stage, err: unknown, log: { evt: string; msg: string }, extra: Record<string, unknown> = {}): ReplyError {
    const { reply, expected } = failureReply(stage, err);
    if (!expected) this.deps.log.error({ evt: log.evt, cid: session.id, err: (err as Error).message }, log.msg);
    return this.refuse(l, session, reply, stage, extra);
  }

  /** Closes a session with a reply first (smtp-server closes the connection after a 421); `logged`: the caller logged why. */
  private closeSession(id: string, reply: Reply, logged: boolean): void {
    for (const { server } of this.servers) {
      for (const conn of server.connections as Set<{ id: string; send(code: number, text: string): void }>) {
        if (conn.id !== id) continue;
        const st = this.sessions.get(id);
        if (st && logged) st.logged = `${reply.code} ${reply.enhanced} ${reply.text}`;
        conn.send(reply.code, `${reply.enhanced} ${reply.text}`);
        return;
      }
    }
  }

  private async onConnect(l: ListenerConfig, session: SMTPServerSession, cb: (err?: Error | null) => void) {
    const st = newSessionState(session);
    this.sessions.set(session.id, st);
    const decided = this.deps.chain.connect(this.facts(l, session));
    st.connected = decided.then((o) => o.ok, () => false);
    try {
      const o = await decided;
      if (!o.ok) return cb(this.refuse(l, session, o.reply, 'connect', { unit: o.unit }));
      // A client that left while the chain decided would never be released.
      if (this.sessions.get(session.id) !== st) return cb();
      // After the per-address limits: a client over them never takes another's slot.
      const admitted = this.admission.admit(session.id, st.ip, listenerKind(l));
      if (!admitted.ok) return cb(this.refuse(l, session, admitted.reply, 'connect', { unit: 'smtp.admission' }));
      cb();
    } catch (err) {
      cb(this.failed(l, session, 'connect', err, { evt: 'smtp.connect.error', msg: 'connection check failed' }));
    }
  }

  private async onAuth(l: ListenerConfig, auth: SMTPServerAuthentication, session: SMTPServerSession, cb: (err: Error | null | undefined, res?: { user: string }) => void) {
    try {
      const o = await this.deps.chain.auth(this.facts(l, session), auth.username ?? '', auth.password ?? '');
      if (!o.ok) return cb(this.refuse(l, session, o.reply, 'auth', { user: auth.username, unit: o.unit }));
      const login = o.login;
      // The client left while its password was checked (perhaps after waiting in the queue).
      if (!this.isOpen(session)) return cb(clientLeft());
      this.state(session).login = login;
      this.admission.authenticated(session.id);
      this.state(session).loginStamp = o.loginStamp ?? null;
      this.deps.log.info({ evt: 'smtp.auth', listener: l.name, cid: session.id, ip: normalizeIp(session.remoteAddress), login }, 'authenticated');
      cb(null, { user: login });
    } catch (err) {
      cb(this.failed(l, session, 'auth', err, { evt: 'smtp.auth.error', msg: 'auth failed internally' }));
    }
  }

  private async onMailFrom(l: ListenerConfig, address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void) {
    this.state(session).rcpt = [];
    // smtp-server sets envelope.smtpUtf8 on a MAIL it then refuses too, and never clears it:
    // this MAIL FROM alone says whether the transaction is SMTPUTF8 (RFC 6531).
    (session.envelope as { smtpUtf8?: boolean }).smtpUtf8 = !!address.args && (address.args as Record<string, unknown>).SMTPUTF8 === true;
    try {
      const o = await this.deps.chain.mail(this.facts(l, session), address.address);
      if (!o.ok) return cb(this.refuse(l, session, o.reply, 'mail', { from: address.address, unit: o.unit }));
      if (!this.isOpen(session)) return cb(clientLeft());
      this.admission.reachedMail(session.id);
      // smtp-server hands over domains in U-labels (it decodes A-labels); the envelope keeps
      // the sender in its stored form (A-label domain), as the recipients are kept.
      address.address = normalizeAddress(address.address) ?? '';
      cb();
    } catch (err) {
      cb(this.failed(l, session, 'mail', err, { evt: 'smtp.mail.error', msg: 'sender check failed' }, { from: address.address }));
    }
  }

  private async onRcptTo(l: ListenerConfig, address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void) {
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    try {
      const o = await this.deps.chain.rcpt(this.facts(l, session), address.address);
      if (!o.ok) return cb(this.refuse(l, session, o.reply, 'rcpt', { from, rcpt: address.address, unit: o.unit }));
      if (!this.isOpen(session)) return cb(clientLeft());
      const st = this.state(session);
      if (!st.rcpt.includes(o.address)) st.rcpt.push(o.address);
      cb();
    } catch (err) {
      cb(this.failed(l, session, 'rcpt', err, { evt: 'smtp.rcpt.error', msg: 'recipient check failed' }, { rcpt: address.address }));
    }
  }

  private async onData(l: ListenerConfig, stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void) {
    const facts = this.facts(l, session);
    const st = this.state(session);
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address.toLowerCase() : '';
    const rcpt = [...st.rcpt];
    let msg: Incoming | null = null;
    let env: Envelope | null = null;
    const claim = this.dataBudget.claim();
    try {
      msg = await this.deps.spool.begin();
      const now = new Date();
      await msg.write(
        receivedHeader({ helo: session.hostNameAppearsAs || 'unknown', clientIp: facts.clientIp, hostname: this.deps.config().hostname, id: msg.id, tls: facts.tls, auth: !!facts.login, smtputf8: facts.smtputf8, rcpt, date: now }),
      );
      const headers = new HeaderCollector();
      const stopped = await msg.writeStream(stream, (c) => headers.push(c), this.admitData(claim, this.deps.config().smtp.maxMessageBytes), () => this.admission.active(session.id));
      // The final dot is in: from here on the client waits for our reply (scan, commit).
      this.admission.busy(session.id, true);
      if (stopped === 'oversized') {
        // Nothing past the limit was stored and the partial file is already gone. smtp-server
        // answers 552 5.3.4 itself (rejectOversized); this reply is the same, should the limit
        // have changed during the transfer.
        return cb(new ReplyError(replies.messageTooBig.code, `${replies.messageTooBig.enhanced} ${replies.messageTooBig.text}`));
      }
      if (stopped === 'overBudget') {
        this.deps.log.warn({ evt: 'smtp.data.budget', listener: l.name, cid: session.id, ip: facts.clientIp, inFlight: this.dataBudget.inFlight, limit: this.dataBudget.max }, 'DATA refused: smtp.maxDataBytesInFlight reached');
        return cb(this.refuse(l, session, replies.storageFull, 'data', { from, rcpt, reason: 'maxDataBytesInFlight' }));
      }
      const refusal = headerRefusal(headers) ?? loopRefusal(headers, rcpt, this.deps.config().smtp.maxHops);
      if (refusal) {
        await msg.discard();
        return cb(this.refuse(l, session, refusal.reply, 'data', { from, rcpt, id: msg.id, ...refusal.extra }));
      }
      const subject = (headers.fields('subject')[0] ?? '').slice(0, 200);
      const incoming = msg;
      const o = await this.deps.chain.data(facts, headers.fromAddresses(), { from, rcpt, size: msg.size, subject, contents: () => incoming.contents() });
      if (!o.ok) {
        await msg.discard();
        return cb(this.refuse(l, session, o.reply, 'data', { from, rcpt, id: msg.id, headerFrom: headers.fieldsLoose('from'), unit: o.unit }));
      }
      env = { id: msg.id, from, rcpt, clientIp: facts.clientIp, login: facts.login, listener: l.name, received: now.toISOString(), size: msg.size, subject };
      if (o.scan) env.scan = o.scan;
      if (o.addHeaders) env.addHeaders = o.addHeaders;
      await this.deps.spool.commit(msg, env);
      this.deps.log.info({ evt: 'smtp.accept', listener: l.name, cid: session.id, id: env.id, ip: env.clientIp, login: env.login, from, rcpt, size: env.size }, 'message committed');
      this.deps.onCommitted(env, msg.body);
      cb(null, `2.0.0 Ok: queued as ${env.id}`);
    } catch (err) {
      // Committed but a commit hook failed: the client will retry, and our copy is routed too.
      if (msg?.committed && env) this.deps.onCommitted(env, msg.body);
      else if (msg) await msg.discard();
      // Nothing of this DATA is held any more (a client that dropped mid-transfer lands here).
      claim.release();
      if (stream.destroyed && !stream.readableEnded) {
        // smtp-server destroyed the stream: the client left before its final dot. Not a fault.
        this.deps.log.info({ evt: 'smtp.data.abort', listener: l.name, cid: session.id, ip: facts.clientIp, from, rcpt }, 'client left during DATA; partial message dropped');
        return cb(clientLeft());
      }
      await drainStream(stream);
      cb(this.failed(l, session, 'data', err, { evt: 'smtp.data.error', msg: 'could not store message' }, { from, rcpt }));
    } finally {
      claim.release();
    }
  }

  /**
   * Decides, chunk by chunk, whether a DATA phase may store more: not past the message size
   * limit (the rest is then read and dropped, for a 552 at the end), and not past the bytes
   * all DATA phases may hold at once (a 452 at the end; the client tries again later).
   */
  private admitData(claim: DataClaim, maxBytes: number): (chunk: Buffer) => 'oversized' | 'overBudget' | null {
    let bytes = 0;
    return (chunk) => {
      bytes += chunk.length;
      // Either way writeStream drops what it stored at once and reads the rest without
      // storing it, so the claim is given back now rather than when the client's dot arrives.
      const stop = bytes > maxBytes ? 'oversized' : claim.grow(chunk.length) ? null : 'overBudget';
      if (stop) claim.release();
      return stop;
    };
  }
}

function newSessionState(session: SMTPServerSession): SessionState {
  return { ip: normalizeIp(session.remoteAddress), errors: 0, login: null, loginStamp: null, rcpt: [], logged: null, connected: null };
}

/** What a hook answers when its client has already gone: nobody reads it, nothing is logged or counted. */
function clientLeft(): ReplyError {
  return new ReplyError(421, '4.4.2 Client has left');
}

/** MX: anyone may send without AUTH. The others are where people log in (the submission reserve). */
function listenerKind(l: ListenerConfig): ListenerKind {
  return l.authRequired || l.implicitTls ? 'submission' : 'mx';
}

/**
 * smtp-server's own per-listener limit, checked before onConnect, refuses without looking
 * at anyone. The budget is admission's (one over all listeners, making room under stress);
 * this is only a backstop on file descriptors, so admission sees the clients it can admit.
 */
function libraryMaxClients(cfg: Config): number {
  return cfg.smtp.maxClients * 2;
}
