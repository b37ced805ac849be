// The web admin's files, read once at start and kept in memory, gzipped once: a low-power box
// serves them from RAM. Only names found at start are served; a request is a key looked up in
// that map, never a path joined onto a folder, so `..` and friends find nothing.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The repository (or installed package) root: this file runs as dist/src/admin/static-assets.js. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Hand-written files (HTML, CSS) and the front end tsc compiled from web/src. */
export const ASSET_DIRS = [join(ROOT, 'web', 'static'), join(ROOT, 'dist', 'web')];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

interface Asset {
  type: string;
  body: Buffer;
  gzip: Buffer | null;
  etag: string;
}

export class StaticAssets {
  /**
   * `<link rel="modulepreload">` for every module of the front end, put in the page's head:
   * the browser then fetches them all at once instead of level by level as the imports are
   * found (app.js, then pages.js, then each page...), the difference between the dashboard
   * interactive in well under a second and not (test/bench/admin-page.ts).
   */
  private readonly preload: string;

  private constructor(private readonly files: ReadonlyMap<string, Asset>) {
    const modules = [...files.keys()].filter((n) => n.endsWith('.js')).sort();
    this.preload = modules.map((n) => `<link rel="modulepreload" href="/static/${n}">\n`).join('');
  }

  static async load(dirs = ASSET_DIRS): Promise<StaticAssets> {
    const files = new Map<string, Asset>();
    for (const dir of dirs) {
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const name of names) {
        const type = TYPES[extname(name)];
        if (!type || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) continue;
        const body = await readFile(join(dir, name));
        const gz = gzipSync(body, { level: 9 });
        files.set(name, {
          type,
          body,
          gzip: gz.length < body.length ? gz : null,
          etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
        });
      }
    }
    if (!files.has('index.html') || !files.has('app.js')) throw new Error(`web admin files missing (looked in ${dirs.join(', ')}); run the build`);
    return new StaticAssets(files);
  }

  has(name: string): boolean {
    return this.files.has(name);
  }

  send(name: string, req: FastifyRequest, reply: FastifyReply): FastifyReply {
    const a = this.files.get(name);
    if (!a || name === 'index.html') return reply.code(404).type('text/plain; charset=utf-8').send('404 Not Found\n');
    // Revalidated each time (an update of the box changes them); a 304 costs a few bytes.
    reply.header('Cache-Control', 'no-cache').header('ETag', a.etag).type(a.type);
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return sendBody(a, req, reply);
  }

  /** The page shell, in the language the browser prefers (the front end may switch it). */
  sendIndex(req: FastifyRequest, reply: FastifyReply): FastifyReply {
    const a = this.files.get('index.html')!;
    const lang = prefersChinese(req.headers['accept-language']) ? 'zh-TW' : 'en';
    const body = Buffer.from(a.body.toString('utf8').replace('<html lang="en">', `<html lang="${lang}">`).replace('</head>', `${this.preload}</head>`));
    reply.header('Cache-Control', 'no-store').type(a.type);
    return sendBody({ ...a, body, gzip: null }, req, reply);
  }
}

function sendBody(a: Asset, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.header('Vary', 'Accept-Encoding');
  if (a.gzip && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) return reply.header('Content-Encoding', 'gzip').send(a.gzip);
  return reply.send(a.body);
}

/** Whether the first language the browser lists is Chinese (zh, zh-TW, zh-Hant, zh-HK...). */
export function prefersChinese(acceptLanguage: string | undefined): boolean {
  const first = (acceptLanguage ?? '').split(',')[0]?.trim().toLowerCase() ?? '';
  return first === 'zh' || first.startsWith('zh-');
}
