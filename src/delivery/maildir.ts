import { open, readdir, rename, unlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join, relative } from 'node:path';
import { hostname } from 'node:os';
import { createHash } from 'node:crypto';
import { mkdirDurable, type DirSyncer } from '../store/atomic.js';
import { exists, type DataDecl } from '../store/data.js';
import type { Durability } from '../store/durability.js';

const MAIL_FOLDER = 'mail';

/** A Maildir file's folder and unique name (without the ":2,flags" a mail client adds). */
function maildirName(rel: string): { box: string; base: string } | null {
  const m = /^(mail\/.+)\/(?:new|cur)\/([^/:]+)(?::.*)?$/.exec(rel);
  return m ? { box: m[1]!, base: m[2]! } : null;
}

/**
 * Mailboxes: the users' mail, under `mail/<domain>/<user>/Maildir`. A mail client moves a
 * message from new/ to cur/ and adds flags to its name; its identity is its folder and
 * unique name, wherever it sits now.
 */
export const MAILDIR_DATA: DataDecl = {
  owner: 'mailboxes',
  folders: [
    {
      path: MAIL_FOLDER,
      describe: 'users\' mailboxes (Maildir++), read by Dovecot',
      replicate: true,
      skipDirs: ['tmp'],
      merge: true,
      restoreRank: (rel, mtimeMs, recentSinceMs) => {
        if (/^mail\/[^/]+\/[^/]+\/(contacts|webdisk)\//.test(rel)) return 2;
        const inbox = /^mail\/[^/]+\/[^/]+\/Maildir\/(new|cur)\//.test(rel);
        return inbox || mtimeMs >= recentSinceMs ? 0 : 1;
      },
      identity: (rel) => {
        const m = maildirName(rel);
        return m ? `${m.box}/*/${m.base}` : rel;
      },
      locate: async (dataDir, rel) => {
        const m = maildirName(rel);
        if (!m) return (await exists(join(dataDir, rel))) ? rel : null;
        for (const sub of ['new', 'cur']) {
          const names = await readdir(join(dataDir, `${m.box}/${sub}`)).catch(() => [] as string[]);
          const name = names.find((n) => n === m.base || n.startsWith(`${m.base}:`));
          if (name) return `${m.box}/${sub}/${name}`;
        }
        return null;
      },
    },
  ],
};

/**
 * Maildir++ delivery, the layout Dovecot reads: <data>/mail/<domain>/<user>/Maildir.
 * Per the Maildir spec: write under tmp/ with a unique name, fsync, rename into new/,
 * then fsync new/ (shared between concurrent deliveries to one mailbox).
 */
export class MaildirDelivery {
  private seq = 0;
  private readonly host = hostname().replace(/[/:]/g, '_');
  private readonly made = new Set<string>();

  private readonly mailRoot: string;

  constructor(
    private readonly dataDir: string,
    private readonly dirs: DirSyncer,
    /** Told of every file delivered: for a spool message, with its id and the header lines in front. */
    private readonly durability: Pick<Durability, 'fileWritten'>,
  ) {
    this.mailRoot = join(dataDir, MAIL_FOLDER);
  }

  mailboxPath(address: string): string {
    const at = address.lastIndexOf('@');
    return join(this.mailRoot, address.slice(at + 1), address.slice(0, at), 'Maildir');
  }

  private async ensure(box: string): Promise<void> {
    if (this.made.has(box)) return;
    // A first delivery makes mail/<domain>/<user>/Maildir/{tmp,new,cur}: their parents are
    // synced, or a power cut could take the new mailbox (and the message in it) away.
    await mkdirDurable(['tmp', 'new', 'cur'].map((sub) => join(box, sub)), 0o700, (d) => this.dirs.sync(d));
    this.made.add(box);
  }

  /**
   * The name of one message's copy for one recipient, the same on every try and on both
   * boxes of an HA pair: delivering it again replaces the file instead of adding a second
   * copy, and the two boxes' mailboxes merge by name after both served alone.
   */
  private stableName(id: string, rcpt: string, size: number): string {
    const ms = parseInt(id.slice(0, 9), 36);
    const sec = Number.isFinite(ms) ? Math.floor(ms / 1000) : 0;
    const r = createHash('sha256').update(rcpt).digest('hex').slice(0, 12);
    // A fixed host part: the two boxes of a pair must pick the same name.
    return `${sec}.M${id}R${r}.mlsd,S=${size}`;
  }

  private uniqueName(size: number): string {
    const now = Date.now();
    const sec = Math.floor(now / 1000);
    const usec = (now % 1000) * 1000 + (this.seq % 1000);
    return `${sec}.M${usec}P${process.pid}Q${++this.seq}.${this.host},S=${size}`;
  }

  /**
   * Delivers one copy; `prefix` holds the per-recipient header lines (Return-Path,
   * Delivered-To). The message comes from `body` when the caller has it in memory (one
   * write), else it is streamed from the spool file.
   */
  async deliver(address: string, prefix: string, sourcePath: string, sourceSize: number, body?: Buffer[], messageId?: string): Promise<string> {
    const box = this.mailboxPath(address);
    await this.ensure(box);
    const head = Buffer.from(prefix);
    const name = messageId ? this.stableName(messageId, address, head.length + sourceSize) : this.uniqueName(head.length + sourceSize);
    const tmp = join(box, 'tmp', name);
    // 'w', not 'wx': a stable name's temp file may be left from a crash in this very step.
    const fh = await open(tmp, messageId ? 'w' : 'wx', 0o600);
    try {
      if (body) await fh.writev([head, ...body]);
      else {
        await fh.write(head);
        for await (const chunk of createReadStream(sourcePath, { highWaterMark: 1024 * 1024 })) await fh.write(chunk as Buffer);
      }
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    const final = join(box, 'new', name);
    await rename(tmp, final);
    await this.dirs.sync(join(box, 'new'));
    this.durability.fileWritten(relative(this.dataDir, final), messageId ? { messageId, prefix } : undefined);
    return final;
  }
}
