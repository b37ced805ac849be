import { access, readFile, unlink } from 'node:fs/promises';
import type { Envelope } from '../spool/spool.js';
import { SPOOL_SUBLEVEL } from '../spool/spool.js';
import type { Durability } from '../store/durability.js';
import type { MaildirDelivery } from './maildir.js';
import type { DeliveryTally } from './outcome.js';
import type { OutboundQueue, QueueEntry } from './queue.js';
import type { Logger } from '../log/logger.js';
import { domainOf } from '../core/names.js';

export interface RecipientResolver {
  isLocalDomain(domain: string): boolean;
  /** Final destinations of a local address (aliases expanded). */
  expand(address: string): string[];
  /** True when the address is a local mailbox. */
  isMailbox(address: string): boolean;
  /** True when the login is suspended from sending (its outbound mail is held). */
  isSuspended(login: string): boolean;
  /**
   * True when someone vouches for the sender (a login, a relay.allowIps client, mlsd
   * itself): only such mail is DKIM-signed. Absent: nothing is signed but bounces.
   */
  vouchedFor?(env: Envelope): boolean;
}

const IN_MEMORY_BYTES = 1024 * 1024;
const HELD_BODY_BYTES = 4 * 1024 * 1024;

/**
 * Takes committed messages out of the spool: local recipients get a Maildir copy, remote
 * ones go to the outbound queue, and the spool record is removed in the same atomic
 * batch that writes the queue record (not fsynced on its own). A crash anywhere in between re-routes the message
 * at the next start: a mailbox may get a second copy, nothing is lost.
 */
export class Router {
  private readonly waiting: Envelope[] = [];
  private readonly bodies = new Map<string, Buffer[]>();
  private heldBytes = 0;
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private stopped = false;
  private readonly retryTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly deps: {
      resolver: RecipientResolver;
      maildir: MaildirDelivery;
      queue: OutboundQueue;
      group: Pick<Durability, 'writeLazy'>;
      /** Told about each message once its queue record is durable (the queue runner). */
      onQueued?: (entry: QueueEntry, body: Buffer[] | undefined) => void;
      /** Told of each copy written to a mailbox (the traffic counts). */
      tally?: DeliveryTally;
      dataPath: (id: string) => string;
      log: Logger;
      /**
       * Messages routed at once. Kept below libuv's 4 pool threads: mailbox fsyncs share
       * the pool with commits, and commits are what clients wait on (measured: 4 beat 16).
       */
      concurrency?: number;
      retryMs?: number;
    },
  ) {}

  /**
   * Queues a committed message for routing. `body`, when given, saves reading the spool
   * file back; bodies are held only up to a memory budget, beyond it they are re-read.
   */
  submit(env: Envelope, body: Buffer[] | null = null): void {
    if (this.stopped) return;
    if (body && this.heldBytes + env.size <= HELD_BODY_BYTES) {
      this.heldBytes += env.size;
      this.bodies.set(env.id, body);
    }
    this.waiting.push(env);
    this.pump();
  }

  /** Resolves when nothing is waiting or being routed (tests and shutdown use it). */
  idle(): Promise<void> {
    if (this.active === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
  }

  private pump(): void {
    const max = this.deps.concurrency ?? 4;
    while (this.active < max && this.waiting.length > 0) {
      const env = this.waiting.shift()!;
      this.active++;
      void this.route(env).finally(() => {
        if (this.bodies.delete(env.id)) this.heldBytes -= env.size;
        this.active--;
        if (this.active === 0 && this.waiting.length === 0) {
          const w = this.idleWaiters;
          this.idleWaiters = [];
          w.forEach((f) => f());
        } else this.pump();
      });
    }
  }

  private async route(env: Envelope): Promise<void> {
    const { resolver, maildir, queue, group, log } = this.deps;
    const path = this.deps.dataPath(env.id);
    const local = new Set<string>();
    const remote = new Set<string>();
    // Local addresses (aliases) whose mail goes on to remote targets: the outbound copy says
    // so in a Delivered-To field, as Postfix's local(8) does when forwarding, so that the mail
    // is refused (554 5.4.6) should a remote forward send it back to the same address.
    const forwardedBy = new Set<string>();
    for (const r of env.rcpt) {
      const isLocal = resolver.isLocalDomain(domainOf(r));
      const targets = isLocal ? resolver.expand(r) : [r];
      for (const t of targets) {
        const tLocal = resolver.isLocalDomain(domainOf(t));
        (tLocal ? local : remote).add(t);
        if (isLocal && !tLocal) forwardedBy.add(r);
      }
    }
    const prefix = [...forwardedBy].map((a) => `Delivered-To: ${a}\r\n`).join('') + (env.addHeaders ?? '');
    const undeliverable: string[] = [];
    try {
      // Read a small message once for all its local copies instead of once per mailbox.
      const held = this.bodies.get(env.id);
      const body = local.size === 0 ? undefined : (held ?? (env.size <= IN_MEMORY_BYTES ? [await readFile(path)] : undefined));
      // Without the message in hand, make sure its file is still there before queueing it
      // (the same check the mailbox copies get by reading it): after a power cut the record
      // can be back without its file, and queued it would fail on the missing file for ever.
      if (!held && !body) await access(path);
      for (const rcpt of local) {
        if (!resolver.isMailbox(rcpt)) {
          // Accepted, then the account went away: keep it in the queue, never drop it.
          undeliverable.push(rcpt);
          continue;
        }
        const prefix = `Return-Path: <${env.from}>\r\nDelivered-To: ${rcpt}\r\n${env.addHeaders ?? ''}`;
        const file = await maildir.deliver(rcpt, prefix, path, env.size, body, env.id);
        log.info({ evt: 'delivery.local', id: env.id, rcpt, file }, 'delivered to mailbox');
        this.deps.tally?.('local', 1);
      }
      const toQueue = [...remote, ...undeliverable];
      const now = new Date().toISOString();
      const entry: QueueEntry | null = toQueue.length
        ? {
            id: env.id,
            from: env.from,
            login: env.login,
            held: !!env.login && resolver.isSuspended(env.login),
            dkim: resolver.vouchedFor?.(env) ?? false,
            queued: now,
            size: env.size,
            ...(prefix ? { prefix } : {}),
            recipients: toQueue.map((address) => ({
              address,
              state: undeliverable.includes(address) ? 'deferred' : 'queued',
              attempts: 0,
              lastReply: undeliverable.includes(address) ? '550 5.1.1 mailbox no longer exists' : null,
              nextAttempt: now,
            })),
          }
        : null;
      const done = { type: 'del' as const, sublevel: SPOOL_SUBLEVEL, key: env.id };
      if (entry) {
        // One atomic batch moves the message from the spool record (already fsynced at
        // commit) to the queue record. It needs no fsync of its own: if a power loss takes
        // the batch back, the spool record is still there and the message is routed again.
        await group.writeLazy([done, queue.enqueueOp(entry)]);
        log.info({ evt: 'queue.add', id: env.id, rcpt: toQueue }, 'queued for outbound delivery');
        this.deps.onQueued?.(entry, this.bodies.get(env.id));
      } else {
        // Every copy is in a mailbox: if this delete is lost in a crash, the message is
        // routed again (a duplicate, never a loss), so it needs no fsync of its own.
        await group.writeLazy([done]);
        await unlink(path).catch(() => undefined);
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT' && e.path === path) {
        // The record outlived its file: an unlink reached the disk and the unsynced delete
        // before it did not (a power cut). A spool file is only ever unlinked once nothing is
        // left to deliver: here, once every copy is in its mailbox, or by the queue runner,
        // once every queued recipient was delivered or its DSN committed (the queue record
        // that came after this one's delete was lost with it).
        log.warn({ evt: 'route.nofile', id: env.id }, 'spool record without its file: its copies were delivered; record dropped');
        await group.writeLazy([{ type: 'del', sublevel: SPOOL_SUBLEVEL, key: env.id }]).catch(() => undefined);
        return;
      }
      const retryMs = this.deps.retryMs ?? 30_000;
      log.error({ evt: 'route.fail', id: env.id, err: (err as Error).message, retryMs }, 'routing failed; will retry');
      const t = setTimeout(() => {
        this.retryTimers.delete(t);
        this.submit(env);
      }, retryMs);
      this.retryTimers.add(t);
    }
  }
}
