// The SerialLine adapter over the serialport package, used by both board families: on the linux
// board the device is a UART (/dev/ttyS*, /dev/ttyUSB*), on the sim a pseudo-terminal that socat
// or a test holds the other end of.
//
// serialport has no reconnection of its own, and a lost far end does not show the same way on
// both sides: a line that is reading sees a read error and serialport closes it ('close' with a
// DisconnectedError; always, only thanks to readOrHangUp below); a line that only writes sees
// nothing until its next write fails (EIO). And a far end that stops draining (flow control
// held, a wedged peer) shows nothing at all: writes just never complete. This adapter turns all
// three into one "lost" event and reopens the device every reopenMs until it is back, with a
// fresh SerialPort each time: a SerialPort whose write failed is a destroyed stream and cannot be
// opened again.
import { existsSync, read as fsRead } from 'node:fs';
import { promisify } from 'node:util';
import { SerialPort } from 'serialport';
import type { Logger } from '../log/logger.js';
import { SerialLineError, type SerialLine } from './serial.js';

const DEFAULT_REOPEN_MS = 1000;
// Closing a real UART waits in the kernel until its output has gone (closing_wait, 30 s by
// default), which never happens while flow control holds it; stop() does not wait that long.
const CLOSE_WAIT_MS = 2000;

/** What serialport's unix port binding (LinuxPortBinding) has beyond its interface. */
interface UnixPortBinding {
  fd: number | null;
  readonly poller: { once(event: 'readable', cb: (err: Error | null) => void): unknown };
  read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }>;
}

const readAsync = promisify(fsRead);

/**
 * A read that reports a hang-up. serialport's unix read retries a read that returned 0 bytes, at
 * once and for ever (serialport/bindings-cpp#162, still so in 13.0.0). On a tty opened as it
 * opens them (O_NONBLOCK, VMIN 1) a read with nothing to read fails with EAGAIN; 0 bytes, end of
 * file, comes only once the line is hung up: the far end of a pseudo-terminal closed (socat gone),
 * a USB adapter pulled. There it spins a libuv pool thread flat out and never reports the loss
 * (seen with a socat pair: whether a hang-up shows as this or as a poll error is down to timing).
 * This is its read with end of file made an error, which the stream turns into a disconnect.
 */
async function readOrHangUp(port: UnixPortBinding, buffer: Buffer, offset: number, length: number) {
  for (;;) {
    // `canceled` tells the stream that we closed the port ourselves, so this is no disconnect.
    if (port.fd === null) throw Object.assign(new Error('Port is not open'), { canceled: true });
    let bytesRead: number;
    try {
      ({ bytesRead } = await readAsync(port.fd, buffer, offset, length, null));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK' && code !== 'EINTR') throw err;
      await new Promise<void>((resolve, reject) => port.poller.once('readable', (e) => (e ? reject(e) : resolve())));
      continue;
    }
    if (bytesRead === 0) throw new Error('hang-up (the line reads end of file)');
    return { buffer, bytesRead };
  }
}

/** Puts readOrHangUp in place of the binding's read, on a unix binding (the only kind mlsd runs). */
function readHangUps(p: SerialPort): void {
  const port = p.port as unknown as Partial<UnixPortBinding> | undefined;
  if (!port || !('fd' in port) || !port.poller) return;
  const unix = port as UnixPortBinding;
  unix.read = (buffer, offset, length) => readOrHangUp(unix, buffer, offset, length);
}

export function serialportLine(device: string, baud: number, log: Logger, opts: { reopenMs?: number } = {}): SerialLine {
  const reopenMs = opts.reopenMs ?? DEFAULT_REOPEN_MS;
  const dataFns: ((chunk: Buffer) => void)[] = [];
  const stateFns: ((open: boolean, reason?: string) => void)[] = [];
  let running = false;
  /** The open SerialPort; null while closed. Events of any other (older) instance are stale. */
  let port: SerialPort | null = null;
  /** An open in flight, so that stop() can wait for it to land. */
  let opening: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;
  /** Why the last open failed: the same reason again is logged at debug, so a device that stays
   *  away (a cut cable, a sim not started yet) gives one warning, not one every reopenMs. */
  let lastFailure: string | null = null;

  const safely = (what: string, f: () => void) => {
    try {
      f();
    } catch (err) {
      log.error({ evt: 'serial.listenerError', device, what, err }, 'a serial line listener threw');
    }
  };
  const deliver = (chunk: Buffer) => {
    for (const fn of dataFns) safely('onData', () => fn(chunk));
  };
  const notify = (open: boolean, reason?: string) => {
    for (const fn of stateFns) safely('onState', () => fn(open, reason));
  };

  function schedule(): void {
    if (!running || timer || opening || port) return;
    timer = setTimeout(attempt, reopenMs);
  }

  function attempt(): void {
    timer = null;
    if (!running || opening || port) return;
    let p: SerialPort;
    try {
      p = new SerialPort({
        path: device,
        baudRate: baud,
        autoOpen: false,
        // No flock. It is advisory, so it would bar only another opener that locks too: on the
        // sim, a test's or a person's serialport tool sharing the pseudo-terminal.
        lock: false,
        // Raw comes with serialport's open: no echo, no line editing, no output processing, no
        // XON/XOFF. It leaves the other input flags as the device had them: socat's `raw` clears
        // them on the sim; a UART's kernel default keeps ICRNL (CR read as LF).
      });
    } catch (err) {
      openFailed((err as Error).message);
      return;
    }
    // Without an 'error' listener a failed write would throw from the stream. Every error
    // serialport emits is also a loss, reported once by lost().
    p.on('error', (err: Error) => lost(p, err.message));
    // Emitted by serialport's own close after a read error (with a DisconnectedError), and once
    // more by the stream when a write error destroys it; lost() counts only the first.
    p.on('close', (err?: Error | null) => lost(p, err?.message ?? 'closed'));
    // 'open' comes before the open callback and before any read the stream queued for it.
    p.once('open', () => readHangUps(p));
    opening = new Promise((resolve) => {
      p.open((err) => {
        opening = null;
        resolve();
        if (err) return openFailed(existsSync(device) ? err.message : 'no such device');
        if (!running) return void closeWithin(p);
        port = p;
        lastFailure = null;
        if (dataFns.length > 0) p.on('data', deliver);
        log.info({ evt: 'serial.open', device, baud });
        notify(true);
      });
    });
  }

  function openFailed(reason: string): void {
    const repeat = reason === lastFailure;
    lastFailure = reason;
    log[repeat ? 'debug' : 'warn']({ evt: 'serial.openFailed', device, reason, retryMs: reopenMs });
    schedule();
  }

  function lost(p: SerialPort, reason: string): void {
    if (p !== port) return;
    port = null;
    log.warn({ evt: 'serial.lost', device, reason });
    void closeWithin(p);
    notify(false, reason);
    schedule();
  }

  /** Closes p if serialport has not already; never rejects, and gives up waiting after
   *  CLOSE_WAIT_MS (the close goes on in the background). */
  function closeWithin(p: SerialPort): Promise<void> {
    if (!p.isOpen) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, CLOSE_WAIT_MS);
      p.close(() => (clearTimeout(t), resolve()));
    });
  }

  return {
    device,
    get isOpen() {
      return port !== null;
    },
    start() {
      if (running) return;
      running = true;
      attempt();
    },
    write(data, timeoutMs) {
      const p = port;
      if (!p) return Promise.reject(new SerialLineError('notOpen', device, 'not open'));
      return new Promise((resolve, reject) => {
        let settled = false;
        const t = setTimeout(() => {
          settled = true;
          log.warn({ evt: 'serial.writeTimeout', device, timeoutMs, bytes: Buffer.byteLength(data) });
          reject(new SerialLineError('writeTimeout', device, `write not taken within ${timeoutMs} ms`));
          lost(p, `write blocked for ${timeoutMs} ms`);
        }, timeoutMs);
        // The callback fires once the OS has taken every byte (write(2) on a non-blocking fd,
        // waiting for writable in between). No drain(): that is tcdrain(3), which blocks a
        // libuv pool thread until the UART has sent everything; a wedged cable would keep one
        // of the four threads (shared with fs, dns, zlib) for good.
        p.write(data, (err) => {
          clearTimeout(t);
          if (settled) return;
          settled = true;
          if (!err) return resolve();
          reject(new SerialLineError('writeFailed', device, err.message));
          lost(p, err.message);
        });
      });
    },
    onData(fn) {
      dataFns.push(fn);
      // A line reads only once someone listens. A write-only line (the LCD) leaves its input to
      // the kernel, and so learns of a loss on its next write, not before.
      if (dataFns.length === 1 && port) port.on('data', deliver);
    },
    onState(fn) {
      stateFns.push(fn);
    },
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      timer = null;
      await opening; // an open that lands now closes itself (running is false)
      const p = port;
      port = null;
      // No onState(false): a stop is not a loss, and must not look like a cable fault above.
      if (p) await closeWithin(p);
    },
  };
}
