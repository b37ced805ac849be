// The web admin as a face of the box, like the serial console and the front panel: it runs on
// both HA roles (a standby's pages say "run that on the active box" for what it cannot do) and
// reaches the box only through the command layer.
import type { ConfigStore } from '../config/config.js';
import { parseHostPort } from '../config/schema.js';
import type { ControlRequest, ControlResponse } from '../commands/control.js';
import type { Origin } from '../commands/audit.js';
import type { Clock, Timer } from '../core/clock.js';
import type { EventInput, MlsdEvent } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import { loadOrCreateTls } from '../smtp/tls.js';
import { registerApi } from './api.js';
import { registerMessageRoutes } from './message-routes.js';
import { LoginGuard } from './login-guard.js';
import { createHttpsServer } from './server.js';
import type { FastifyInstance } from 'fastify';
import { SessionStore } from './sessions.js';

export interface AdminFaceDeps {
  configDir: string;
  config: ConfigStore;
  run(req: ControlRequest, origin: Origin): Promise<ControlResponse>;
  verify(user: string, password: string): Promise<boolean>;
  emit(ev: EventInput): void;
  /** The event log's live feed: a password change anywhere ends every web session. */
  subscribe(fn: (ev: MlsdEvent) => void): () => void;
  log: Logger;
  clock: Clock;
}

export interface AdminFace {
  /** https://host:port/ as a browser reaches it. */
  url: string;
  /** Presents another certificate from the next TLS handshake on (`tls install`); open connections keep theirs. */
  setCertificate(m: { cert: string; key: string }): void;
  /** Logs every browser out (the administrator password changed, here or on the HA peer). */
  endSessions(reason: string): void;
  stop(): Promise<void>;
}

export async function startAdminFace(d: AdminFaceDeps): Promise<AdminFace | null> {
  const cfg = d.config.current.admin;
  if (!cfg.enabled) return null;
  const at = parseHostPort(cfg.listen)!;
  const tls = await loadOrCreateTls(d.configDir, d.config.current.hostname, d.log);
  const { app } = await createHttpsServer({ key: tls.key, cert: tls.cert, config: () => d.config.current, log: d.log });
  const sessions = new SessionStore(d.clock, () => d.config.current.admin.sessionMinutes * 60_000);
  const guard = new LoginGuard(d.clock, () => ({ failures: d.config.current.admin.lockoutFailures, lockMs: d.config.current.admin.lockoutMinutes * 60_000 }));
  registerApi(app, { sessions, guard, verify: d.verify, run: d.run, emit: d.emit, log: d.log });
  registerMessageRoutes(app, { sessions, run: d.run });
  // A new administrator password (from any face) logs out every browser that used the old one.
  const endSessions = (reason: string) => {
    d.log.info({ evt: 'admin.sessions.ended', sessions: sessions.size, reason }, 'web sessions ended');
    sessions.clear();
  };
  const unsubscribe = d.subscribe((ev) => {
    if (ev.kind === 'admin.change' && ev.data?.ok === true && /^admin (passwd|reset)\b/.test(String(ev.data.argv))) endSessions('administrator password changed');
  });
  const state = { stopped: false, told: false, retry: null as Timer | null };
  await listenOrRetry(app, at, d, state);
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : at.port;
  const host = at.host.includes(':') ? `[${at.host}]` : at.host;
  const url = `https://${host === '0.0.0.0' || host === '[::]' ? d.config.current.hostname : host}:${port}/`;
  d.log.info({ evt: 'admin.listening', url }, 'web admin listening');
  return {
    url,
    setCertificate(m) {
      (app.server as import('node:https').Server).setSecureContext({ key: m.key, cert: m.cert, minVersion: 'TLSv1.2' });
      d.log.info({ evt: 'admin.tls.reloaded' }, 'web admin presents the new certificate');
    },
    endSessions,
    async stop() {
      state.stopped = true;
      unsubscribe();
      d.clock.clearTimeout(state.retry);
      await app.close();
    },
  };
}

/**
 * Binds the HTTPS port. The mail service must not stop because its web port is taken (another
 * program on 443, a peer's address after an HA config sync): a failed bind is reported and
 * tried again every 30 s.
 */
async function listenOrRetry(app: FastifyInstance, at: { host: string; port: number }, d: AdminFaceDeps, state: { stopped: boolean; told: boolean; retry: Timer | null }): Promise<void> {
  if (state.stopped) return;
  try {
    await app.listen({ host: at.host, port: at.port });
  } catch (err) {
    const message = (err as Error).message;
    d.log.error({ evt: 'admin.listen.fail', host: at.host, port: at.port, err: message }, 'web admin could not listen; retrying every 30 s');
    // One event says it; the retries only log (an event every 30 s would push the real ones out of the list).
    if (!state.told) d.emit({ kind: 'admin.listenFailed', severity: 'warning', text: `web admin: cannot listen on ${at.host}:${at.port} (${message}); retrying every 30 s` });
    state.told = true;
    state.retry = d.clock.setTimeout(() => void listenOrRetry(app, at, d, state).catch(() => undefined), 30_000);
    state.retry.unref();
  }
}
