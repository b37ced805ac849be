import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP relay standing in for the network between two boxes, so a test can cut it. A cut
 * is a black hole, as a pulled cable is: connections stay open but nothing passes either
 * way, so the ends only learn of it by silence. `restore` lets traffic through again for
 * connections made from then on (the ends drop the old ones by their own watchdogs).
 */
export class TcpProxy {
  private server: Server | null = null;
  private readonly pairs = new Set<{ a: Socket; b: Socket; held: boolean }>();
  cutNow = false;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly target: { host: string; port: number },
    /** Pauses the client side this long after each chunk it sends (a slow uplink: a test can act in mid-upload). */
    private readonly paceMs = 0,
  ) {}

  static async start(host: string, port: number, target: { host: string; port: number }, opts: { paceMs?: number } = {}): Promise<TcpProxy> {
    const p = new TcpProxy(host, port, target, opts.paceMs);
    await p.listen();
    return p;
  }

  private listen(): Promise<void> {
    this.server = createServer((a) => {
      a.on('error', () => undefined);
      if (this.cutNow) {
        // Accepted and then ignored: to the dialler this looks like a peer that never answers.
        const pair = { a, b: a, held: true };
        this.pairs.add(pair);
        a.once('close', () => this.pairs.delete(pair));
        a.pause();
        return;
      }
      const b = connect({ host: this.target.host, port: this.target.port, localAddress: this.host });
      b.on('error', () => undefined);
      // Without it Nagle and delayed ACKs add ~80 ms to every replicated commit.
      a.setNoDelay(true);
      b.setNoDelay(true);
      const pair = { a, b, held: false };
      this.pairs.add(pair);
      a.on('data', (d) => {
        if (!pair.held) b.write(d);
        if (this.paceMs > 0) {
          a.pause();
          setTimeout(() => a.resume(), this.paceMs);
        }
      });
      b.on('data', (d) => {
        if (!pair.held) a.write(d);
      });
      const end = () => {
        a.destroy();
        b.destroy();
        this.pairs.delete(pair);
      };
      a.once('close', end);
      b.once('close', end);
    });
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.port, this.host, () => resolve());
    });
  }

  /** Nothing passes any more, in either direction, on old or new connections. */
  cut(): void {
    this.cutNow = true;
    for (const p of this.pairs) p.held = true;
  }

  /** New connections pass again; the ones held during the cut are dropped. */
  restore(): void {
    this.cutNow = false;
    for (const p of this.pairs) {
      if (p.held) {
        p.a.destroy();
        p.b.destroy();
      }
    }
  }

  async stop(): Promise<void> {
    for (const p of this.pairs) {
      p.a.destroy();
      p.b.destroy();
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
