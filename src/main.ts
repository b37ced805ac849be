import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { loadBoard } from './hw/board.js';
import { adminCommands } from './accounts/admin-commands.js';
import { systemCommands } from './system/commands.js';
import { simBoardNetwork } from './hw/network-sim.js';
import { linuxBoardNetwork, NETWORKD_DIR } from './hw/network-linux.js';
import { simPower } from './hw/power-sim.js';
import { linuxPower } from './hw/power-linux.js';
import { SIM_BOARD_DATA } from './hw/sim-board.js';
import { Alarms, alarmStatus } from './events/alarms.js';
import { alarmCommands } from './events/alarm-commands.js';
import { consoleDevice, startConsole } from './console/console.js';
import { panelCommands } from './panel/commands.js';
import { startPanelFace, type PanelFace } from './panel/face.js';
import { facesText } from './commands/faces.js';
import { serialportLine } from './hw/serialport-line.js';
import { linuxServiceAddress, simServiceAddress } from './hw/service-address.js';
import { VERSION } from './core/version.js';
import { systemClock } from './core/clock.js';
import type { BoxContext, CapabilityDef } from './core/capability.js';
import { createLogger, type Logger } from './log/logger.js';
import { ConfigStore, CONFIG_DATA } from './config/config.js';
import { configCommands } from './config/commands.js';
import { ensureAdminPassword, verifyAdmin, ADMIN_DATA } from './accounts/admin.js';
import { ACCOUNTS_DATA } from './accounts/accounts.js';
import { openDataDb, GroupCommitter } from './store/db.js';
import { DirSyncer } from './store/atomic.js';
import { DataRegistry } from './store/data.js';
import { LocalDurability, type Durability } from './store/durability.js';
import { EventLog, EVENTS_DATA, type EventInput } from './events/events.js';
import { eventCommands } from './events/commands.js';
import { SPOOL_DATA } from './spool/spool.js';
import { QUEUE_DATA } from './delivery/queue.js';
import { MAILDIR_DATA } from './delivery/maildir.js';
import { DKIM_DATA } from './delivery/dkim.js';
import { TLS_DATA, loadOrCreateTls } from './smtp/tls.js';
import { tlsCommands } from './smtp/tls-commands.js';
import { THRESHOLD_DATA } from './store/counters.js';
import { QUARANTINE_DATA } from './scan/quarantine.js';
import { SCAN_STATE_DATA } from './scan/capability.js';
import { HaNode } from './ha/node.js';
import { alarmSummarySource } from './ha/peer-alarms.js';
import { HA_DATA } from './ha/state.js';
import { HaDurability } from './ha/durability.js';
import { haCommands, haStatus } from './ha/commands.js';
import { configDirFiles, applyConfigDirFiles } from './ha/configsync.js';
import { CommandRegistry } from './commands/registry.js';
import { StatusReport, statusCommands, daemonStatus, hostStatus } from './commands/status.js';
import { ControlServer, socketPath, assertNotRunning, type ControlRequest } from './commands/control.js';
import { runAudited, type Origin } from './commands/audit.js';
import { startAdminFace, type AdminFace } from './admin/face.js';
import { startMailServices, type MailServices } from './services.js';
import { registerMailCommands } from './services-commands.js';
import { inventoryOf, startDiskMonitor } from './disk/capability.js';
import { diskIdentity } from './hw/disks.js';
import { checkDataDisk, readMemory } from './backup/marker.js';
import { announceDiskVerdict } from './backup/announce.js';
import { RestoreGate } from './core/restore-gate.js';
import { diskCommands, diskStatus } from './disk/commands.js';
import { DISK_DATA } from './disk/identity.js';
import { ARCHIVE_DATA } from './archive/capability.js';
import { BACKUP_DATA } from './backup/capability.js';
import { TRAFFIC_DATA } from './stats/traffic.js';

export interface StartOptions {
  configDir?: string;
  dataDir?: string;
  board?: string;
  /** Capabilities beyond the built-in mail services (a board's extras; a test's own). */
  capabilities?: CapabilityDef[];
}

export interface Daemon {
  stop(): Promise<void>;
}

/** Every built-in capability's data, declared by its owner (HA mirrors it; backup will copy it). */
export const BUILT_IN_DATA = [CONFIG_DATA, ACCOUNTS_DATA, ADMIN_DATA, TLS_DATA, DKIM_DATA, EVENTS_DATA, HA_DATA, SPOOL_DATA, QUEUE_DATA, MAILDIR_DATA, QUARANTINE_DATA, THRESHOLD_DATA, SCAN_STATE_DATA, SIM_BOARD_DATA, DISK_DATA, ARCHIVE_DATA, BACKUP_DATA, TRAFFIC_DATA];

/** The composition root: picks the adapters, builds the box and its capabilities in order, starts them. */
export async function startDaemon(opts: StartOptions, log: Logger = createLogger()): Promise<Daemon> {
  const started = Date.now();
  const board = await loadBoard(opts.board ?? 'sim');
  const configDir = resolve(opts.configDir ?? board.paths.configDir);
  const dataDir = resolve(opts.dataDir ?? board.paths.dataDir);
  await mkdir(configDir, { recursive: true, mode: 0o700 });
  await assertNotRunning(socketPath(configDir));
  await mkdir(dataDir, { recursive: true });
  const extras = opts.capabilities ?? [];

  const { store: config, created } = await ConfigStore.open(configDir, board.defaults);
  if (created) log.info({ evt: 'config.created', path: config.path, board: board.model }, 'config created from board defaults');
  // Before anything is written to the data disk: is it the one this box knows, a blank replacement, or another's?
  const diskNow = await inventoryOf({ board, config, dataDir }).dataDisk().catch(() => null);
  const diskVerdict = await checkDataDisk({ configDir, dataDir, disk: diskNow ? diskIdentity(diskNow) : null, now: systemClock.now(), present: diskNow?.present ?? true, mustBeMounted: board.adapter === 'linux' });
  const restorePending = (await readMemory(configDir))?.restorePending ?? null;
  const restoreGate = new RestoreGate(restorePending !== null && config.current.backup.restore.auto);
  log.info({ evt: 'disk.marker', verdict: diskVerdict.kind, restorePending: restorePending !== null }, 'data disk marker read');
  config.onChange((_cfg, key) => log.info({ evt: 'config.set', key }, 'config changed'));
  await ensureAdminPassword(configDir, (line) => process.stdout.write(line));
  const db = await openDataDb(dataDir);
  const dirs = new DirSyncer();
  const data = new DataRegistry([...BUILT_IN_DATA, ...extras.flatMap((c) => (c.data ? [c.data] : []))]);
  config.acceptPeerCopies(data);
  const committer = new GroupCommitter(db, dirs);
  const local = new LocalDurability(data, committer, dirs, dataDir);
  const events = new EventLog(db, log.child({ mod: 'events' }));
  // An event that cannot be written (full disk, closing database) is logged, never a crash.
  const record = (ev: EventInput) => events.emit(ev).then(() => undefined, (err: Error) => log.error({ evt: 'event.fail', kind: ev.kind, err: err.message }, 'could not record event'));
  const emit = (ev: EventInput) => void record(ev);
  const network = board.adapter === 'linux' ? linuxBoardNetwork(board.network?.lan ?? 'eth0', NETWORKD_DIR, log.child({ mod: 'net' })) : simBoardNetwork(configDir, systemClock, log.child({ mod: 'net' }));
  const power = board.adapter === 'linux' ? linuxPower(log.child({ mod: 'power' })) : simPower(configDir, systemClock, log.child({ mod: 'power' }));
  const serviceAddress = board.adapter === 'linux' ? linuxServiceAddress(board.network?.lan ?? 'eth0', log.child({ mod: 'net' })) : simServiceAddress;

  let services: MailServices | null = null;
  let ha: HaNode | null = null;
  let durability: Durability = local;
  const box = (): BoxContext => ({ board, configDir, dataDir, started, config, db, durability, dirs, events, emit, log, clock: systemClock, restore: restoreGate });
  announceDiskVerdict(diskVerdict, emit);
  // The data disk is watched on every box, whatever its HA role, for the daemon's life
  // (its first read waits for the mail services below: what a boot finds is mailed).
  const disk = startDiskMonitor(box());
  const startServices = async () => {
    services ??= await startMailServices(box(), { serviceAddress, extras, disk });
  };
  const alarms = new Alarms(db, events, () => systemClock.now());
  // The heartbeat carries this box's alarms: a standby's reach the administrator through the active's alerts.
  const alarmSummary = alarmSummarySource({ unacknowledged: () => alarms.unacknowledged(), subscribe: (fn) => events.subscribe(fn), serving: () => services !== null, log });
  const haCfg = config.current.ha;
  if (haCfg.enabled) {
    // Mail service runs only on the active box; a standby applies what the active sends.
    const serial = haCfg.serial.device ? serialportLine(haCfg.serial.device, haCfg.serial.baud, log.child({ mod: 'serial' })) : null;
    ha = new HaNode({
      ha: () => config.current.ha,
      db,
      group: committer,
      data,
      local,
      dirs,
      dataDir,
      serial,
      activate: startServices,
      deactivate: async () => {
        const s = services;
        services = null;
        await s?.stop(5000);
      },
      configFiles: () => configDirFiles(configDir, data),
      applyConfigFiles: (files) => applyConfigDirFiles(configDir, files, data),
      configVersion: () => config.sharedVersion(),
      emit,
      alarms: alarmSummary.summary,
      log: log.child({ mod: 'ha' }),
    });
    durability = new HaDurability(local, ha.replicator);
    // Config changes reach the standby as they are made (`config set` returns once it has them).
    config.onChange(() => void durability.configChanged().catch(() => undefined));
    await ha.start();
  } else await startServices();
  disk.monitor.start();

  // The one command layer every face calls, registered once.
  const role = () => ha?.role ?? 'standby';
  const serving = () => services !== null;
  const live = (): MailServices => {
    if (!services) throw new Error(`this box is the HA ${role()} box; run that on the active box`);
    return services;
  };
  const status = new StatusReport();
  const registry = new CommandRegistry({ serving, role });
  status.add('daemon', daemonStatus(() => ({ version: VERSION, board: board.model, started, hostname: config.current.hostname, role: role() })));
  registerMailCommands(box(), registry, status, live);
  status.add('disk', diskStatus(() => disk.monitor));
  registry.register('disk', diskCommands(() => disk.monitor));
  status.add('ha', haStatus(() => ha));
  status.add('alarms', alarmStatus(() => alarms));
  status.add('host', hostStatus(() => ({ dataDir })));
  registry.register('daemon', statusCommands(status, serving));
  registry.register('config', configCommands(() => config));
  registry.register('events', eventCommands(() => events));
  registry.register('ha', haCommands(() => ha));
  registry.register('admin', adminCommands(configDir, emit));
  registry.register(
    'system',
    systemCommands({
      network,
      power,
      record,
      allowLoopback: board.adapter === 'sim',
      afterApply: async () => {
        const a = config.current.ha;
        if (services && a.enabled && a.serviceAddress) await serviceAddress.claim(a.serviceAddress);
      },
    }),
  );
  registry.register('alarms', alarmCommands(() => alarms, emit));
  // The web admin starts below; a certificate installed before that is read by it at its start.
  let adminFace: AdminFace | null = null;
  registry.register('tls', tlsCommands({ configDir, now: () => systemClock.now(), emit, apply: async (m) => (adminFace ? (adminFace.setCertificate(m), ['the web admin presents it from the next connection on']) : []) }));
  for (const c of extras) {
    registry.register(c.name, c.commands?.(box(), () => (services?.extras.get(c.name) as never) ?? null) ?? []);
    status.add(c.name, (b) => (b.serving ? (services?.extras.get(c.name)?.status?.(b) ?? null) : null));
  }
  const runOnce = async (req: ControlRequest) => {
    const res = await registry.run(req);
    // A setting changed or a user added reaches the standby before the command returns.
    if (res.ok && services) await durability.configChanged().catch(() => undefined);
    return res;
  };
  // Every face's changes go to the audit trail, with who and from where.
  const auditDeps = { commands: () => registry, config: () => config, emit };
  const runCommand = (req: ControlRequest, origin: Origin) => runAudited(runOnce, req, origin, auditDeps);
  const control = new ControlServer(socketPath(configDir), (req) => runCommand(req, { face: 'cli', who: 'root', from: 'control socket' }));
  await control.start();
  const consoleAt = consoleDevice(config.current.console, board);
  const consoleFace = consoleAt
    ? startConsole(serialportLine(consoleAt.device, consoleAt.baud, log.child({ mod: 'console' })), {
        run: (req) => runCommand(req, { face: 'console', who: 'admin', from: consoleAt.device }),
        specs: () => registry.specs(),
        verify: (user, password) => verifyAdmin(configDir, user, password),
        settings: () => config.current.console,
        hostname: () => config.current.hostname,
        emit,
        log: log.child({ mod: 'console' }),
        clock: systemClock,
      })
    : null;
  // The front panel: a face like the console, on both HA roles. Sim board: buttons pressed by
  // `mlsd panel press`; an LCD device of "pty" (and no panel.lcdDevice) is a screen kept in memory.
  let panelFace: PanelFace | null = null;
  registry.register('panel', panelCommands(() => panelFace));
  panelFace = await startPanelFace({ board, config, run: (req) => runCommand(req, { face: 'panel', who: 'admin', from: 'front panel' }), query: (req) => registry.run(req), clock: systemClock, log });
  // The web admin: HTTPS on admin.listen, the same command layer behind its API.
  adminFace = await startAdminFace({
    configDir,
    config,
    run: runCommand,
    verify: (user, password) => verifyAdmin(configDir, user, password),
    emit,
    subscribe: (fn) => events.subscribe(fn),
    log: log.child({ mod: 'admin' }),
    clock: systemClock,
  });
  // What the HA peer sends: a new administrator password logs this box's browsers out too, and
  // a new certificate is presented by this box's web admin as soon as both halves are here.
  data.watchConfigFile('admin.json', () => adminFace?.endSessions('administrator password changed on the HA peer'));
  const reloadCertificate = () =>
    void loadOrCreateTls(configDir, config.current.hostname, log)
      .then((m) => adminFace?.setCertificate(m))
      .catch((err: Error) => log.info({ evt: 'admin.tls.wait', err: err.message }, 'certificate from the peer not applied yet (waiting for its other half)'));
  data.watchConfigFile('tls/cert.pem', reloadCertificate);
  data.watchConfigFile('tls/key.pem', reloadCertificate);
  log.info({ evt: 'daemon.ready', board: board.model, configDir, dataDir, ha: haCfg.enabled ? haCfg.nodeId : false }, 'mlsd ready');
  // A person trying the sim board (`make run`) is told where each face of the box is.
  if (board.adapter === 'sim') process.stdout.write(facesText({ configDir, listeners: config.current.smtp.listeners, console: consoleAt?.device ?? null, panel: panelFace, admin: adminFace?.url ?? null }));

  return {
    async stop() {
      await adminFace?.stop();
      await panelFace?.panel.stop();
      await consoleFace?.stop();
      await control.stop();
      // An active box hands the service to its in-sync standby before it goes.
      await ha?.handOver();
      await ha?.stop();
      const s = services;
      services = null;
      // Outbound transactions under way get time to hear their 250 (systemd allows 90 s),
      // so a restart does not send again what a peer has taken.
      await s?.stop(60_000);
      alarmSummary.stop();
      alarms.close();
      await disk.stop();
      await dirs.close();
      await db.close();
      log.info({ evt: 'daemon.stopped' }, 'mlsd stopped');
    },
  };
}
