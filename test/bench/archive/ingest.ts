/**
 * Ingest at scale: the corpus fed through the Archiver directly, in batches of
 * archive.batchMax (as the capability's intake takes them), with the rate, the disk bytes
 * per message by folder and the peak RSS printed.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Archiver } from '../../../src/archive/archiver.js';
import { corpusBatches } from './corpus-stream.js';
import { diskByEntry, fmt, mib, now, pct, procKiB, row } from './measure.js';

export interface IngestFigures {
  messages: number;
  archived: number;
  skipped: number;
  duplicates: number;
  corpusBytes: number;
  withAttachments: number;
  seconds: number;
  /** Time spent inside Archiver.ingest (the rest: waiting for the corpus). */
  busySeconds: number;
  first: number;
  last: number;
  batchMs: number[];
  peakRssKiB: number;
  batchMax: number;
  checkpointMs: number;
}

/** `atCheckpoint`: called (and awaited) once the ingest has passed each of `checkpoints` messages. */
export async function ingestCorpus(
  archiver: Archiver,
  ruleset: string,
  count: number,
  batchMax: number,
  log: (s: string) => void,
  checkpoints: number[] = [],
  atCheckpoint: (n: number, first: number, last: number) => Promise<void> = async () => undefined,
): Promise<IngestFigures> {
  const pending = checkpoints.filter((n) => n < count).sort((a, b) => a - b);
  const f: IngestFigures = { messages: 0, archived: 0, skipped: 0, duplicates: 0, corpusBytes: 0, withAttachments: 0, seconds: 0, busySeconds: 0, first: NaN, last: NaN, batchMs: [], peakRssKiB: 0, batchMax, checkpointMs: 0 };
  const sizes = new Uint32Array(count);
  const t0 = now();
  const every = Math.max(batchMax, Math.round(count / 20 / batchMax) * batchMax);
  let lastReport = { t: t0, n: 0 };
  const widths = [10, 10, 9, 9, 9, 9];
  log(row(['messages', 'ingest s', 'msg/s', 'int msg/s', 'RSS MiB', 'batch p95'], widths));
  for await (const batch of corpusBatches(count, ruleset, batchMax)) {
    for (const m of batch) {
      sizes[f.messages++] = m.bytes.length;
      f.corpusBytes += m.bytes.length;
      if (m.attachments) f.withAttachments++;
      if (Number.isNaN(f.first)) f.first = Date.parse(m.rec.received);
      f.last = Date.parse(m.rec.received);
    }
    const b0 = now();
    const r = await archiver.ingest(batch.map((m) => ({ rec: m.rec, bytes: m.bytes })));
    const ms = now() - b0;
    f.batchMs.push(ms);
    f.busySeconds += ms / 1000;
    f.archived += r.archived;
    f.skipped += r.skipped;
    f.duplicates += r.duplicates;
    if (f.messages - lastReport.n >= every || f.messages === count) {
      const t = now();
      const recent = [...f.batchMs.slice(-Math.ceil(every / batchMax))].sort((a, b) => a - b);
      log(row([String(f.messages), fmt((t - t0 - f.checkpointMs) / 1000), fmt(f.messages / ((t - t0 - f.checkpointMs) / 1000)), fmt((f.messages - lastReport.n) / ((t - lastReport.t) / 1000)), fmt((await procKiB('VmRSS')) / 1024), `${fmt(pct(recent, 95))} ms`], widths));
      lastReport = { t, n: f.messages };
    }
    if (pending.length && f.messages >= pending[0]!) {
      pending.shift();
      const c0 = now();
      await atCheckpoint(f.messages, f.first, f.last);
      // The search's time is not the ingest's.
      lastReport.t += now() - c0;
      f.checkpointMs += now() - c0;
    }
  }
  f.seconds = (now() - t0 - f.checkpointMs) / 1000;
  f.peakRssKiB = await procKiB('VmHWM');
  const sorted = [...sizes.subarray(0, f.messages)].sort((a, b) => a - b);
  log(`corpus: ${f.messages} messages, ${mib(f.corpusBytes)}, size median ${fmt(pct(sorted, 50) / 1024, 1)} KiB, p90 ${fmt(pct(sorted, 90) / 1024, 1)} KiB, p99 ${fmt(pct(sorted, 99) / 1024, 1)} KiB, max ${fmt(sorted.at(-1)! / 1024, 1)} KiB; ${fmt((100 * f.withAttachments) / f.messages, 1)} % with attachments`);
  return f;
}

export async function printIngest(f: IngestFigures, dataDir: string, configDir: string, log: (s: string) => void): Promise<void> {
  const sortedBatches = [...f.batchMs].sort((a, b) => a - b);
  log(`archived ${f.archived}, skipped by the rules ${f.skipped} (spam), stored once as duplicates ${f.duplicates}`);
  log(`ingest rate: ${fmt(f.messages / f.seconds)} msg/s over ${fmt(f.seconds)} s (${fmt(f.messages / f.busySeconds)} msg/s counting only the time inside Archiver.ingest)`);
  log(`Archiver.ingest of a batch of up to ${f.batchMax} messages: p50 ${fmt(pct(sortedBatches, 50))} ms, p95 ${fmt(pct(sortedBatches, 95))} ms, max ${fmt(sortedBatches.at(-1) ?? NaN)} ms`);
  log(`bench process peak RSS (VmHWM; the corpus is made in a child process): ${fmt(f.peakRssKiB / 1024, 1)} MiB`);
  const entries = await diskByEntry(dataDir);
  const total = entries.reduce((s, e) => s + e.bytes, 0);
  log(`disk use of the data dir (du), per archived message (${f.archived}) and per message of the corpus (${f.messages}):`);
  const widths = [26, 12, 10, 10];
  log(row(['folder', 'MiB', 'B/archived', 'B/msg'], widths));
  for (const e of entries) log(row([e.name, fmt(e.bytes / 1048576, 1), fmt(e.bytes / f.archived), fmt(e.bytes / f.messages)], widths));
  log(row(['total', fmt(total / 1048576, 1), fmt(total / f.archived), fmt(total / f.messages)], widths));
  log(`(the corpus itself: ${fmt(f.corpusBytes / f.messages)} B/msg as sent; config dir with the key: ${(await diskByEntry(configDir)).map((e) => `${e.name} ${e.bytes} B`).join(', ')})`);
  await writeFile(join(dataDir, '..', 'bench-meta.json'), JSON.stringify({ messages: f.messages, first: f.first, last: f.last }));
}
