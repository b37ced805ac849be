// A quarantined or archived message in the web admin: its headers as data (shown as text), its
// body as an inert document for a sandboxed frame, its original bytes and its attachments as
// downloads only. The bytes come through the command layer (`quarantine export`, `archive
// export`), so the standby's refusal and every other check are the CLI's.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ControlRequest, ControlResponse } from '../commands/control.js';
import type { Origin } from '../commands/audit.js';
import { attachmentOf, contentDisposition, parseForView, viewCsp } from './message-view.js';
import { requireSession, type ApiDeps } from './api.js';

const SOURCES = { quarantine: 'quarantine', archive: 'archive' } as const;
type Source = keyof typeof SOURCES;

/** A message id as the quarantine and the archive make them: no slashes, no `..`, no oddities. */
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

interface Params {
  source: string;
  id: string;
  n?: string;
}

export interface MessageRouteDeps extends Pick<ApiDeps, 'sessions'> {
  run(req: ControlRequest, origin: Origin): Promise<ControlResponse>;
}

/** The message's bytes, or a reply already sent (bad source or id: 400; unknown: 404). */
async function rawOf(deps: MessageRouteDeps, req: FastifyRequest, reply: FastifyReply): Promise<{ raw: Buffer; id: string } | null> {
  const s = requireSession(deps, req, reply, false);
  if (!s) return null;
  const { source, id } = req.params as Params;
  if (!Object.hasOwn(SOURCES, source) || !ID.test(id) || id.includes('..')) {
    void reply.code(400).send({ error: 'bad message source or id' });
    return null;
  }
  const res = await deps.run({ argv: [SOURCES[source as Source], 'export', id] }, { face: 'web', who: s.user, from: req.ip });
  if (!res.ok || res.bytes === undefined) {
    void reply.code(404).send({ error: res.ok ? 'no such message' : res.error });
    return null;
  }
  return { raw: Buffer.from(res.bytes, 'base64'), id };
}

export function registerMessageRoutes(app: FastifyInstance, deps: MessageRouteDeps): void {
  app.get('/api/message/:source/:id', async (req, reply) => {
    reply.header('Cache-Control', 'no-store');
    const m = await rawOf(deps, req, reply);
    if (!m) return reply;
    const { bodyDocument: _body, ...view } = await parseForView(m.raw, { remoteImages: false });
    return { ...view, size: m.raw.length };
  });

  // The body for <iframe sandbox>: its own policy (no script, images only from the message
  // unless asked), framed only by the admin itself, and sandboxed even if opened on its own.
  app.get('/api/message/:source/:id/body', async (req, reply) => {
    const m = await rawOf(deps, req, reply);
    if (!m) return reply;
    const images = (req.query as { images?: string }).images === '1';
    const view = await parseForView(m.raw, { remoteImages: images });
    return reply
      .header('Content-Security-Policy', `${viewCsp(images)}; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox`)
      .header('X-Frame-Options', 'SAMEORIGIN')
      .header('Cache-Control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(view.bodyDocument);
  });

  app.get('/api/message/:source/:id/eml', async (req, reply) => {
    const m = await rawOf(deps, req, reply);
    if (!m) return reply;
    return download(reply, `${m.id.replace(/[^A-Za-z0-9._-]/g, '_')}.eml`, 'message/rfc822', m.raw);
  });

  app.get('/api/message/:source/:id/part/:n', async (req, reply) => {
    const m = await rawOf(deps, req, reply);
    if (!m) return reply;
    const part = await attachmentOf(m.raw, (req.params as Params).n ?? '');
    if (!part) return reply.code(404).send({ error: 'no such attachment' });
    // Never rendered by the browser, whatever the part claims to be.
    return download(reply, part.filename, 'application/octet-stream', part.content);
  });
}

function download(reply: FastifyReply, filename: string, type: string, body: Buffer): FastifyReply {
  return reply
    .header('Content-Disposition', contentDisposition(filename))
    .header('Cache-Control', 'no-store')
    .header('Content-Security-Policy', "default-src 'none'; sandbox")
    .type(type)
    .send(body);
}
