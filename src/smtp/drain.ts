import type { Readable } from 'node:stream';

/**
 * Reads a DATA stream to its end and drops it, so the SMTP session stays in step after a
 * failure. Resolves however the stream ends, and at once if it already has: smtp-server
 * destroys the stream of a client that drops mid-DATA, and a destroyed stream never emits
 * 'end' (waiting for it alone hung the DATA hook for good, with its byte budget claim).
 */
export function drainStream(stream: Readable): Promise<void> {
  return new Promise((resolve) => {
    // Kept after resolving: an error that comes later has a listener and cannot crash the daemon.
    stream.on('error', () => resolve());
    if (stream.readableEnded || stream.destroyed) return resolve();
    stream.once('end', () => resolve());
    stream.once('close', () => resolve());
    stream.resume();
  });
}
