// The box's HTTPS server: the web admin (its pages and the JSON API under /api/) and, beside it,
// the user-facing paths later capabilities add (/dav/, /webdisk/, newsletter pages). Who may
// reach the admin part is `admin.allowIps`; the user-facing part is open to all.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import type { Config } from '../config/schema.js';
import { IpList } from '../policy/ipList.js';
import type { Logger } from '../log/logger.js';
import { StaticAssets } from './static-assets.js';

/** Path prefixes for the mail users, not the administrator: not limited by admin.allowIps. */
export const USER_PATHS = ['/dav/', '/webdisk/', '/news/'];

/**
 * The admin pages' policy: scripts and styles only from the box itself (no inline script, so
 * an injected <script> or onerror= cannot run), images from the box or data: (charts), frames
 * only from the box (the sandboxed message view), and no one may frame the admin.
 */
export const ADMIN_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface HttpsOptions {
  key: string;
  cert: string;
  config: () => Config;
  log: Logger;
}

export async function createHttpsServer(o: HttpsOptions): Promise<{ app: FastifyInstance; assets: StaticAssets }> {
  const app = Fastify({
    https: { key: o.key, cert: o.cert, minVersion: 'TLSv1.2' },
    logger: false,
    // The largest request is a certificate upload or a long setting; anything bigger is refused (413).
    bodyLimit: 1 << 20,
    // Slow clients cannot hold sockets open forever on a small box.
    requestTimeout: 60_000,
    connectionTimeout: 60_000,
    return503OnClosing: true,
  });
  // Only JSON bodies: a form another site posts (text/plain, urlencoded) gets 415, never parsed.
  app.removeContentTypeParser('text/plain');
  await app.register(fastifyCookie);

  let allowFor: { list: readonly string[]; ips: IpList } | null = null;
  const allowed = (ip: string) => {
    const list = o.config().admin.allowIps;
    if (allowFor?.list !== list) allowFor = { list, ips: new IpList(list) };
    return allowFor.ips.has(ip);
  };

  app.addHook('onRequest', async (req, reply) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'no-referrer');
    reply.header('Strict-Transport-Security', 'max-age=31536000');
    if (USER_PATHS.some((p) => req.url.startsWith(p))) return;
    if (!allowed(req.ip)) {
      o.log.warn({ evt: 'admin.refused', ip: req.ip, url: req.url.slice(0, 200) }, 'web admin refused to an address not in admin.allowIps');
      return reply.code(403).type('text/plain; charset=utf-8').send('403 Forbidden: this address may not reach the web admin (admin.allowIps)\n');
    }
    reply.header('Content-Security-Policy', ADMIN_CSP);
    reply.header('X-Frame-Options', 'DENY');
    // A request another site made the browser send carries its Origin: refused before any handler.
    if (req.method !== 'GET' && req.method !== 'HEAD' && !sameOrigin(req)) {
      return reply.code(403).send({ error: 'cross-site request refused' });
    }
  });

  app.setErrorHandler((err: { statusCode?: number; message: string }, req, reply) => {
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (code >= 500) o.log.error({ evt: 'admin.error', url: req.url.slice(0, 200), err: err.message }, 'web admin request failed');
    void reply.code(code).send({ error: code >= 500 ? 'internal error (see the log)' : err.message });
  });
  app.setNotFoundHandler((_req, reply) => void reply.code(404).type('text/plain; charset=utf-8').send('404 Not Found\n'));

  const assets = await StaticAssets.load();
  app.get('/', (req, reply) => assets.sendIndex(req, reply));
  app.get('/static/:name', (req, reply) => assets.send((req.params as { name: string }).name, req, reply));
  app.get('/favicon.ico', (_req, reply) => void reply.code(204).send());
  return { app, assets };
}

/** The Origin (or, without it, the Referer) a browser sent names this server's own host. */
function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin ?? refererOrigin(req.headers.referer);
  if (origin === undefined) return true; // not a browser, or a same-origin request of an old one
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function refererOrigin(referer: string | undefined): string | undefined {
  if (!referer) return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return 'null';
  }
}

export type { FastifyReply, FastifyRequest };
