import { mkdir, readFile, statfs, unlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join, relative, resolve } from 'node:path';
import { loadBoard } from './hw/board.js';
import { VERSION } from './core/version.js';
import { createLogger, type Logger } from './log/logger.js';
import { ConfigStore } from './config/config.js';
import type { Config } from './config/schema.js';
import { AccountStore } from './accounts/accounts.js';
import { generatePassword, hashPassword } from './accounts/password.js';
import { openDb, GroupCommitter, sublevel } from './store/db.js';
import { DirSyncer, writeFileAtomic } from './store/atomic.js';
import { Spool } from './spool/spool.js';
import { MaildirDelivery } from './delivery/maildir.js';
import { OutboundQueue } from './delivery/queue.js';
import { Router } from './delivery/router.js';
import { RelayPolicy } from './policy/relay.js';
import { checkRecipient } from './policy/recipient.js';
import { checkEnvelopeSender, checkHeaderFrom } from './policy/senderLogin.js';
import { normalizeAddress, splitAddress } from './policy/address.js';
import { replies } from './policy/reply.js';
import { accept, refuse } from './policy/types.js';
import { loadOrCreateTls } from './smtp/tls.js';
import { SmtpService, type SmtpPolicies } from './smtp/server.js';
import { ControlServer, socketPath, assertNotRunning } from './commands/control.js';
import { CommandRegistry } from './commands/registry.js';
import { StatusReport, statusCommands, daemonStatus, hostStatus } from './commands/status.js';
import { accountCommands, accountStatus, type AccountCommandDeps } from './accounts/commands.js';
import { configCommands } from './config/commands.js';
import { eventCommands } from './events/commands.js';
import { deliveryCommands, deliveryStatus, type DeliveryCommandDeps, type DeliveryStatusDeps } from './delivery/commands.js';
import { quarantineCommands, type QuarantineCommandDeps } from './scan/commands.js';
import { smtpStatus } from './smtp/commands.js';
import { dnsblStatus } from './reputation/commands.js';
import { EventLog, type EventInput } from './events/events.js';
import { Alerter } from './alerts/alerts.js';
import { AuthPolicy } from './policy/auth.js';
import { ThresholdPolicy } from './policy/thresholds.js';
import { ThresholdStore } from './store/counters.js';
import { DnsClient } from './delivery/dns.js';
import { SmtpClient } from './delivery/transport.js';
import { QueueRunner } from './delivery/runner.js';
import { DkimKeys } from './delivery/dkim.js';
import { composeDsn, mayBounce, readHeaderBlock } from './delivery/bounce.js';
import { DnsblMonitor } from './reputation/dnsbl.js';
import { QuarantineStore } from './scan/quarantine.js';
import { ContentPolicy } from './scan/policy.js';
import type { Envelope } from './spool/spool.js';
import type { Board } from './hw/board.js';
import type { Db } from './store/db.js';
import { HaNode } from './ha/node.js';
import type { MergeTarget } from './ha/replicator.js';
import { haCommands, haStatus } from './ha/commands.js';
import { configDirFiles, applyConfigDirFiles } from './ha/configsync.js';
import { findInMaildir, writeDurable } from './ha/files.js';
import { serialportLine } from './hw/serialport-line.js';
import { linuxServiceAddress, simServiceAddress } from './hw/service-address.js';

export interface StartOptions {
  configDir?: string;
  dataDir?: string;
  board?: string;
}

export interface Daemon {
  stop(): Promise<void>;
}

/** What the composition root shares with the mail services it starts (once, or at each HA promotion). */
interface ServiceContext {
  board: Board;
  configDir: string;
  dataDir: string;
  started: number;
  config: ConfigStore;
  db: Db;
  group: GroupCommitter;
  dirs: DirSyncer;
  events: EventLog;
  emitSafe: (ev: EventInput) => void;
  ha: HaNode | null;
  log: Logger;
}

/** What the commands and status sections of the running mail services read. */
interface ServiceCommands {
  accounts: AccountCommandDeps;
  delivery: DeliveryCommandDeps;
  deliveryStatus: DeliveryStatusDeps;
  quarantine: QuarantineCommandDeps;
  smtp: Pick<SmtpService, 'addresses'>;
  dnsbl: Pick<DnsblMonitor, 'status'>;
}

/** The running mail services: SMTP, routing, the queue, scanning, alerts. */
interface Services {
  commands: ServiceCommands;
  merge: MergeTarget;
  stop(drainMs: number): Promise<void>;
}

/** The composition root: the only place that picks concrete adapters and wires services. */
export async function startDaemon(opts: StartOptions, log: Logger = createLogger()): Promise<Daemon> {
  const started = Date.now();
  const board = await loadBoard(opts.board ?? 'sim');
  const configDir = resolve(opts.configDir ?? board.paths.configDir);
  const dataDir = resolve(opts.dataDir ?? board.paths.dataDir);
  await mkdir(configDir, { recursive: true, mode: 0o700 });
  await assertNotRunning(socketPath(configDir));
  await mkdir(dataDir, { recursive: true });

  const { store: config, created } = await ConfigStore.open(configDir, board.defaults);
  if (created) log.info({ evt: 'config.created', path: join(configDir, 'config.json'), board: board.model }, 'config created from board defaults');
  await ensureAdminPassword(configDir);
  const db = await openDb(join(dataDir, 'db'));
  const group = new GroupCommitter(db);
  const dirs = new DirSyncer();
  const events = new EventLog(db, log.child({ mod: 'events' }));
  // An event that cannot be written (full disk, closing database) is logged, never a crash.
  const emitSafe = (ev: EventInput) => void events.emit(ev).catch((err: Error) => log.error({ evt: 'event.fail', kind: ev.kind, err: err.message }, 'could not record event'));
  config.onChange((_cfg: Config, key: string) => log.info({ evt: 'config.set', key }, 'config changed'));

  let services: Services | null = null;
  let ha: HaNode | null = null;
  const ctx = (): ServiceContext => ({ board, configDir, dataDir, started, config, db, group, dirs, events, emitSafe, ha, log });
  const haCfg = config.current.ha;
  if (haCfg.enabled) {
    // Mail service runs only on the active box; a standby applies what the active sends.
    const serial = haCfg.serial.device ? serialportLine(haCfg.serial.device, haCfg.serial.baud, log.child({ mod: 'serial' })) : null;
    ha = new HaNode({
      ha: () => config.current.ha,
      db,
      group,
      dirs,
      dataDir,
      serial,
      activate: async () => {
        if (!services) services = await startServices(ctx());
      },
      deactivate: async () => {
        const s = services;
        services = null;
        await s?.stop(5000);
      },
      configFiles: () => configDirFiles(configDir),
      applyConfigFiles: (files) => applyConfigDirFiles(configDir, files, config),
      merge: () => services?.merge ?? null,
      configVersion: () => createHash('sha256').update(JSON.stringify({ ...config.current, ha: null })).digest('hex').slice(0, 12),
      emit: emitSafe,
      log: log.child({ mod: 'ha' }),
    });
    await ha.start();
    // Config-dir changes (accounts, keys, config) reach the standby within a few seconds.
    const cfgTimer = setInterval(() => void ha!.replicator.configChanged().catch(() => undefined), 2000);
    cfgTimer.unref();
  } else {
    services = await startServices(ctx());
  }

  // The one command layer every face calls. Registered once; the commands of the mail
  // services read whichever services run now (they are rebuilt at each HA promotion).
  const role = () => ha?.role ?? 'standby';
  const serving = () => services !== null;
  const live = (): ServiceCommands => {
    if (!services) throw new Error(`this box is the HA ${role()} box; run that on the active box`);
    return services.commands;
  };
  const status = new StatusReport();
  status.add('daemon', daemonStatus(() => ({ version: VERSION, board: board.model, started, hostname: config.current.hostname, role: role() })));
  status.add('smtp', smtpStatus(() => live().smtp));
  status.add('accounts', accountStatus(() => live().accounts));
  status.add('delivery', deliveryStatus(() => live().deliveryStatus));
  status.add('reputation', dnsblStatus(() => live().dnsbl));
  status.add('ha', haStatus(() => ha));
  status.add('host', hostStatus(() => ({ dataDir })));
  const registry = new CommandRegistry({ serving, role });
  registry.register('daemon', statusCommands(status, serving));
  registry.register('accounts', accountCommands(() => live().accounts));
  registry.register('config', configCommands(() => config));
  registry.register('events', eventCommands(() => events));
  registry.register('delivery', deliveryCommands(() => live().delivery));
  registry.register('scan', quarantineCommands(() => live().quarantine));
  registry.register('ha', haCommands(() => ha));

  const control = new ControlServer(socketPath(configDir), async (req) => {
    const res = await registry.run(req);
    // A user added or a setting changed reaches the standby before the command returns.
    if (ha && res.ok && services) await ha.replicator.configChanged().catch(() => undefined);
    return res;
  });
  await control.start();
  log.info({ evt: 'daemon.ready', board: board.model, configDir, dataDir, ha: haCfg.enabled ? haCfg.nodeId : false }, 'mlsd ready');

  return {
    async stop() {
      await control.stop();
      // An active box hands the service to its in-sync standby before it goes.
      await ha?.handOver();
      await ha?.stop();
      const s = services;
      services = null;
      // Outbound transactions under way get time to hear their 250 (systemd allows 90 s),
      // so a restart does not send again what a peer has taken.
      await s?.stop(60_000);
      await dirs.close();
      await db.close();
      log.info({ evt: 'daemon.stopped' }, 'mlsd stopped');
    },
  };
}

/**
 * Starts the mail services on this box's data: at daemon start, or when an HA standby
 * becomes active (then everything is read afresh from what replication wrote).
 */
async function startServices(c: ServiceContext): Promise<Services> {
  const { board, configDir, dataDir, started, config, db, group, dirs, events, emitSafe, log } = c;
  const unsubscribe: (() => void)[] = [];
  const onConfig = (fn: (cfg: Config, key: string) => void) => unsubscribe.push(config.onChange(fn));
  // First, before anything runs: a box that cannot hold the service address is not active.
  const serviceAddr = config.current.ha.enabled ? config.current.ha.serviceAddress : '';
  const addressPort = board.adapter === 'linux' ? linuxServiceAddress(board.network?.lan ?? 'eth0', log.child({ mod: 'net' })) : simServiceAddress;
  if (serviceAddr) await addressPort.claim(serviceAddr);
  const accounts = await AccountStore.open(configDir);
  const tls = await loadOrCreateTls(configDir, config.current.hostname, log);
  const spool = new Spool(dataDir, db, group, dirs, log.child({ mod: 'spool' }), () => config.current.spool.minFreeBytes);
  await spool.init();
  const queue = new OutboundQueue(db);
  const maildir = new MaildirDelivery(join(dataDir, 'mail'), dirs, c.ha ? (path, source) => c.ha!.replicator.delivered(relative(dataDir, path), source) : undefined);
  if (c.ha) spool.addCommitHook((env, path, body, localDurable) => c.ha!.replicator.commit(env, path, body, localDurable));

  const isLocalDomain = (d: string) => config.current.domains.includes(d);
  const isMailbox = (a: string) => accounts.user(a) !== undefined || a.startsWith('postmaster@');

  let relay = new RelayPolicy(config.current);
  onConfig((cfg: Config) => {
    relay = new RelayPolicy(cfg);
  });

  // Mail mlsd writes itself (alerts, bounces) goes through its own spool: local
  // recipients get it in their Maildir, remote ones through the queue, equally durable.
  const submitLocal = async (from: string, to: string[], message: Buffer, listener: string) => {
    const msg = await spool.begin();
    await msg.write(message);
    const env = { id: msg.id, from, rcpt: to.map((a) => a.toLowerCase()), clientIp: '127.0.0.1', login: null, listener, received: new Date().toISOString(), size: msg.size };
    await spool.commit(msg, env);
    router.submit(env, msg.body);
    return env.id;
  };

  const dkim = await DkimKeys.open(configDir, log.child({ mod: 'dkim' }));
  await dkim.ensure(config.current.domains, config.current.dkim.selector);
  onConfig((cfg) => void dkim.ensure(cfg.domains, cfg.dkim.selector).catch((err: Error) => log.error({ evt: 'dkim.keygen.fail', err: err.message }, 'could not make DKIM keys')));
  const dns = new DnsClient(() => config.current.dns);
  const dnsbl = new DnsblMonitor({
    settings: () => config.current.dnsbl,
    // In smarthost mode the ISP's relay is our reputation too.
    extraIps: async () => {
      const sh = config.current.routing.smarthost;
      if (!sh.host || (config.current.routing.mode !== 'smarthost' && !config.current.dnsbl.autoReroute)) return [];
      // A failed look-up throws: the monitor then keeps checking the address it knew.
      const ips = await dns.addresses(sh.host);
      return ips.filter((ip) => ip.includes('.')).map((ip) => ({ ip, label: 'smarthost' }));
    },
    lookup: { resolve4: (n) => dns.resolver().resolve4(n), resolveTxt: (n) => dns.resolver().resolveTxt(n) },
    emit: (ev) => events.emit(ev),
    log: log.child({ mod: 'dnsbl' }),
  });
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
    const domain = from ? from.slice(from.lastIndexOf('@') + 1).toLowerCase() : cfg.domains.find((d) => cfg.hostname === d || cfg.hostname.endsWith('.' + d));
    return domain && cfg.domains.includes(domain) && dkim.has(domain, cfg.dkim.selector) ? domain : null;
  };
  const runner = new QueueRunner({
    queue,
    group,
    config: () => config.current,
    dns,
    client,
    dataPath: (id) => spool.dataPath(id),
    sign: async (entry, message) => {
      const domain = signingDomain(entry.from);
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
    reroute: () => dnsbl.ownListed(),
    emit: emitSafe,
    log: log.child({ mod: 'queue' }),
  });

  const router = new Router({
    resolver: {
      isLocalDomain,
      expand: (a) => accounts.expand(a),
      // postmaster@ a local domain without an account or alias gets a mailbox of its own.
      isMailbox,
      isSuspended: (login) => accounts.suspension(login) !== undefined,
    },
    maildir,
    queue,
    group,
    onQueued: (entry, body) => runner.add(entry, body),
    dataPath: (id) => spool.dataPath(id),
    log: log.child({ mod: 'router' }),
  });
  dnsbl.onChange(() => runner.routingChanged());
  onConfig(() => runner.routingChanged());

  const quarantine = new QuarantineStore(dataDir, db, group, dirs, log.child({ mod: 'quarantine' }));
  await quarantine.init();
  await quarantine.sweepOrphans();
  const quarantineBusy = new Set<string>();
  const quarantineOp = async <T,>(id: string, op: () => Promise<T>): Promise<T> => {
    if (quarantineBusy.has(id)) throw new Error(`quarantine: ${id} is being released or deleted right now`);
    quarantineBusy.add(id);
    try {
      return await op();
    } finally {
      quarantineBusy.delete(id);
    }
  };
  // A committed message goes to the router, unless the scanners said quarantine or delete
  // (kept in its spool record, so recovery after a crash decides the same way).
  const retryTimers = new Set<NodeJS.Timeout>();
  const dispatch = (env: Envelope, body: Buffer[] | null): void => {
    const action = env.scan?.action;
    if (action === 'quarantine') {
      void quarantine.add(env, spool.dataPath(env.id), config.current.scan.quarantineDays).then(
        () => emitSafe({ kind: 'scan.quarantined', severity: 'info', account: env.login ?? undefined, ip: env.clientIp, text: `${env.id} from <${env.from}> quarantined (${env.scan!.class}): ${env.scan!.summary}` }),
        (err: Error) => {
          // It stays in the spool (never delivered, never lost) and is tried again.
          log.error({ evt: 'quarantine.fail', id: env.id, err: err.message }, 'could not quarantine; will try again in 30 s');
          const t = setTimeout(() => {
            retryTimers.delete(t);
            dispatch(env, null);
          }, 30_000);
          retryTimers.add(t);
        },
      );
    } else if (action === 'delete') {
      // Accepted and dropped on purpose (scan.*.action delete): the log line is its only trace.
      log.info({ evt: 'scan.deleted', id: env.id, from: env.from, rcpt: env.rcpt, login: env.login, ip: env.clientIp, summary: env.scan!.summary }, 'spam deleted');
      void group
        .writeLazy([{ type: 'del', sublevel: 'spool', key: env.id }])
        .then(() => unlink(spool.dataPath(env.id)))
        .catch(() => undefined);
    } else router.submit(env, body);
  };

  // Recovery: everything committed but not fully routed is routed again.
  const pending = await spool.pending();
  const pendingIds = new Set(pending.map((e) => e.id));
  await spool.sweepOrphans(async (id) => pendingIds.has(id) || (await queue.has(id)));
  // Only after the sweep: the runner may write DSNs into the spool as soon as it starts.
  await runner.start();
  if (pending.length) log.info({ evt: 'spool.recover', messages: pending.length }, 'resuming routing of committed messages');
  for (const env of pending) dispatch(env, null);

  const alerter = new Alerter({
    settings: () => ({ enabled: config.current.thresholds.alert, adminEmails: config.current.alerts.adminEmails, periodMinutes: config.current.alerts.periodMinutes }),
    hostname: () => config.current.hostname,
    log: log.child({ mod: 'alerts' }),
    sink: async (from, to, message) => void (await submitLocal(from, to, message, 'alerts')),
  });
  unsubscribe.push(events.subscribe((ev) => void alerter.handle(ev)));
  const auth = new AuthPolicy(() => config.current, accounts, (ev) => events.emit(ev), log.child({ mod: 'auth' }));
  const thresholdStore = new ThresholdStore(db, group, (err) => log.error({ evt: 'counters.write', err: err.message }, 'could not save counters'));
  const thresholds = new ThresholdPolicy(() => config.current, emitSafe, thresholdStore);
  thresholds.restore(await thresholdStore.load());
  // Concurrent sessions of one account can trip its limit together: suspend it once.
  const suspending = new Set<string>();
  thresholds.onSuspend((login, evidence) => {
    if (suspending.has(login) || accounts.suspension(login)) return;
    suspending.add(login);
    void (async () => {
      const reason = `${evidence.used} ${evidence.limitName === 'thresholds.perAccountNewRecipientsPerDay' ? 'new recipients' : 'messages'} today, limit ${evidence.limit} (${evidence.limitName})`;
      if (!(await accounts.suspend(login, reason))) return;
      const held = await runner.hold(login, true);
      await events.emit({
        kind: 'account.suspended',
        severity: 'critical',
        account: login,
        limit: evidence.limitName,
        text: `${login} suspended from sending: ${reason}; ${held} queued message(s) held`,
        data: { ...evidence, clientIps: evidence.clientIps.join(', '), sampleSubjects: evidence.sampleSubjects.join(' | '), heldMessages: held },
      });
    })()
      .catch((err: Error) => log.error({ evt: 'suspend.fail', login, err: err.message }, 'could not suspend account'))
      .finally(() => suspending.delete(login));
  });
  onConfig(() => thresholds.reload());
  const contentPolicy = new ContentPolicy({
    config: () => config.current,
    isTrustedClient: (ip) => relay.isTrustedClient(ip),
    emit: emitSafe,
    log: log.child({ mod: 'scan' }),
  });
  // The volume history is weeks long: kept in LevelDB (saved each minute and at stop).
  const ANOMALY_KEY = { sublevel: 'scan-state', key: 'volume-anomaly' };
  contentPolicy.restore(await sublevel(db, ANOMALY_KEY.sublevel).get(ANOMALY_KEY.key).catch(() => undefined));
  const saveAnomaly = () => group.writeLazy([{ type: 'put', ...ANOMALY_KEY, value: contentPolicy.snapshot() }]).catch((err: Error) => log.error({ evt: 'scan.anomaly.save', err: err.message }, 'could not save volume history'));
  const anomalyTimer = setInterval(() => void saveAnomaly(), 60_000);
  anomalyTimer.unref();

  const policies: SmtpPolicies = {
    content: (facts, m) => contentPolicy.check(facts, m),
    connect: (facts) => thresholds.connect(facts),
    disconnect: (facts) => thresholds.disconnect(facts),
    authenticate: async (facts, login, password) => {
      const r = await auth.authenticate(facts, login, password);
      // A suspended account's right password is still refused: it may be the spammer's.
      return r.ok && accounts.suspension(r.login) ? { ok: false, reply: replies.accountSuspended } : r;
    },
    mailFrom: (facts, address) => {
      if (facts.login && accounts.suspension(facts.login)) return refuse(replies.senderSuspended);
      const norm = normalizeAddress(address);
      if (norm === null) return facts.login && config.current.senderLoginMismatch === 'reject' ? refuse(replies.senderNotOwned) : accept;
      if (!splitAddress(norm)) return refuse(replies.badSenderSyntax);
      const v = checkEnvelopeSender(config.current.senderLoginMismatch, facts, norm, accounts);
      return v.ok ? thresholds.mail(facts) : v;
    },
    rcptTo: async (facts, address) => {
      const r = checkRecipient(facts, address, relay, accounts, config.current.domains[0] ?? 'localhost');
      if (!r.verdict.ok) return r;
      let v = thresholds.rcpt(facts);
      if (v.ok && facts.login && config.current.thresholds.perAccountNewRecipientsPerDay > 0) {
        const isNew = !(await thresholdStore.hasSent(facts.login, r.address!));
        v = thresholds.newRecipient(facts, isNew);
        if (v.ok && isNew) await thresholdStore.rememberSent(facts.login, r.address!);
      }
      return { verdict: v, address: r.address };
    },
    headerFrom: (facts, addresses) => checkHeaderFrom(config.current.senderLoginMismatch, facts, addresses, accounts),
  };

  // Under HA the listeners bind the service address, which only the active box holds.
  const smtpConfig = (): Config => {
    const cfg = config.current;
    const addr = cfg.ha.enabled ? cfg.ha.serviceAddress : '';
    return addr ? { ...cfg, smtp: { ...cfg.smtp, listeners: cfg.smtp.listeners.map((l) => ({ ...l, host: addr })) } } : cfg;
  };
  const smtp = new SmtpService({
    config: smtpConfig,
    policies,
    spool,
    onCommitted: (env, body) => {
      thresholds.committed({ clientIp: env.clientIp, login: env.login, listener: env.listener, tls: false }, env.subject);
      dispatch(env, body);
    },
    tls,
    log: log.child({ mod: 'smtp' }),
  });
  let bindTimer: NodeJS.Timeout | null = null;
  let bindWarned = false;
  let stopped = false;
  if (c.ha) {
    // The service address may still be held by the other box (both active in a partition,
    // before one steps down): keep trying instead of failing the takeover.
    const bind = async (): Promise<void> => {
      bindTimer = null;
      try {
        await smtp.start();
        if (bindWarned) log.info({ evt: 'smtp.bind.done', listeners: smtp.addresses() }, 'service address bound');
      } catch (err) {
        await smtp.stop();
        if (!bindTimer && !bindWarned) log.warn({ evt: 'smtp.bind.retry', err: (err as Error).message }, 'cannot bind the service address yet; retrying');
        bindWarned = true;
        if (!stopped) bindTimer = setTimeout(() => void bind(), 250);
      }
    };
    await bind();
  } else await smtp.start();
  onConfig(() => smtp.applyConfig(smtpConfig()));

  const commands: ServiceCommands = {
    accounts: {
      accounts,
      domains: () => config.current.domains,
      unlock: async (address) => {
        await accounts.unlock(address);
        const login = normalizeAddress(address) ?? address;
        const released = await runner.hold(login, false);
        await events.emit({ kind: 'account.unlocked', severity: 'info', account: login, text: `${login} may send again; ${released} held message(s) released` });
        return released;
      },
    },
    delivery: {
      queue: runner,
      dkimRecord: (domain) => {
        if (!config.current.domains.includes(domain)) throw new Error(`dkim: ${domain} is not a local domain (domains: ${config.current.domains.join(', ')})`);
        return dkim.dnsRecord(domain, config.current.dkim.selector);
      },
    },
    deliveryStatus: {
      spoolPending: async () => (await spool.pending()).length,
      queueStats: () => runner.stats(),
      routing: () => config.current.routing,
    },
    quarantine: {
      list: () => quarantine.list(),
      // One operation per message at a time: a double release must not deliver twice.
      show: async (id) => ({ record: (await quarantine.get(id))!, content: await quarantine.content(id) }),
      delete: (id) => quarantineOp(id, async () => {
        const rec = await quarantine.remove(id);
        log.info({ evt: 'quarantine.delete', id, from: rec.envelope.from }, 'quarantined message deleted');
        return rec;
      }),
      release: (id) => quarantineOp(id, async () => {
        const rec = await quarantine.get(id);
        if (!rec) throw new Error(`quarantine: no message ${id}`);
        // Back into the normal flow, without the scanners' verdict, as the admin decided.
        const env: Envelope = { ...rec.envelope, scan: undefined };
        delete env.scan;
        await spool.adopt(env, quarantine.path(id), [quarantine.removeOp(id)]);
        await quarantine.forgetFile(id);
        log.info({ evt: 'quarantine.release', id, from: env.from, rcpt: env.rcpt, class: rec.class, summary: rec.summary }, 'quarantined message released by the administrator');
        router.submit(env);
        return rec;
      }),
    },
    smtp,
    dnsbl,
  };
  dnsbl.start();
  const expireQuarantine = () => void quarantine.expire().catch((err: Error) => log.error({ evt: 'quarantine.expire.fail', err: err.message }, 'could not expire quarantine'));
  expireQuarantine();
  const quarantineTimer = setInterval(expireQuarantine, 3600_000);
  quarantineTimer.unref();

  const merge: MergeTarget = {
    // Mail the other box accepted while both served alone: taken in unless already here.
    spool: async (env, body) => {
      if ((await spool.has(env.id)) || (await queue.has(env.id))) return false;
      await writeDurable(dataDir, `spool/${env.id}.eml`, body, dirs);
      await group.write([{ type: 'put', sublevel: 'spool', key: env.id, value: env }]);
      log.info({ evt: 'ha.merge.spool', id: env.id }, 'took in a message the other box accepted alone');
      dispatch(env, null);
      return true;
    },
    queue: async (e, body) => {
      const entry = e as unknown as import('./delivery/queue.js').QueueEntry;
      if ((await spool.has(entry.id)) || (await queue.has(entry.id))) return false;
      await writeDurable(dataDir, `spool/${entry.id}.eml`, body, dirs);
      await group.write([queue.enqueueOp(entry)]);
      log.info({ evt: 'ha.merge.queue', id: entry.id }, 'took in a queued message the other box accepted alone');
      runner.add(entry);
      return true;
    },
    quarantine: async (rec, body) => {
      if (await quarantine.get(rec.id)) return false;
      await writeDurable(dataDir, `quarantine/${rec.id}.eml`, body, dirs);
      await group.write([{ type: 'put', sublevel: 'quarantine', key: rec.id, value: rec }]);
      log.info({ evt: 'ha.merge.quarantine', id: rec.id }, 'took in a message the other box quarantined alone');
      return true;
    },
    mailbox: async (rel, body) => {
      if (await findInMaildir(dataDir, rel)) return false;
      await writeDurable(dataDir, rel, body, dirs);
      return true;
    },
  };
  log.info({ evt: 'services.ready', listeners: smtp.addresses() }, 'mail services running');

  return {
    commands,
    merge,
    async stop(drainMs: number) {
      stopped = true;
      if (bindTimer) clearTimeout(bindTimer);
      retryTimers.forEach((t) => clearTimeout(t));
      await smtp.stop();
      if (serviceAddr) await addressPort.release(serviceAddr).catch((err: Error) => log.error({ evt: 'ha.release.fail', err: err.message }, 'could not drop the service address'));
      // No new outbound transaction from here; those under way get drainMs to finish.
      clearInterval(quarantineTimer);
      clearInterval(anomalyTimer);
      await saveAnomaly();
      const draining = runner.stop(drainMs);
      await router.idle();
      router.stop();
      dnsbl.stop();
      await draining;
      client.close();
      await thresholdStore.close();
      unsubscribe.forEach((u) => u());
      log.info({ evt: 'services.stopped' }, 'mail services stopped');
    },
  };
}

/** The web admin password: generated at first start, printed once, kept only as a hash. */
async function ensureAdminPassword(configDir: string): Promise<void> {
  const path = join(configDir, 'admin.json');
  try {
    JSON.parse(await readFile(path, 'utf8'));
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const password = generatePassword();
  await writeFileAtomic(path, JSON.stringify({ user: 'admin', hash: await hashPassword(password) }, null, 2) + '\n');
  process.stdout.write(`\nmlsd: web admin user "admin", password (shown once): ${password}\n\n`);
}
