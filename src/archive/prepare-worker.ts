import { parentPort, workerData } from 'node:worker_threads';
import type { ArchiveKeys } from './keys.js';
import { prepareMessage, type Prepared } from './prepare-core.js';
import { lowerThreadPriority } from './thread-priority.js';

/** What the archive's prepare worker is started with. */
export interface PrepareWorkerData {
  keys: { seal: Uint8Array; address: Uint8Array; chain: Uint8Array; term: Uint8Array; fingerprint: string };
}

export type PrepareRequest = { n: number; encrypt: boolean; items: { id: string; bytes: Uint8Array }[] };
export type PrepareReply = { n: number; ok: true; prepared: Prepared[] } | { n: number; ok: false; error: string };

const d = workerData as PrepareWorkerData;
const keys: ArchiveKeys = { seal: Buffer.from(d.keys.seal), address: Buffer.from(d.keys.address), chain: Buffer.from(d.keys.chain), term: Buffer.from(d.keys.term), fingerprint: d.keys.fingerprint };

// Parsing and sealing give way to the thread serving SMTP (thread-priority.ts).
lowerThreadPriority();

parentPort!.on('message', (req: PrepareRequest) => {
  void (async () => {
    try {
      const prepared: Prepared[] = [];
      for (const it of req.items) prepared.push(await prepareMessage(keys, req.encrypt, it.id, Buffer.from(it.bytes.buffer, it.bytes.byteOffset, it.bytes.byteLength)));
      parentPort!.postMessage({ n: req.n, ok: true, prepared } satisfies PrepareReply);
    } catch (err) {
      parentPort!.postMessage({ n: req.n, ok: false, error: (err as Error).message } satisfies PrepareReply);
    }
  })();
});
