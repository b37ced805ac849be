import { open, mkdir, rename, unlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import type { DirSyncer } from '../store/atomic.js';

/**
 * Maildir++ delivery, the layout Dovecot reads: <data>/mail/<domain>/<user>/Maildir.
 * Per the Maildir spec: write under tmp/ with a unique name, fsync, rename into new/,
 * then fsync new/ (shared between concurrent deliveries to one mailbox).
 */
export class MaildirDelivery {
  private seq = 0;
  private readonly host = hostname().replace(/[/:]/g, '_');
  private readonly made = new Set<string>();

  constructor(
    private readonly mailRoot: string,
    private readonly dirs: DirSyncer,
  ) {}

  mailboxPath(address: string): string {
    const at = address.lastIndexOf('@');
    return join(this.mailRoot, address.slice(at + 1), address.slice(0, at), 'Maildir');
  }

  private async ensure(box: string): Promise<void> {
    if (this.made.has(box)) return;
    for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(box, sub), { recursive: true, mode: 0o700 });
    this.made.add(box);
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
  async deliver(address: string, prefix: string, sourcePath: string, sourceSize: number, body?: Buffer[]): Promise<string> {
    const box = this.mailboxPath(address);
    await this.ensure(box);
    const head = Buffer.from(prefix);
    const name = this.uniqueName(head.length + sourceSize);
    const tmp = join(box, 'tmp', name);
    const fh = await open(tmp, 'wx', 0o600);
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
    return final;
  }
}
