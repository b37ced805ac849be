import type { BoxContext, Capability } from '../core/capability.js';
import type { AccountStore } from '../accounts/accounts.js';
import type { Spool, Envelope } from '../spool/spool.js';
import { domainOf } from '../core/names.js';
import { MaildirDelivery } from './maildir.js';
import { OutboundQueue, mayBeSigned, type QueueEntry } from './queue.js';
import { Router } from './router.js';
import { DnsClient } from './dns.js';
import { SmtpClient } from './transport.js';
import { QueueRunner } from './runner.js';
import { DkimKeys } from './dkim.js';
import { composeDsn, mayBounce, readHeaderBlock } from './bounce.js';
import type { DeliveryTally } from './outcome.js';

export interface DeliveryCapability extends Capability {
  runner: QueueRunner;
  dkim: DkimKeys;
  dns: DnsClient;
  /** Routes a committed message: Maildir copies for local recipients, the queue for the rest. */
  route(env: Envelope, body?: Buffer[] | null): void;
  /**
   * Mail mlsd writes itself (alerts, bounces) goes through its own spool: local recipients
   * get it in their Maildir, remote ones through the queue, equally durable.
   */
  submitLocal(from: string, to: string[], message: Buffer, listener: string): Promise<string>;
  /**
   * Where a message the other box of an HA pair hands over goes: by default straight to
   * routing; the scanners set their dispatch (their verdict may say quarantine or delete).
   */
  dispatchWith(dispatch: (env: Envelope, body: Buffer[] | null) => void): void;
  /** Routing falls back to the smarthost while `listed()` says our own address is blacklisted. */
  rerouteWhen(listed: () => boolean): void;
  /** Who is told of each recipient delivered or failed for good (the traffic counts). */
  tallyWith(tally: DeliveryTally): void;
  /** Recovery at start: spool files no record refers to go, then the queue starts. */
  resume(pending: Envelope[]): Promise<void>;
}

/** Delivery: routing, Maildir copies, the outbound queue and its runner, DKIM signing, bounces. */
export async function startDelivery(box: BoxContext, spool: Spool, accounts: AccountStore, isTrustedClient: (ip: string) => boolean): Promise<DeliveryCapability> {
  const { config, log, durability } = box;
  const queue = new OutboundQueue(box.db);
  const maildir = new MaildirDelivery(box.dataDir, box.dirs, durability);
  const isLocalDomain = (d: string) => config.current.domains.includes(d);
  // postmaster@ a local domain without an account or alias gets a mailbox of its own.
  const isMailbox = (a: string) => accounts.user(a) !== undefined || a.startsWith('postmaster@');
  const dkim = await DkimKeys.open(box.configDir, log.child({ mod: 'dkim' }));
  const ensureKeys = () => dkim.ensure(config.current.domains, config.current.dkim.selector).then(() => durability.configChanged());
  await ensureKeys();
  const dns = new DnsClient(() => config.current.dns);
  const client = new SmtpClient(
    () => ({
      heloName: config.current.hostname,
      sourceAddress: config.current.routing.sourceAddress,
      connectTimeoutMs: config.current.delivery.connectTimeoutSeconds * 1000,
      idleMs: config.current.delivery.idleConnectionSeconds * 1000,
    }),
    log.child({ mod: 'smtp-client' }),
  );
  const signingDomain = (from: string): string | null => {
    const cfg = config.current;
    if (!cfg.dkim.enabled) return null;
    // Bounces (null sender) come from MAILER-DAEMON at our hostname: sign for its domain.
    const domain = from ? domainOf(from) : cfg.domains.find((d) => cfg.hostname === d || cfg.hostname.endsWith('.' + d));
    return domain && cfg.domains.includes(domain) && dkim.has(domain, cfg.dkim.selector) ? domain : null;
  };
  let listed = () => false;
  let tally: DeliveryTally = () => undefined;
  let dispatch = (env: Envelope, body: Buffer[] | null) => router.submit(env, body);
  const submitLocal = async (from: string, to: string[], message: Buffer, listener: string) => {
    const msg = await spool.begin();
    await msg.write(message);
    const env: Envelope = { id: msg.id, from, rcpt: to.map((a) => a.toLowerCase()), clientIp: '127.0.0.1', login: null, listener, received: new Date().toISOString(), size: msg.size, origin: 'mlsd' };
    await spool.commit(msg, env);
    router.submit(env, msg.body);
    return env.id;
  };
  const runner = new QueueRunner({
    queue,
    group: durability,
    config: () => config.current,
    dns,
    client,
    dataPath: (id) => spool.dataPath(id),
    sign: async (entry, message) => {
      const domain = mayBeSigned(entry) ? signingDomain(entry.from) : null;
      return domain ? dkim.sign(message, domain, config.current.dkim.selector) : '';
    },
    bounce: async (entry, failed) => {
      const headers = await readHeaderBlock(spool.dataPath(entry.id));
      if (!mayBounce(entry.from, headers)) {
        log.info({ evt: 'bounce.suppressed', id: entry.id, from: entry.from, rcpt: failed.map((f) => f.recipient) }, 'no bounce for a bounce or a null sender');
        return;
      }
      const dsn = composeDsn({
        reportingMta: config.current.hostname,
        originalFrom: entry.from,
        originalId: entry.id,
        arrivalDate: new Date(entry.queued),
        originalHeaders: headers,
        recipients: failed,
        now: new Date(),
      });
      const id = await submitLocal('', [entry.from], dsn, 'bounce');
      log.info({ evt: 'bounce.sent', id: entry.id, dsn: id, to: entry.from, rcpt: failed.map((f) => f.recipient) }, 'delivery status notification sent');
    },
    deliverLocal: async (entry, rcpt, path) => {
      if (!isMailbox(rcpt)) return false;
      await maildir.deliver(rcpt, `Return-Path: <${entry.from}>\r\nDelivered-To: ${rcpt}\r\n${entry.prefix ?? ''}`, path, entry.size, undefined, entry.id);
      return true;
    },
    isLocalDomain,
    reroute: () => listed(),
    tally: (outcome, n) => tally(outcome, n),
    emit: box.emit,
    log: log.child({ mod: 'queue' }),
  });
  const router = new Router({
    resolver: {
      isLocalDomain,
      expand: (a) => accounts.expand(a),
      isMailbox,
      isSuspended: (login) => accounts.suspension(login) !== undefined,
      // Judged when the message is routed, from the facts recorded at its acceptance.
      vouchedFor: (env) => env.origin === 'mlsd' || !!env.login || isTrustedClient(env.clientIp),
    },
    maildir,
    queue,
    group: durability,
    onQueued: (entry, body) => runner.add(entry, body),
    tally: (outcome, n) => tally(outcome, n),
    dataPath: (id) => spool.dataPath(id),
    log: log.child({ mod: 'router' }),
  });

  // Mail the other box accepted while both served alone: taken in unless already here.
  const unmerge = [
    durability.data.onMerge('spool', async (id, value, body) => {
      if ((await spool.has(id)) || (await queue.has(id))) return false;
      const env = value as Envelope;
      await spool.takeIn(id, body, [spool.recordOp(env)]);
      log.info({ evt: 'ha.merge.spool', id }, 'took in a message the other box accepted alone');
      dispatch(env, null);
      return true;
    }),
    durability.data.onMerge('queue', async (id, value, body) => {
      if ((await spool.has(id)) || (await queue.has(id))) return false;
      const entry = value as QueueEntry;
      await spool.takeIn(id, body, [queue.enqueueOp(entry)]);
      log.info({ evt: 'ha.merge.queue', id }, 'took in a queued message the other box accepted alone');
      runner.add(entry);
      return true;
    }),
  ];

  return {
    runner,
    dkim,
    dns,
    route: (env, body = null) => router.submit(env, body),
    submitLocal,
    dispatchWith: (fn) => {
      dispatch = fn;
    },
    rerouteWhen: (fn) => {
      listed = fn;
    },
    tallyWith: (fn) => {
      tally = fn;
    },
    async resume(pending) {
      const pendingIds = new Set(pending.map((e) => e.id));
      await spool.sweepOrphans(async (id) => pendingIds.has(id) || (await queue.has(id)));
      // Only after the sweep: the runner may write DSNs into the spool as soon as it starts.
      await runner.start();
    },
    configChanged: () => {
      void ensureKeys().catch((err: Error) => log.error({ evt: 'dkim.keygen.fail', err: err.message }, 'could not make DKIM keys'));
      runner.routingChanged();
    },
    async stop(drainMs) {
      unmerge.forEach((u) => u());
      // No new outbound transaction from here; those under way get drainMs to finish.
      const draining = runner.stop(drainMs);
      await router.idle();
      router.stop();
      await draining;
      client.close();
    },
  };
}
