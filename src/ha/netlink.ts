import tls from 'node:tls';
import type { Logger } from '../log/logger.js';
import { encodeFrame, FrameReader, type Frame, type FrameHeader } from './wire.js';

/**
 * The network link to the peer: TLS with a pre-shared key (no certificates to manage on
 * two boxes; a wrong key fails the handshake, so nothing unauthenticated gets in). Each
 * box dials the other and accepts the other's dial: its outbound connection carries what
 * it pushes (replication when active, join and merge when standby) and brings back the
 * answers; heartbeats go both ways on both. Any byte received counts as the peer alive.
 */

const PSK_CIPHERS = 'ECDHE-PSK-CHACHA20-POLY1305:ECDHE-PSK-AES256-CBC-SHA384:PSK-AES256-GCM-SHA384';

export type Reply = (header: FrameHeader, body?: Buffer | null) => void;

let nextConnId = 1;

export interface NetLinkOptions {
  nodeId: string;
  listen: { host: string; port: number };
  peer: () => { host: string; port: number };
  psk: Buffer;
  /** A connection silent this long is dead (a cut cable sends no FIN). */
  silentMs: number;
  reconnectMs: number;
  log: Logger;
}

class Conn {
  private readonly reader = new FrameReader();
  readonly id = nextConnId++;
  lastHeard = Date.now();
  private corked = false;
  constructor(
    readonly socket: tls.TLSSocket,
    readonly dir: 'in' | 'out',
    onFrame: (f: Frame, c: Conn) => void,
    onHeard: () => void,
    log: Logger,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.lastHeard = Date.now();
      onHeard();
      let frames: Frame[];
      try {
        frames = this.reader.push(chunk);
      } catch (err) {
        log.warn({ evt: 'ha.net.badFrame', dir, err: (err as Error).message }, 'dropping a connection that sent a bad frame');
        socket.destroy();
        return;
      }
      for (const f of frames) onFrame(f, this);
    });
  }

  /**
   * Frames written in one turn of the event loop leave as one TLS record batch: each
   * socket write is otherwise a record of its own and a syscall.
   */
  write(header: FrameHeader, body?: Buffer | null): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    let ok = true;
    for (const b of encodeFrame(header, body)) ok = this.socket.write(b);
    return ok;
  }
}

export class NetLink {
  private server: tls.Server | null = null;
  private out: Conn | null = null;
  private readonly inbound = new Set<Conn>();
  private stopped = false;
  private dialTimer: NodeJS.Timeout | null = null;
  private watchTimer: NodeJS.Timeout | null = null;
  private frameFns: ((f: Frame, dir: 'in' | 'out', reply: Reply, conn: number) => void)[] = [];
  private inCloseFns: ((conn: number) => void)[] = [];
  private heardFns: (() => void)[] = [];
  private outFns: ((up: boolean) => void)[] = [];
  private drainWaiters: (() => void)[] = [];
  private lastDialError = '';

  constructor(private readonly o: NetLinkOptions) {}

  onFrame(fn: (f: Frame, dir: 'in' | 'out', reply: Reply, conn: number) => void): void {
    this.frameFns.push(fn);
  }
  /** An inbound connection (the peer's outbound) closed. */
  onInboundClose(fn: (conn: number) => void): void {
    this.inCloseFns.push(fn);
  }
  onHeard(fn: () => void): void {
    this.heardFns.push(fn);
  }
  onOutbound(fn: (up: boolean) => void): void {
    this.outFns.push(fn);
  }

  get outboundUp(): boolean {
    return this.out !== null;
  }

  async start(): Promise<void> {
    const { o } = this;
    this.server = tls.createServer({
      ciphers: PSK_CIPHERS,
      minVersion: 'TLSv1.2',
      // Node offers pre-shared keys on TLS 1.2 only.
      maxVersion: 'TLSv1.2',
      pskIdentityHint: o.nodeId,
      pskCallback: (_socket, identity) => {
        if (identity === o.nodeId || !/^[a-z0-9][a-z0-9-]{0,31}$/.test(identity)) return null;
        return o.psk;
      },
    });
    this.server.on('secureConnection', (socket) => this.adopt(socket, 'in'));
    this.server.on('tlsClientError', (err, socket) => {
      o.log.warn({ evt: 'ha.net.refused', remote: socket.remoteAddress, err: err.message }, 'refused an HA connection that did not prove the shared key');
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(o.listen.port, o.listen.host, () => {
        this.server!.off('error', reject);
        resolve();
      });
    });
    this.dial();
    this.watchTimer = setInterval(() => this.watch(), Math.max(50, Math.floor(o.silentMs / 4)));
    this.watchTimer.unref();
  }

  /** Drops connections that went silent: a cut network sends no FIN. */
  private watch(): void {
    const limit = Date.now() - this.o.silentMs;
    for (const c of [...this.inbound, ...(this.out ? [this.out] : [])]) {
      if (c.lastHeard < limit) {
        this.o.log.warn({ evt: 'ha.net.silent', dir: c.dir }, 'HA connection silent; dropping it');
        c.socket.destroy();
      }
    }
  }

  private dial(): void {
    if (this.stopped || this.out) return;
    const peer = this.o.peer();
    const socket = tls.connect({
      host: peer.host,
      port: peer.port,
      ciphers: PSK_CIPHERS,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ psk: this.o.psk, identity: this.o.nodeId }),
    });
    const timer = setTimeout(() => socket.destroy(new Error('connect timed out')), Math.max(1000, this.o.silentMs));
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      this.lastDialError = '';
      this.adopt(socket, 'out');
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      if (err.message !== this.lastDialError) {
        this.lastDialError = err.message;
        this.o.log.info({ evt: 'ha.net.dialFail', peer: `${peer.host}:${peer.port}`, err: err.message }, 'cannot reach the peer; retrying');
      }
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (this.out?.socket !== socket) this.scheduleDial();
    });
  }

  private scheduleDial(): void {
    if (this.stopped || this.dialTimer) return;
    this.dialTimer = setTimeout(() => {
      this.dialTimer = null;
      this.dial();
    }, this.o.reconnectMs);
    this.dialTimer.unref();
  }

  private adopt(socket: tls.TLSSocket, dir: 'in' | 'out'): void {
    const conn = new Conn(
      socket,
      dir,
      (f, c) => {
        const reply: Reply = (h, b) => void c.write(h, b);
        for (const fn of this.frameFns) fn(f, c.dir, reply, c.id);
      },
      () => this.heardFns.forEach((fn) => fn()),
      this.o.log,
    );
    socket.on('error', () => undefined);
    if (dir === 'in') {
      // A peer that reconnects has given up its old connection.
      for (const old of this.inbound) old.socket.destroy();
      this.inbound.add(conn);
      socket.once('close', () => {
        this.inbound.delete(conn);
        this.inCloseFns.forEach((fn) => fn(conn.id));
      });
      return;
    }
    this.out = conn;
    socket.on('drain', () => this.wakeDrain());
    socket.once('close', () => {
      if (this.out === conn) this.out = null;
      this.wakeDrain();
      this.outFns.forEach((fn) => fn(false));
      this.scheduleDial();
    });
    this.o.log.info({ evt: 'ha.net.up', peer: `${socket.remoteAddress}:${socket.remotePort}` }, 'HA network link up');
    this.outFns.forEach((fn) => fn(true));
  }

  private wakeDrain(): void {
    const w = this.drainWaiters;
    this.drainWaiters = [];
    w.forEach((f) => f());
  }

  /**
   * Writes on the outbound connection, in order. Resolves once the socket has room again
   * (so a bulk sync cannot buffer a whole disk in memory); rejects if there is none.
   */
  async send(header: FrameHeader, body?: Buffer | null): Promise<void> {
    const c = this.out;
    if (!c) throw new Error('HA network link is down');
    if (!c.write(header, body)) {
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
      if (this.out !== c) throw new Error('HA network link went down');
    }
  }

  /** A heartbeat on every connection, unless one is already backed up with data. */
  heartbeat(header: FrameHeader): void {
    for (const c of [...this.inbound, ...(this.out ? [this.out] : [])]) {
      if (c.socket.writableLength < 64 * 1024) c.write(header);
    }
  }

  /** Drops the inbound connections (this box lost its place in the stream). */
  resetInbound(): void {
    for (const c of this.inbound) c.socket.destroy();
  }

  /** Drops the outbound connection (the stream lost its place; a resync follows). */
  resetOutbound(): void {
    this.out?.socket.destroy();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.dialTimer) clearTimeout(this.dialTimer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.out?.socket.destroy();
    for (const c of this.inbound) c.socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
