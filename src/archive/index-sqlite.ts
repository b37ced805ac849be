import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ArchiveIndex, IndexDoc, SearchQuery, SearchResult } from './types.js';
import type { IndexReply, IndexRequest, IndexWorkerData } from './index-sqlite-worker.js';
import { fsyncDir, mkdirDurable } from '../store/atomic.js';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };
type Op = IndexRequest extends infer R ? (R extends { op: infer O } ? O : never) : never;

/**
 * The archive's search index: SQLite FTS5 on the data disk (folder `dir`), holding only
 * hashed terms (src/archive/tokenize.ts). The database lives in a worker thread
 * (index-sqlite-worker.ts); every method here is a message to it, so the main thread never
 * runs SQLite and a batch of inserts or a long search never blocks SMTP.
 */
export class SqliteArchiveIndex implements ArchiveIndex {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failed: Error | null = null;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: IndexReply) => {
      if (!('id' in m)) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`archive index: ${m.error}`));
    });
    const fail = (err: Error) => {
      this.failed = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err) => fail(new Error(`archive index worker failed: ${err.message}`)));
    worker.on('exit', (code) => fail(new Error(`archive index worker exited (code ${code})`)));
  }

  static async open(dir: string, termKey: Buffer): Promise<SqliteArchiveIndex> {
    if (termKey.length !== 32) throw new Error(`archive term key: expected 32 bytes, got ${termKey.length}`);
    // The index is rebuilt from the chain when it is behind, but a folder or a database file
    // whose name never reached the disk costs a rebuild from zero after every power cut:
    // the folder is made durably, and synced again once SQLite made its files in it.
    await mkdirDurable(dir, 0o700);
    const workerData: IndexWorkerData = { file: join(dir, 'index.sqlite'), termKey: new Uint8Array(termKey) };
    // Resolved next to this file, so it is the compiled worker when running from dist/.
    const worker = new Worker(new URL('./index-sqlite-worker.js', import.meta.url), { workerData });
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`archive index ${dir}: worker exited (code ${code}) before opening`));
      const onError = (err: Error) => reject(new Error(`archive index ${dir}: ${err.message}`));
      worker.once('exit', onExit);
      worker.once('error', onError);
      worker.once('message', (m: IndexReply) => {
        worker.off('exit', onExit);
        worker.off('error', onError);
        if ('ready' in m && m.ready) resolve();
        else {
          void worker.terminate();
          reject(new Error(`archive index ${dir}: cannot open: ${'error' in m ? m.error : 'unexpected reply'}`));
        }
      });
    });
    await fsyncDir(dir);
    return new SqliteArchiveIndex(worker);
  }

  private call<T>(op: Op, args: object = {}): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, op, ...args });
    });
  }

  add(docs: IndexDoc[]): Promise<void> {
    return this.call('add', { docs });
  }

  remove(seqs: number[]): Promise<void> {
    return this.call('remove', { seqs });
  }

  search(q: SearchQuery): Promise<SearchResult> {
    return this.call('search', { q });
  }

  indexedUpTo(): Promise<number> {
    return this.call('indexedUpTo');
  }

  clear(): Promise<void> {
    return this.call('clear');
  }

  async close(): Promise<void> {
    if (this.failed) return;
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    await this.call('close');
    await exited;
  }
}

/** Opens (creating if need be) the archive index in folder `dir` of the data disk. */
export function openSqliteIndex(dir: string, termKey: Buffer): Promise<SqliteArchiveIndex> {
  return SqliteArchiveIndex.open(dir, termKey);
}
