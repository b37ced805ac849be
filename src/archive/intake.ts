import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { sublevel, type BatchOp, type Db } from '../store/db.js';
import type { Clock, Timer } from '../core/clock.js';
import type { Logger } from '../log/logger.js';
import type { EventInput } from '../events/events.js';
import type { IntakeRecord } from './types.js';
import type { Archiver } from './archiver.js';

export const INTAKE = 'archive-intake';
export const INTAKE_FOLDER = 'archive-intake';
export const intakeFile = (id: string) => `${INTAKE_FOLDER}/${id}.eml`;

/** One batch holds at most this many bytes of messages (a batch of large attachments stays small). */
const BATCH_BYTES = 32 * 1024 * 1024;
const RETRY_MS = 30_000;

export interface IntakeDeps {
  db: Db;
  dataDir: string;
  archiver: Archiver;
  batchMax: () => number;
  /** archive.busyShare: the share of the time intake may work while mail is arriving. */
  busyShare: () => number;
  /** Why nothing may be taken in now (a damaged chain), or null. */
  halted: () => string | null;
  clock: Clock;
  log: Logger;
  emit: (ev: EventInput) => void;
}

/**
 * Moves committed messages from the intake (records written in the commit's own batch,
 * each with a hard link to the spool file) into the archive, a batch at a time, off the
 * SMTP path. A batch's intake records are removed in the archive's own synced batch, so a
 * crash at any point leaves each message either still in the intake or archived.
 */
export class IntakeProcessor {
  private timer: Timer | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private failing = false;
  private lastCommit = 0;
  /** The last batch's ids (to tell which message a failure belongs to). */
  private lastBatch: string[] = [];
  /** After a batch failed, this many batches take one message each, so one bad message is found. */
  private solo = 0;
  private readonly strikes = new Map<string, number>();
  /** Messages that failed alone three times: left in the intake, skipped until the next start. */
  readonly setAside = new Set<string>();

  constructor(private readonly d: IntakeDeps) {}

  /** A message was committed: a batch runs shortly (messages arriving meanwhile join it). */
  committed(): void {
    this.lastCommit = this.d.clock.now();
    this.nudge();
  }

  /** While mail arrives (a commit within the last second) the box is busy serving it. */
  private busy(): boolean {
    return this.d.clock.now() - this.lastCommit < 1000;
  }

  nudge(delayMs = 50): void {
    if (this.stopped || this.timer) return;
    this.timer = this.d.clock.setTimeout(() => {
      this.timer = null;
      void this.run();
    }, delayMs);
  }

  run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          const started = this.d.clock.now();
          const n = await this.batch();
          if (n > 0) this.again = true;
          // While mail is arriving, the intake takes its share of the time and then gives the
          // box back (it is durable, and catches up when the box is quiet): archiving must cost
          // SMTP acceptance little.
          if (this.again && this.busy()) await this.pause((this.d.clock.now() - started) * (1 / this.d.busyShare() - 1));
        } while (this.again && !this.stopped);
        if (this.failing) this.d.log.info({ evt: 'archive.intake.recovered' }, 'archive intake works again');
        this.failing = false;
      } catch (err) {
        const msg = (err as Error).message;
        this.isolate(msg);
        this.d.log.error({ evt: 'archive.intake.fail', err: msg, retryMs: RETRY_MS }, 'could not take mail into the archive; it stays in the intake and is tried again');
        if (!this.failing) this.d.emit({ kind: 'archive.intake.fail', severity: 'warning', text: `archive intake failed (mail waits in the intake, nothing is lost): ${msg}` });
        this.failing = true;
        this.nudge(RETRY_MS);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  /**
   * A batch failed. One that held several messages is taken again one message at a time; a
   * message that fails alone three times (a message the parser cannot survive, a rule set
   * this box never recorded) is set aside, with a critical event, so the rest of the intake
   * goes on. It stays in the intake (nothing is lost) and is tried again at the next start.
   */
  private isolate(err: string): void {
    if (this.lastBatch.length > 1) {
      this.solo = this.lastBatch.length;
      return;
    }
    const id = this.lastBatch[0];
    if (id === undefined) return;
    const n = (this.strikes.get(id) ?? 0) + 1;
    this.strikes.set(id, n);
    if (n < 3) return;
    this.strikes.delete(id);
    this.setAside.add(id);
    this.d.log.error({ evt: 'archive.intake.setAside', id, err }, 'a message failed the archive intake three times; set aside');
    this.d.emit({ kind: 'archive.intake.setAside', severity: 'critical', text: `message ${id} could not be archived (${err}); it stays in the archive intake and is tried again at the next start` });
  }

  private async batch(): Promise<number> {
    const { db, dataDir, archiver } = this.d;
    if (this.d.halted()) return 0;
    const recs: IntakeRecord[] = [];
    let bytes = 0;
    const max = this.solo > 0 ? 1 : this.d.batchMax();
    for await (const v of sublevel(db, INTAKE).values()) {
      const rec = v as IntakeRecord;
      if (this.setAside.has(rec.id)) continue;
      if (recs.length && (recs.length >= max || bytes + rec.size > BATCH_BYTES)) break;
      recs.push(rec);
      bytes += rec.size;
    }
    this.lastBatch = recs.map((r) => r.id);
    if (!recs.length) return 0;
    const items: { rec: IntakeRecord; bytes: Buffer }[] = [];
    const done: BatchOp[] = [];
    for (const rec of recs) {
      done.push({ type: 'del', sublevel: INTAKE, key: rec.id });
      const body = await this.read(rec);
      if (body) items.push({ rec, bytes: body });
    }
    const r = await archiver.ingest(items, done);
    await Promise.all(recs.map((rec) => unlink(join(dataDir, intakeFile(rec.id))).catch(() => undefined)));
    this.d.log.info({ evt: 'archive.intake', messages: recs.length, archived: r.archived, skipped: r.skipped, duplicates: r.duplicates }, 'mail taken into the archive');
    if (this.solo > 0) this.solo--;
    for (const rec of recs) this.strikes.delete(rec.id);
    return recs.length;
  }

  /** The intake's link; else the spool's file (an HA standby that got the record before the message). */
  private async read(rec: IntakeRecord): Promise<Buffer | null> {
    for (const rel of [intakeFile(rec.id), `spool/${rec.id}.eml`]) {
      const b = await readFile(join(this.d.dataDir, rel)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw err;
      });
      if (b) return b;
    }
    this.d.log.error({ evt: 'archive.intake.lost', id: rec.id, from: rec.from, rcpt: rec.rcpt }, 'a message to archive has no file');
    this.d.emit({ kind: 'archive.intake.lost', severity: 'critical', text: `message ${rec.id} from <${rec.from}> to ${rec.rcpt.join(', ')} could not be archived: its file is gone` });
    return null;
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = this.d.clock.setTimeout(() => resolve(), Math.min(ms, 10_000));
      this.pausing = { t, resolve: () => resolve() };
    }).finally(() => (this.pausing = null));
  }

  private pausing: { t: Timer; resolve: () => void } | null = null;

  async count(): Promise<number> {
    let n = 0;
    for await (const _ of sublevel(this.d.db, INTAKE).keys()) n++;
    return n;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pausing) {
      this.d.clock.clearTimeout(this.pausing.t);
      this.pausing.resolve();
    }
    if (this.timer) this.d.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
