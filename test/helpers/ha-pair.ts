import { writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon, freePort, eventually } from './daemon.js';
import { TcpProxy } from './tcp-proxy.js';
import { startPtyPair, type PtyPair } from './socat.js';

/**
 * Two mlsd boxes of an HA pair on loopback: each on its own address, the network link
 * through a cuttable relay in each direction, the heartbeat cable a socat pty pair, the
 * service address shared (only the active box binds it).
 */
export interface HaPair {
  a: TestDaemon;
  b: TestDaemon;
  serial: PtyPair | null;
  /** a → b and b → a. */
  net: [TcpProxy, TcpProxy];
  service: string;
  ports: TestDaemon['ports'];
  cutNetwork(): void;
  restoreNetwork(): void;
  status(d: TestDaemon): Promise<HaStatus>;
  /** Whichever box says it is active (null if none). */
  active(): Promise<TestDaemon | null>;
  cleanup(): Promise<void>;
}

export interface HaStatus {
  nodeId: string;
  role: string;
  epoch: number;
  replication: string;
  oneDiskOnly: number;
  linkFault: string;
  peer: { role: string | null; links: { serial: string; network: string } };
  lastFailover: { at: string; role: string; reason: string } | null;
}

export interface HaPairOptions {
  /** The /24 this test file owns on loopback, e.g. '127.0.50'. */
  net: string;
  serial?: boolean;
  ha?: Record<string, unknown>;
  /** Settings for one box only. */
  haA?: Record<string, unknown>;
  haB?: Record<string, unknown>;
  config?: Record<string, unknown>;
  /** Both boxes run this script instead of the mlsd CLI (see TestDaemon's `entry`). */
  entry?: string;
  /** Run the web admin on both boxes, each on its own address (admin.listen is per box). */
  admin?: boolean;
  /** Box b's data dir (default: in its temp root), e.g. a power-cut mount made before the pair starts. */
  dataDirB?: string;
}

export async function startHaPair(o: HaPairOptions): Promise<HaPair> {
  const hostA = `${o.net}.1`;
  const hostB = `${o.net}.2`;
  const service = `${o.net}.10`;
  const a = await TestDaemon.create({ host: hostA, config: o.config, entry: o.entry });
  const b = await TestDaemon.create({ host: hostB, config: o.config, entry: o.entry, dataDir: o.dataDirB });
  // One set of SMTP ports for both: the config document is shared by the pair.
  const ports = { mx: await freePort(service), submission: await freePort(service), smtps: await freePort(service), admin: 0 };
  const haA = await freePort(hostA);
  const haB = await freePort(hostB);
  const proxyAB = await TcpProxy.start(`${o.net}.3`, await freePort(`${o.net}.3`), { host: hostB, port: haB });
  const proxyBA = await TcpProxy.start(`${o.net}.4`, await freePort(`${o.net}.4`), { host: hostA, port: haA });
  const serial = o.serial === false ? null : await startPtyPair(a.root, 'ha');
  const key = 'test-shared-key-0123456789';
  const write = async (d: TestDaemon, me: { node: string; host: string; port: number; priority: number; peer: TcpProxy; device: string; own?: Record<string, unknown> }) => {
    const path = join(d.configDir, 'config.json');
    const cfg = JSON.parse(await readFile(path, 'utf8')) as Record<string, any>;
    cfg.smtp.listeners = [
      { name: 'mx', host: me.host, port: ports.mx, starttls: true },
      { name: 'submission', host: me.host, port: ports.submission, starttls: true, authRequired: true },
      { name: 'smtps', host: me.host, port: ports.smtps, implicitTls: true },
    ];
    cfg.ha = {
      enabled: true,
      nodeId: me.node,
      priority: me.priority,
      listen: { host: me.host, port: me.port },
      peer: { host: me.peer.host, port: me.peer.port },
      sharedKey: key,
      serial: { device: me.device, baud: 115200 },
      serviceAddress: service,
      ...o.ha,
      ...me.own,
    };
    // admin.listen is per box (kept at a config sync); the web admin runs where a test asks for it.
    cfg.admin = { ...cfg.admin, enabled: o.admin === true };
    d.ports = { ...ports, admin: d.ports.admin };
    await writeFile(path, JSON.stringify(cfg, null, 2));
  };
  await write(a, { node: 'a', host: hostA, port: haA, priority: 200, peer: proxyAB, device: serial?.a ?? '', own: o.haA });
  await write(b, { node: 'b', host: hostB, port: haB, priority: 100, peer: proxyBA, device: serial?.b ?? '', own: o.haB });
  const status = async (d: TestDaemon): Promise<HaStatus> => {
    const r = await d.cli(['ha', 'status', '--json']);
    if (r.code !== 0) throw new Error(`ha status: ${r.stderr}`);
    return JSON.parse(r.stdout) as HaStatus;
  };
  const pair: HaPair = {
    a,
    b,
    serial,
    net: [proxyAB, proxyBA],
    service,
    ports,
    cutNetwork: () => {
      proxyAB.cut();
      proxyBA.cut();
    },
    restoreNetwork: () => {
      proxyAB.restore();
      proxyBA.restore();
    },
    status,
    active: async () => {
      for (const d of [a, b]) {
        if (d.proc?.exitCode !== null || d.proc?.signalCode) continue;
        const s = await status(d).catch(() => null);
        if (s?.role === 'active') return d;
      }
      return null;
    },
    cleanup: async () => {
      await Promise.all([a.cleanup(), b.cleanup()]);
      await proxyAB.stop();
      await proxyBA.stop();
      await serial?.stop();
    },
  };
  return pair;
}

/** Starts both boxes and waits until one is active and the other in sync. */
export async function startedInSync(p: HaPair, timeoutMs = 20000): Promise<{ active: TestDaemon; standby: TestDaemon }> {
  await Promise.all([p.a.start(), p.b.start()]);
  return waitInSync(p, timeoutMs);
}

export async function waitInSync(p: HaPair, timeoutMs = 20000): Promise<{ active: TestDaemon; standby: TestDaemon }> {
  return eventually(
    'an active box with its standby in sync',
    async () => {
      const act = await p.active();
      if (!act) return false;
      const other = act === p.a ? p.b : p.a;
      const [sa, so] = await Promise.all([p.status(act), p.status(other).catch(() => null)]);
      return sa.replication === 'in sync' && so?.role === 'standby' && so.replication === 'in sync' ? { active: act, standby: other } : false;
    },
    timeoutMs,
  );
}
