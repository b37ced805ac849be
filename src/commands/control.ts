import { createServer, connect, type Server, type Socket } from 'node:net';
import { chmod, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** The control socket: one JSON request per line, one JSON response per line. */
export interface ControlRequest {
  argv: string[];
  json?: boolean;
  stdin?: string;
}

export type ControlResponse = { ok: true; text: string; json?: unknown; bytes?: string; exitCode?: number } | { ok: false; error: string };

export function socketPath(configDir: string): string {
  return join(configDir, 'mlsd.sock');
}

export class ControlServer {
  private server: Server | null = null;

  constructor(
    private readonly path: string,
    private readonly handle: (req: ControlRequest) => Promise<ControlResponse>,
  ) {}

  async start(): Promise<void> {
    await assertNotRunning(this.path);
    await unlink(this.path).catch(() => undefined);
    const server = createServer((sock) => this.serve(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    await chmod(this.path, 0o600);
    this.server = server;
  }

  private serve(sock: Socket): void {
    sock.on('error', () => undefined);
    const rl = createInterface({ input: sock });
    rl.on('line', (line) => {
      let req: ControlRequest;
      try {
        req = JSON.parse(line) as ControlRequest;
        if (!Array.isArray(req.argv)) throw new Error('argv missing');
      } catch (err) {
        sock.end(JSON.stringify({ ok: false, error: `bad request: ${(err as Error).message}` }) + '\n');
        return;
      }
      this.handle(req)
        .catch((err: Error): ControlResponse => ({ ok: false, error: err.message }))
        .then((res) => sock.end(JSON.stringify(res) + '\n'));
    });
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    await new Promise<void>((r) => this.server!.close(() => r()));
    await unlink(this.path).catch(() => undefined);
  }
}

/** Refuses a second daemon on one config dir before it touches anything. */
export async function assertNotRunning(path: string): Promise<void> {
  if (await isAlive(path)) throw new Error(`another mlsd is running (control socket ${path} answers)`);
}

function isAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export function request(path: string, req: ControlRequest, timeoutMs = 30000): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer from the daemon on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => s.write(JSON.stringify(req) + '\n'));
    // Decoded as a stream: a character split across two reads (Chinese text) stays whole.
    s.setEncoding('utf8');
    s.on('data', (d: string) => (buf += d));
    s.once('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as ControlResponse);
      } catch {
        reject(new Error('the daemon sent an unreadable answer'));
      }
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? new Error(`mlsd is not running (no control socket at ${path})`)
          : err,
      );
    });
  });
}
