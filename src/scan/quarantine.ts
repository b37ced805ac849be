import { link, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { sublevel, type Db, type BatchOp } from '../store/db.js';
import type { DataDecl } from '../store/data.js';
import type { Durability } from '../store/durability.js';
import { mkdirDurable, type DirSyncer } from '../store/atomic.js';
import type { Envelope } from '../spool/spool.js';
import type { Logger } from '../log/logger.js';
import { DAY_MS } from '../core/clock.js';

const SUBLEVEL = 'quarantine';
const FOLDER = 'quarantine';

/** Quarantined messages: a file each and a record with the verdict, kept until they expire. */
export const QUARANTINE_DATA: DataDecl = {
  owner: 'quarantine',
  sublevels: [{ name: SUBLEVEL, describe: 'quarantined messages: envelope, verdict, expiry', replicate: true, file: (id) => `${FOLDER}/${id}.eml`, merge: () => true }],
  folders: [{ path: FOLDER, describe: 'quarantined message files', replicate: true }],
};

export interface QuarantineRecord {
  id: string;
  envelope: Envelope;
  class: 'spam' | 'virus';
  /** What the scanners found, one line ("builtin:EICAR: attachment eicar.com; clamav:Eicar-Test-Signature"). */
  summary: string;
  quarantined: string;
  expires: string;
}

/**
 * Quarantined messages: the data file under `<data-dir>/quarantine/`, the envelope and
 * verdict in LevelDB. A message moves here from the spool by a hard link and one synced
 * batch that writes the quarantine record and removes the spool record, so a crash leaves
 * it in exactly one of the two (or, before the batch, still in the spool, where recovery
 * sends it here again).
 */
export class QuarantineStore {
  readonly dir: string;

  constructor(
    dataDir: string,
    private readonly db: Db,
    private readonly group: Durability,
    private readonly dirs: DirSyncer,
    private readonly log: Logger,
  ) {
    this.dir = join(dataDir, FOLDER);
  }

  async init(): Promise<void> {
    await mkdirDurable(this.dir, 0o700, (d) => this.dirs.sync(d));
  }

  path(id: string): string {
    return join(this.dir, `${id}.eml`);
  }

  /** Moves a committed spool message into quarantine; `release` is the spool letting go of it. */
  async add(env: Envelope, spoolPath: string, release: BatchOp, days: number, now = new Date()): Promise<QuarantineRecord> {
    const scan = env.scan;
    const rec: QuarantineRecord = {
      id: env.id,
      envelope: env,
      class: scan?.class ?? 'spam',
      summary: scan?.summary ?? '',
      quarantined: now.toISOString(),
      expires: new Date(now.getTime() + days * DAY_MS).toISOString(),
    };
    await link(spoolPath, this.path(env.id)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    await this.dirs.sync(this.dir);
    await this.group.write([
      { type: 'put', sublevel: SUBLEVEL, key: env.id, value: rec },
      release,
    ]);
    await unlink(spoolPath).catch(() => undefined);
    this.log.info({ evt: 'quarantine.add', id: env.id, class: rec.class, from: env.from, rcpt: env.rcpt, login: env.login, ip: env.clientIp, summary: rec.summary }, 'message quarantined');
    return rec;
  }

  /** A quarantined message the other box of an HA pair held alone: its file, then its record. */
  async takeIn(rec: QuarantineRecord, body: Buffer): Promise<void> {
    await this.group.writeFile(`${FOLDER}/${rec.id}.eml`, body);
    await this.group.write([{ type: 'put', sublevel: SUBLEVEL, key: rec.id, value: rec }]);
  }

  async get(id: string): Promise<QuarantineRecord | undefined> {
    return (await sublevel(this.db, SUBLEVEL).get(id)) as QuarantineRecord | undefined;
  }

  async list(): Promise<QuarantineRecord[]> {
    const out: QuarantineRecord[] = [];
    for await (const v of sublevel(this.db, SUBLEVEL).values()) out.push(v as QuarantineRecord);
    return out;
  }

  async content(id: string): Promise<Buffer> {
    if (!(await this.get(id))) throw new Error(`quarantine: no message ${id}`);
    return readFile(this.path(id));
  }

  /** The op that forgets a record (for a release, in the same batch as the spool's record). */
  removeOp(id: string): BatchOp {
    return { type: 'del', sublevel: SUBLEVEL, key: id };
  }

  /** Deletes a quarantined message for good. */
  async remove(id: string): Promise<QuarantineRecord> {
    const rec = await this.get(id);
    if (!rec) throw new Error(`quarantine: no message ${id}`);
    await this.group.write([this.removeOp(id)]);
    await unlink(this.path(id)).catch(() => undefined);
    return rec;
  }

  /**
   * Removes files no record refers to (a crash between a record's removal and its file's):
   * safe, since a released message has its own link in the spool.
   */
  async sweepOrphans(): Promise<number> {
    const known = new Set((await this.list()).map((r) => r.id));
    let n = 0;
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith('.eml') || known.has(name.slice(0, -4))) continue;
      await unlink(join(this.dir, name)).catch(() => undefined);
      n++;
    }
    if (n) this.log.info({ evt: 'quarantine.sweep', removed: n }, 'removed unreferenced quarantine files');
    return n;
  }

  /** Called once a released message is back in the spool. */
  async forgetFile(id: string): Promise<void> {
    await unlink(this.path(id)).catch(() => undefined);
  }

  /** Deletes what has passed its expiry; returns how many. */
  async expire(now = new Date()): Promise<number> {
    let n = 0;
    for (const rec of await this.list()) {
      if (Date.parse(rec.expires) > now.getTime()) continue;
      // Released or deleted meanwhile: nothing to do for it, go on with the others.
      if (await this.remove(rec.id).then(() => true, () => false)) n++;
    }
    if (n) this.log.info({ evt: 'quarantine.expire', removed: n }, 'expired quarantined messages deleted');
    return n;
  }
}
