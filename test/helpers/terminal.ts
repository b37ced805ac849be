// A person at a serial terminal, for console tests: holds one end of a pty pair, types bytes and
// reads what the far end prints, as `screen` or `minicom` would show it (raw).
//
// The end is opened with plain fs and driven through libuv's tty stream, not with serialport:
// serialport's poller stops waiting for "readable" while a write waits for "writable", so a
// terminal that types a lot while the far end echoes a lot stopped reading; the echo filled the
// pty, socat blocked writing it and stopped taking our input, and both sides waited for ever
// (seen on a loaded machine). A libuv stream reads and writes on one watcher.
import { closeSync, constants, openSync } from 'node:fs';
import { ReadStream } from 'node:tty';

/** The most typed at once (a fast paste, not a megabyte in one write). */
const PIECE = 1024;

export class Terminal {
  /** Everything received since open, as text. */
  received = '';
  /** Where the next expect() starts looking. */
  private mark = 0;
  private waiters: (() => void)[] = [];

  private constructor(private readonly port: ReadStream) {
    port.on('data', (c: Buffer) => {
      this.received += c.toString('utf8');
      for (const w of this.waiters.splice(0)) w();
    });
    port.on('error', () => undefined);
  }

  static async open(device: string): Promise<Terminal> {
    // O_NOCTTY: the test process must not make the pty its controlling terminal.
    const fd = openSync(device, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
    try {
      return new Terminal(new ReadStream(fd));
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /**
   * Sends bytes as typed (nothing added), in small pieces: a large write that cannot be taken
   * at once makes the serialport binding wait for "writable", and while it waits this end was
   * seen to stop reading (a loaded machine): the far end's echo then fills the line, socat
   * blocks writing it, stops reading our side, and both wait for ever. A piece at a time, the
   * echo is read between pieces. A piece the line does not take within timeoutMs fails the test.
   */
  async type(data: string | Buffer, timeoutMs = 30000): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let at = 0; at < bytes.length || at === 0; at += PIECE) {
      const piece = bytes.subarray(at, at + PIECE);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`terminal: the line took no input for ${timeoutMs} ms`)), timeoutMs);
        this.port.write(piece, (err) => {
          clearTimeout(t);
          if (err) reject(err);
          else resolve();
        });
      });
      if (bytes.length === 0) break;
      // Let the reads that came in meanwhile run before the next piece.
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Types a line and Enter (CR, as terminals send it). */
  line(text: string): Promise<void> {
    return this.type(text + '\r');
  }

  /** Output since the last expect() (or since open). */
  get since(): string {
    return this.received.slice(this.mark);
  }

  /** Waits until the output after the mark matches, moves the mark past the match, and returns the text up to its end. */
  async expect(want: RegExp | string, timeoutMs = 15000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rest = this.received.slice(this.mark);
      const idx = typeof want === 'string' ? rest.indexOf(want) : rest.search(want);
      if (idx !== -1) {
        const len = typeof want === 'string' ? want.length : rest.slice(idx).match(want)![0].length;
        this.mark += idx + len;
        return rest.slice(0, idx + len);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`terminal: timed out waiting for ${String(want)}; got ${JSON.stringify(rest.slice(-400))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  /** Skips everything received so far. */
  skip(): void {
    this.mark = this.received.length;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.port.destroyed) return resolve();
      this.port.once('close', () => resolve());
      this.port.destroy();
    });
  }
}
