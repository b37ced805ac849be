/**
 * The corpus made in a child process and streamed over a pipe, so making it runs on the
 * other core beside the ingest and its memory is not counted in the bench process's RSS.
 * Frame: u32 length of the JSON facts, u32 length of the message, the JSON, the message.
 *
 *   node corpus-stream.js COUNT RULESET [SEED]      (writes frames to stdout)
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { Corpus, type CorpusMessage } from './corpus.js';

type Facts = Omit<CorpusMessage, 'bytes'>;

async function produce(count: number, ruleset: string, seed: number | undefined): Promise<void> {
  const out = process.stdout;
  for (const m of new Corpus({ count, ruleset, seed }).messages()) {
    const { bytes, ...facts } = m;
    const json = Buffer.from(JSON.stringify(facts));
    const head = Buffer.allocUnsafe(8);
    head.writeUInt32LE(json.length, 0);
    head.writeUInt32LE(bytes.length, 4);
    if (!out.write(Buffer.concat([head, json, bytes]))) await once(out, 'drain');
  }
  out.end();
}

/** The corpus from a child process, in batches of `batch` messages. */
export async function* corpusBatches(count: number, ruleset: string, batch: number, seed?: number): AsyncGenerator<CorpusMessage[]> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), String(count), ruleset, ...(seed === undefined ? [] : [String(seed)])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let pending: Buffer = Buffer.alloc(0);
  let out: CorpusMessage[] = [];
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let at = 0;
      while (pending.length - at >= 8) {
        const jl = pending.readUInt32LE(at);
        const bl = pending.readUInt32LE(at + 4);
        if (pending.length - at < 8 + jl + bl) break;
        const facts = JSON.parse(pending.toString('utf8', at + 8, at + 8 + jl)) as Facts;
        // A copy: the message outlives the chunk it came in (the archive may keep it in a batch).
        const bytes = Buffer.from(pending.subarray(at + 8 + jl, at + 8 + jl + bl));
        out.push({ ...facts, bytes });
        at += 8 + jl + bl;
        if (out.length >= batch) {
          yield out;
          out = [];
        }
      }
      pending = pending.subarray(at);
    }
    if (out.length) yield out;
    const code = child.exitCode ?? (await once(child, 'exit'))[0];
    if (code !== 0) throw new Error(`corpus-stream exited with ${code}`);
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [count, ruleset, seed] = process.argv.slice(2);
  produce(Number(count), ruleset ?? '', seed === undefined ? undefined : Number(seed)).catch((err: Error) => {
    console.error(`corpus-stream: ${err.message}`);
    process.exit(1);
  });
}
