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

/**
 * One message in one fresh session from `localAddress`: the reply that ended it (the first
 * refusal of MAIL, RCPT or DATA, or the reply to the final dot).
 */
export async function sendOnce(host: string, port: number, to: string, subject: string, localAddress: string, body = `body ${subject}`): Promise<string> {
  const c = await RawSmtp.open(host, port, localAddress).catch((err: Error) => {
    throw new Error(`${subject}: ${err.message}`);
  });
  try {
    await c.reply();
    await c.cmd('EHLO client.test');
    for (const line of ['MAIL FROM:<sender@remote.test>', `RCPT TO:<${to}>`, 'DATA']) {
      const r = await c.cmd(line);
      if (!/^[23]/.test(r)) return r;
    }
    return await c.cmd(`Subject: ${subject}\r\nFrom: sender@remote.test\r\n\r\n${body}\r\n.`);
  } finally {
    c.close();
  }
}

/**
 * One whole transaction to bob@example.test, every reply checked, timed from connect to the
 * 250 after DATA (the flood tests' bound); the transcript names the step that failed.
 */
export async function timedDelivery(o: { host: string; port: number; from: string; sender: string; login?: [string, string]; subject: string }): Promise<{ ms: number; transcript: string[] }> {
  const t0 = Date.now();
  const transcript: string[] = [];
  const c = await RawSmtp.open(o.host, o.port, o.from);
  const fail = (why: string) => new Error(`${why}\n${transcript.join('\n')}`);
  try {
    const step = async (line: string | null, expect: RegExp) => {
      const r = line === null ? await c.reply() : await c.cmd(line);
      transcript.push(`${line ?? '(greeting)'} -> ${r}`);
      if (!expect.test(r)) throw fail(`expected ${expect}`);
    };
    await step(null, /^220 /);
    await step('EHLO client.example.net', /^250/);
    if (o.login) {
      await c.starttls();
      await step('EHLO client.example.net', /^250/);
      await step(`AUTH PLAIN ${Buffer.from(`\0${o.login[0]}\0${o.login[1]}`).toString('base64')}`, /^235 /);
    }
    await step(`MAIL FROM:<${o.sender}>`, /^250 /);
    await step('RCPT TO:<bob@example.test>', /^250 /);
    const r = await c.data(`From: ${o.sender}\r\nSubject: ${o.subject}\r\n\r\nhello`);
    transcript.push(`DATA -> ${r}`);
    if (!/^250 /.test(r)) throw fail('expected 250 after DATA');
    await c.cmd('QUIT');
  } finally {
    c.close();
  }
  return { ms: Date.now() - t0, transcript };
}
