import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../log/logger.js';
import type { DnsClient } from './dns.js';
import type { QueueEntry } from './queue.js';
import type { Job } from './schedule.js';
import { selfView, withoutSelf } from './self-mx.js';
import { HostUnusable, type Destination, type RcptOutcome, type Transaction, type TransactionResult } from './transport.js';

export interface AttemptDeps {
  config: () => Config;
  clock: Clock;
  dns: DnsClient;
  client: { send(dest: Destination, tx: Transaction): Promise<TransactionResult> };
  dataPath: (id: string) => string;
  /** DKIM-Signature header field(s) to put in front of the message, or ''. */
  sign: (entry: QueueEntry, message: () => Readable) => Promise<string>;
  /** A queued recipient of a local domain (its mailbox was gone at routing): true if delivered now. */
  deliverLocal: (entry: QueueEntry, rcpt: string, path: string) => Promise<boolean>;
  bodies: BodyCache;
  log: Logger;
}

/** What one attempt got: a reply per recipient, the host that gave them ('' if none did), how long it took. */
export interface AttemptResult {
  outcomes: RcptOutcome[];
  remote: string;
  ms: number;
}

/** Message bodies kept in memory for their first attempt, up to this many bytes in all. */
const BODY_BUDGET = 16 * 1024 * 1024;

/**
 * Bodies of freshly queued messages: the first attempt is served from memory, because
 * re-reading the spool file would queue behind the commits' fsyncs on libuv's few pool threads.
 */
export class BodyCache {
  private readonly bodies = new Map<string, Buffer[]>();
  private bytes = 0;

  /** Keeps a body if the budget allows (otherwise the attempt reads the spool file). */
  keep(id: string, body: Buffer[]): void {
    const bytes = body.reduce((n, x) => n + x.length, 0);
    if (this.bytes + bytes > BODY_BUDGET) return;
    this.bodies.set(id, body);
    this.bytes += bytes;
  }

  get(id: string): Buffer[] | undefined {
    return this.bodies.get(id);
  }

  forget(id: string): void {
    const b = this.bodies.get(id);
    if (!b) return;
    this.bodies.delete(id);
    this.bytes -= b.reduce((n, x) => n + x.length, 0);
  }
}

/**
 * One delivery attempt of a job: finds where it goes, hands the message to the transport
 * (or to the local mailboxes) and reads the replies into one outcome per recipient. It
 * decides nothing about them; every failure, of ours or the peer's, becomes a reply.
 */
export class DeliveryAttempt {
  constructor(private readonly deps: AttemptDeps) {}

  async run(job: Job): Promise<AttemptResult> {
    const started = this.deps.clock.now();
    let result: Omit<AttemptResult, 'ms'>;
    try {
      result = job.kind === 'local' ? { outcomes: await this.deliverLocal(job), remote: '' } : await this.transmit(job);
    } catch (err) {
      result = { outcomes: job.rcpts.map((r) => ({ rcpt: r.address, klass: 4 as const, reply: `451 4.3.0 local error: ${(err as Error).message}` })), remote: '' };
    }
    return { ...result, ms: this.deps.clock.now() - started };
  }

  /**
   * Logs each recipient's reply (delivery.attempt). The runner calls it once the outcome is
   * on record: whoever reads "delivered" in the log (an operator before a restart, a test
   * before a kill -9) knows a restart will not send that copy again.
   */
  report(job: Job, result: AttemptResult): void {
    for (const o of result.outcomes) {
      this.deps.log.info(
        { evt: 'delivery.attempt', id: job.entry.id, rcpt: o.rcpt, route: job.key, remote: result.remote || null, reply: o.reply, result: o.klass === 2 ? 'delivered' : o.klass === 4 ? 'deferred' : 'bounced', ms: result.ms },
        'delivery attempt',
      );
    }
  }

  private async deliverLocal(job: Job): Promise<RcptOutcome[]> {
    const { entry } = job;
    const path = this.deps.dataPath(entry.id);
    const outcomes: RcptOutcome[] = [];
    for (const r of job.rcpts) {
      const ok = await this.deps.deliverLocal(entry, r.address, path).catch((err: Error) => err);
      outcomes.push(
        ok instanceof Error
          ? { rcpt: r.address, klass: 4, reply: `451 4.3.0 mailbox delivery failed: ${ok.message}` }
          : { rcpt: r.address, klass: ok ? 2 : 5, reply: ok ? '250 2.0.0 delivered to mailbox' : '550 5.1.1 mailbox unavailable: the account no longer exists' },
      );
    }
    return outcomes;
  }

  private async transmit(job: Job): Promise<Omit<AttemptResult, 'ms'>> {
    const { entry } = job;
    const dests = await this.destinations(job, this.deps.config());
    if ('klass' in dests) return { outcomes: job.rcpts.map((r) => ({ rcpt: r.address, klass: dests.klass, reply: dests.reply })), remote: '' };
    const path = this.deps.dataPath(entry.id);
    const held = this.deps.bodies.get(entry.id);
    const body = held && entry.prefix ? [Buffer.from(entry.prefix), ...held] : held;
    // The message as it leaves: our added header fields, then the spooled message.
    const source = () => (body ? Readable.from(body) : messageStream(entry.prefix ?? '', path));
    const dkim = await this.deps.sign(entry, source);
    const tx: Transaction = {
      from: entry.from,
      rcpts: job.rcpts.map((r) => r.address),
      size: entry.size + Buffer.byteLength(entry.prefix ?? '') + Buffer.byteLength(dkim),
      message: () => (dkim ? Readable.from((async function* () { yield Buffer.from(dkim); yield* source(); })()) : source()),
    };
    let last: HostUnusable | null = null;
    for (const d of dests) {
      try {
        const result = await this.deps.client.send(d, tx);
        return { outcomes: result.outcomes, remote: result.remote ?? '' };
      } catch (err) {
        if (!(err instanceof HostUnusable)) throw err;
        last = err;
      }
    }
    return { outcomes: tx.rcpts.map((rcpt) => ({ rcpt, klass: 4 as const, reply: last?.reply ?? '451 4.4.1 no host could be reached' })), remote: '' };
  }

  /** Where a job's transaction goes, or the reply every recipient gets when there is nowhere. */
  private async destinations(job: Job, cfg: Config): Promise<Destination[] | { klass: 4 | 5; reply: string }> {
    if (job.kind === 'smarthost' || job.kind === 'fixed') {
      const r = job.kind === 'smarthost' ? cfg.routing.smarthost : cfg.routing.domains[job.domain]!;
      const auth = job.kind === 'smarthost' && cfg.routing.smarthost.user ? { user: cfg.routing.smarthost.user, pass: cfg.routing.smarthost.password } : undefined;
      let addresses: string[];
      try {
        addresses = await this.deps.dns.addresses(r.host);
      } catch (err) {
        return { klass: 4, reply: `451 4.4.3 cannot resolve ${r.host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
      }
      if (!addresses.length) return { klass: 4, reply: `451 4.4.3 ${r.host} has no address` };
      return addresses.map((address) => ({ address, port: r.port, name: r.host, tls: r.tls, verifyCertificate: r.verifyCertificate, auth }));
    }
    const answer = await this.deps.dns.mx(job.domain);
    switch (answer.kind) {
      case 'nxdomain':
        return { klass: 5, reply: `550 5.1.2 ${job.domain}: domain not found` };
      case 'nullmx':
        return { klass: 5, reply: `556 5.1.10 ${job.domain} does not accept mail (null MX)` };
      case 'temporary':
        return { klass: 4, reply: `451 4.4.3 ${answer.error}` };
      case 'hosts': {
        const { hosts, dropped } = withoutSelf(answer.hosts, selfView(cfg));
        if (dropped.length) this.deps.log.warn({ evt: 'delivery.mx.self', id: job.entry.id, domain: job.domain, dropped, left: hosts.map((h) => h.name) }, 'MX hosts that are this box skipped');
        // Permanent: trying again would find the same MX; the sender gets a DSN, the queue moves on.
        if (!hosts.length) return { klass: 5, reply: `554 5.4.6 mail for ${job.domain} loops back to myself` };
        return hosts.flatMap((h) =>
          h.addresses.map((address) => ({ address, port: 25, name: h.name, tls: 'opportunistic' as const, verifyCertificate: false })),
        );
      }
    }
  }
}

function messageStream(prefix: string, path: string): Readable {
  return Readable.from(
    (async function* () {
      if (prefix) yield Buffer.from(prefix);
      yield* createReadStream(path, { highWaterMark: 64 * 1024 });
    })(),
  );
}
