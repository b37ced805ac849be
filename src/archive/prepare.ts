import { Worker } from 'node:worker_threads';
import type { ArchiveKeys } from './keys.js';
import type { Prepared } from './prepare-core.js';
import type { PrepareReply, PrepareRequest, PrepareWorkerData } from './prepare-worker.js';

/** Turns message bytes into what the archive stores (prepare-core.ts), off the main thread. */
export interface Preparer {
  prepare(items: { id: string; bytes: Buffer }[], encrypt: boolean): Promise<Prepared[]>;
  close(): Promise<void>;
}

/**
 * One worker thread: parsing, hashing, compressing and encrypting a batch takes it about a
 * millisecond per 4 KiB message, CPU the thread serving SMTP would otherwise spend. A
 * worker that dies is started again at the next batch (the batch it held fails and is
 * retried by the intake).
 */
export function workerPreparer(keys: ArchiveKeys): Preparer {
  let worker: Worker | null = null;
  let n = 0;
  const pending = new Map<number, { resolve: (p: Prepared[]) => void; reject: (e: Error) => void }>();
  const start = (): Worker => {
    const workerData: PrepareWorkerData = { keys: { seal: new Uint8Array(keys.seal), address: new Uint8Array(keys.address), chain: new Uint8Array(keys.chain), term: new Uint8Array(keys.term), fingerprint: keys.fingerprint } };
    // Resolved next to this file, so it is the compiled worker when running from dist/.
    const w = new Worker(new URL('./prepare-worker.js', import.meta.url), { workerData });
    w.unref();
    w.on('message', (m: PrepareReply) => {
      const p = pending.get(m.n);
      if (!p) return;
      pending.delete(m.n);
      if (m.ok) p.resolve(m.prepared.map(revive));
      else p.reject(new Error(`archive prepare: ${m.error}`));
    });
    const fail = (err: Error) => {
      if (worker === w) worker = null;
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    };
    w.on('error', (err) => fail(new Error(`archive prepare worker failed: ${err.message}`)));
    w.on('exit', (code) => fail(new Error(`archive prepare worker exited (code ${code})`)));
    return w;
  };
  return {
    prepare(items, encrypt) {
      const w = (worker ??= start());
      const id = ++n;
      return new Promise<Prepared[]>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        w.postMessage({ n: id, encrypt, items: items.map((i) => ({ id: i.id, bytes: i.bytes })) } satisfies PrepareRequest);
      });
    },
    async close() {
      const w = worker;
      worker = null;
      await w?.terminate();
    },
  };
}

/** Buffers arrive from the worker as plain Uint8Arrays. */
function revive(p: Prepared): Prepared {
  return {
    ...p,
    content: { ...p.content, sealed: Buffer.from(p.content.sealed.buffer, p.content.sealed.byteOffset, p.content.sealed.byteLength) },
    text: { ...p.text, sealed: Buffer.from(p.text.sealed.buffer, p.text.sealed.byteOffset, p.text.sealed.byteLength) },
  };
}
