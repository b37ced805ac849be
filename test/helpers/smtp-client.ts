import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/**
 * A line-level SMTP client for tests that pin exact replies and send what real
 * clients refuse to send (garbage, over-long lines, pipelined junk).
 */
export class RawSmtp {
  private buf = '';
  private lines: string[] = [];
  private waiting: (() => void) | null = null;
  closed = false;

  private constructor(private sock: Socket | TLSSocket) {
    this.attach(sock);
  }

  private attach(sock: Socket | TLSSocket): void {
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      let i;
      while ((i = this.buf.indexOf('\r\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 2);
      }
      this.waiting?.();
    });
    sock.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
    sock.on('error', () => undefined);
  }

  static open(host: string, port: number, localAddress?: string, tls = false): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const sock = tls
        ? tlsConnect({ socket: connect({ host, port, localAddress }), rejectUnauthorized: false })
        : connect({ host, port, localAddress });
      sock.once(tls ? 'secureConnect' : 'connect', () => resolve(new RawSmtp(sock)));
      sock.once('error', reject);
    });
  }

  /** The next complete reply (all its lines), joined with \n. */
  async reply(timeoutMs = 15000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const out: string[] = [];
    for (;;) {
      while (this.lines.length) {
        const l = this.lines.shift()!;
        out.push(l);
        if (/^\d{3} /.test(l) || !/^\d{3}-/.test(l)) return out.join('\n');
      }
      if (this.closed) return out.join('\n') || '(closed)';
      if (Date.now() > deadline) throw new Error(`no reply within ${timeoutMs} ms; got ${JSON.stringify(out)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiting = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  send(line: string): void {
    this.sock.write(line + '\r\n');
  }

  writeRaw(data: string | Buffer): void {
    this.sock.write(data);
  }

  /** Resolves once everything written so far has been handed to the kernel (then a close cannot lose it). */
  flushed(): Promise<void> {
    return new Promise((r) => this.sock.write('', () => r()));
  }

  async cmd(line: string): Promise<string> {
    this.send(line);
    return this.reply();
  }

  async starttls(): Promise<void> {
    const r = await this.cmd('STARTTLS');
    if (!r.startsWith('220')) throw new Error(`STARTTLS refused: ${r}`);
    const plain = this.sock;
    plain.removeAllListeners('data');
    this.sock = await new Promise<TLSSocket>((resolve, reject) => {
      const t = tlsConnect({ socket: plain, rejectUnauthorized: false }, () => resolve(t));
      t.once('error', reject);
    });
    this.attach(this.sock);
  }

  /** Sends DATA content (dot-stuffing not applied: give plain lines) and returns the final reply. */
  async data(message: string): Promise<string> {
    const r = await this.cmd('DATA');
    if (!r.startsWith('354')) return r;
    this.writeRaw(message.replace(/\r?\n/g, '\r\n').replace(/(\r\n)?$/, '\r\n') + '.\r\n');
    return this.reply();
  }

  close(): void {
    this.sock.destroy();
  }
}
