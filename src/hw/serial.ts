// The port for a serial line (heartbeat, LCD, console). Code above hw/ talks to this interface
// only; the adapter behind it (serialport-line.ts) is chosen in main.ts. A serial cable can be
// pulled, cut or wedged at any time, so the line owns its reconnection: callers write, listen
// and watch the state, and never open or close the device themselves.

export interface SerialLine {
  readonly device: string;
  /** True while the device is open. */
  readonly isOpen: boolean;
  /** Opens the device, and reopens it after any loss, every reopenMs, until stop(). Never throws. */
  start(): void;
  /** Writes; resolves once the data is handed to the OS (drained). Rejects if not open, or after timeoutMs: a write that blocks is a cable fault — the line is then closed and reopened by the loop. */
  write(data: Buffer | string, timeoutMs: number): Promise<void>;
  onData(fn: (chunk: Buffer) => void): void;
  /** Called on every open and every loss, with the reason of a loss. */
  onState(fn: (open: boolean, reason?: string) => void): void;
  stop(): Promise<void>;
}

/** Why a write was refused. Always the system's fault (a device or a cable), never a client's. */
export type SerialErrorKind =
  /** The line was not open when the write was asked for (it is being reopened). */
  | 'notOpen'
  /** The OS did not take the data within the timeout: the far end does not drain the line. */
  | 'writeTimeout'
  /** The OS refused the write (EIO once the far end is gone); the line is being reopened. */
  | 'writeFailed';

export class SerialLineError extends Error {
  override readonly name = 'SerialLineError';
  constructor(
    readonly kind: SerialErrorKind,
    readonly device: string,
    message: string,
  ) {
    super(`${device}: ${message}`);
  }
}
