// The JSON API of the web admin: login and logout, the session, and `/api/run`, which hands an
// argv to the one command layer (the same checks, the same config schema, the same refusals as
// the CLI and the serial console). Every request but the login needs a live session; every
// change needs the session's CSRF token in X-CSRF-Token.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ControlRequest, ControlResponse } from '../commands/control.js';
import type { Origin } from '../commands/audit.js';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import { configSchema } from '../config/schema.js';
import type { LoginGuard } from './login-guard.js';
import { csrfMatches, type Session, type SessionStore } from './sessions.js';

export const SESSION_COOKIE = 'mlsd_session';

export interface ApiDeps {
  sessions: SessionStore;
  guard: LoginGuard;
  verify(user: string, password: string): Promise<boolean>;
  run(req: ControlRequest, origin: Origin): Promise<ControlResponse>;
  emit(ev: EventInput): void;
  log: Logger;
}

const loginBody = z.strictObject({ user: z.string().max(128), password: z.string().max(1024) });
const runBody = z.strictObject({ argv: z.array(z.string().max(1 << 16)).max(64), stdin: z.string().max(1 << 16).optional() });

/** The session a request's cookie names, or null (the caller answers 401). */
export function sessionOf(req: FastifyRequest, sessions: SessionStore): Session | null {
  return sessions.touch(req.cookies[SESSION_COOKIE], req.headers['x-mlsd-background'] !== '1');
}

/** A route's guard: a live session, and for a change its CSRF token. */
export function requireSession(deps: Pick<ApiDeps, 'sessions'>, req: FastifyRequest, reply: FastifyReply, change: boolean): Session | null {
  const s = sessionOf(req, deps.sessions);
  if (!s) {
    void reply.code(401).send({ error: 'not logged in' });
    return null;
  }
  if (change && !csrfMatches(s, req.headers['x-csrf-token'])) {
    void reply.code(403).send({ error: 'missing or wrong CSRF token (reload the page)' });
    return null;
  }
  return s;
}

export function registerApi(app: FastifyInstance, deps: ApiDeps): void {
  const cookie = { path: '/', secure: true, httpOnly: true, sameSite: 'strict' as const };

  app.post('/api/login', async (req, reply) => {
    const body = loginBody.safeParse(req.body);
    if (!body.success) return reply.code(400).send({ error: 'send {"user": ..., "password": ...}' });
    // Whatever id came with the request is dropped, never promoted to a logged-in session.
    deps.sessions.destroy(req.cookies[SESSION_COOKIE]);
    const attempt = deps.guard.begin(req.ip);
    if (!attempt.ok) {
      const seconds = Math.ceil(attempt.retryAfterMs / 1000);
      reply.header('Retry-After', String(seconds));
      const error = attempt.busy ? 'too many logins at once; try again in a moment' : `too many failed logins from this network; try again in ${seconds} s`;
      return reply.code(429).send({ error, retryAfterSeconds: seconds, busy: attempt.busy });
    }
    const { user, password } = body.data;
    let ok = false;
    try {
      ok = await deps.verify(user, password);
    } finally {
      attempt.done(ok);
    }
    if (!ok) {
      deps.log.warn({ evt: 'admin.login.fail', ip: req.ip }, 'web admin login failed');
      if (attempt.locks) {
        deps.emit({
          kind: 'admin.lockout',
          severity: 'warning',
          text: `web admin: too many failed logins from ${deps.guard.key(req.ip)}; locked out`,
          ip: req.ip,
          data: { network: deps.guard.key(req.ip) },
        });
      }
      return reply.code(401).send({ error: 'wrong user name or password' });
    }
    const s = deps.sessions.create(user, req.ip);
    deps.log.info({ evt: 'admin.login', ip: req.ip }, 'web admin login');
    deps.emit({ kind: 'admin.login', severity: 'info', text: `web admin: ${user} logged in from ${req.ip}`, account: user, ip: req.ip });
    return reply.setCookie(SESSION_COOKIE, s.id, cookie).send({ user: s.user, csrf: s.csrf });
  });

  app.post('/api/logout', async (req, reply) => {
    const s = requireSession(deps, req, reply, true);
    if (!s) return reply;
    deps.sessions.destroy(s.id);
    return reply.clearCookie(SESSION_COOKIE, cookie).send({ ok: true });
  });

  app.get('/api/session', async (req, reply) => {
    reply.header('Cache-Control', 'no-store');
    const s = requireSession(deps, req, reply, false);
    if (!s) return reply;
    return { user: s.user, csrf: s.csrf };
  });

  app.post('/api/run', async (req, reply) => {
    reply.header('Cache-Control', 'no-store');
    const s = requireSession(deps, req, reply, true);
    if (!s) return reply;
    const body = runBody.safeParse(req.body);
    if (!body.success) return reply.code(400).send({ ok: false, error: 'send {"argv": [strings], "stdin"?: string}' });
    const res = await deps.run({ argv: body.data.argv, json: true, ...(body.data.stdin !== undefined ? { stdin: body.data.stdin } : {}) }, { face: 'web', who: s.user, from: req.ip });
    // A refused command is an answer, not a transport failure: 200 with ok false and its one line.
    return res;
  });

  // The config schema with its descriptions: the pages build their forms from it, and the
  // server checks what they send against the same schema (`config set`).
  let schema: unknown = null;
  app.get('/api/schema', async (req, reply) => {
    if (!requireSession(deps, req, reply, false)) return reply;
    schema ??= z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
    return schema;
  });
}
