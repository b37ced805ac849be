import sanitizeHtml from 'sanitize-html';

/**
 * Turns a mail message's HTML into markup that can neither run anything nor fetch anything
 * on its own: an allowlist of formatting tags and attributes, links only to http/https/mailto,
 * inline styles only from a value grammar without url()/escapes, and images only as data:
 * URIs of raster types — remote ones only when the admin asked for them. The browser-side
 * defences (sandboxed frame, CSP) stay on top of this; this is the layer that does not depend
 * on the browser getting them right.
 */

/** An image part of the message itself, which a `cid:` reference may show inline. */
export interface InlineImage {
  contentType: string;
  content: Buffer;
}

export interface InertOptions {
  remoteImages: boolean;
  /** The message's own image for a Content-ID (without the angle brackets), if it has one. */
  inlineImage: (cid: string) => InlineImage | undefined;
}

export interface InertBody {
  html: string;
  remoteImagesBlocked: number;
  /** Cut where its elements nested deeper than a page can show (see cutAtNestingDepth). */
  cut: boolean;
}

const FORMATTING_TAGS = [
  'a', 'abbr', 'address', 'article', 'aside', 'b', 'bdi', 'blockquote', 'br', 'caption', 'center', 'cite', 'code', 'col', 'colgroup',
  'dd', 'del', 'details', 'dfn', 'div', 'dl', 'dt', 'em', 'figcaption', 'figure', 'font', 'footer', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
  'header', 'hr', 'i', 'img', 'ins', 'kbd', 'li', 'main', 'mark', 'ol', 'p', 'pre', 'q', 's', 'samp', 'section', 'small', 'span',
  'strike', 'strong', 'sub', 'summary', 'sup', 'table', 'tbody', 'td', 'tfoot', 'th', 'thead', 'time', 'tr', 'tt', 'u', 'ul', 'var', 'wbr',
];

const LAYOUT_ATTRIBUTES = ['style', 'title', 'dir', 'lang', 'align', 'valign', 'width', 'height', 'bgcolor', 'border'];

/*
 * A CSS value may hold words, numbers, units, colours, quoted font names and the colour
 * functions — nothing else. No `(` outside rgb()/hsl() means no url(), image-set(),
 * expression() or var(); no backslash means no escape that spells one of them.
 */
const SAFE_CSS_VALUE = /^(?=[^]{0,300}$)(?:[#\w\s.,%!'"+-]|(?:rgba?|hsla?)\([\d\s.,%/+-]*\))*$/i;
const STYLED_PROPERTIES = [
  'color', 'background-color', 'font', 'font-family', 'font-size', 'font-style', 'font-weight', 'font-variant', 'line-height',
  'letter-spacing', 'word-spacing', 'text-align', 'text-decoration', 'text-indent', 'text-transform', 'vertical-align', 'white-space',
  'direction', 'margin', 'margin-top', 'margin-right', 'margin-bottom', 'margin-left', 'padding', 'padding-top', 'padding-right',
  'padding-bottom', 'padding-left', 'border', 'border-top', 'border-right', 'border-bottom', 'border-left', 'border-color',
  'border-style', 'border-width', 'border-collapse', 'border-spacing', 'border-radius', 'width', 'max-width', 'min-width', 'height',
  'max-height', 'min-height', 'display', 'float', 'clear', 'list-style-type', 'table-layout', 'overflow', 'word-break', 'overflow-wrap',
];
const ALLOWED_STYLES = { '*': Object.fromEntries(STYLED_PROPERTIES.map((p) => [p, [SAFE_CSS_VALUE]])) };

/** Inline images only in raster formats a browser decodes without a script engine. */
const RASTER_IMAGE = /^image\/(png|gif|jpeg|webp)$/i;
const RASTER_DATA_URI = /^data:image\/(png|gif|jpeg|webp)(;[a-z0-9=._+-]*)*,/i;
/** A cid: image bigger than this stays out of the page (the part is still downloadable). */
const INLINE_IMAGE_MAX = 5 * 1024 * 1024;

/** What a browser does to a URL attribute before looking at it: tabs/newlines out, edges trimmed. */
function urlAsBrowserReadsIt(value: string): string {
  return value.replace(/[\t\n\r]/g, '').replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '');
}

/**
 * An absolute http(s) URL, canonicalised by the same WHATWG parser the browser uses, or null.
 * A scheme-relative `//host/x` (or `/\host`) counts as remote: in the frame it would resolve
 * against the admin's own origin scheme.
 */
function webUrl(value: string): string | null {
  const v = urlAsBrowserReadsIt(value);
  const absolute = /^[/\\]{2}/.test(v) ? `https:${v}` : v;
  if (!/^https?:/i.test(absolute)) return null;
  try {
    const u = new URL(absolute);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

function cidImage(value: string, opts: InertOptions): string | null {
  const ref = urlAsBrowserReadsIt(value).slice('cid:'.length);
  let decoded = ref;
  try {
    decoded = decodeURIComponent(ref);
  } catch {
    // a malformed %-escape: look the reference up as written
  }
  const image = opts.inlineImage(decoded) ?? opts.inlineImage(ref);
  if (!image || !RASTER_IMAGE.test(image.contentType) || image.content.length > INLINE_IMAGE_MAX) return null;
  return `data:${image.contentType.toLowerCase()};base64,${image.content.toString('base64')}`;
}

const VOID_TAGS = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'keygen', 'link', 'meta', 'param', 'source', 'track', 'wbr']);
/** Tags that a second one of their kind closes, as the HTML parser does: `<p>a<p>b` is not nesting. */
const SELF_CLOSING_SIBLINGS = new Set(['p', 'li', 'td', 'th', 'tr', 'option', 'dt', 'dd']);
const NESTING_MAX = 1000;

/**
 * The HTML parser under sanitize-html spends time quadratic in the nesting depth (its stack
 * is an array it unshifts), so 1 MB of `<div>x` takes many seconds: a message could stall
 * the admin. This cheap scan follows the open elements (over-counting, never under: it does
 * not know every implied end tag) and cuts the HTML where they nest deeper than any page
 * needs — Chromium itself stops nesting at 512.
 */
export function cutAtNestingDepth(html: string, max = NESTING_MAX): { html: string; cut: boolean } {
  const stack: string[] = [];
  const open = new Map<string, number>();
  const tag = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)[^>]*>/g;
  for (let m = tag.exec(html); m !== null; m = tag.exec(html)) {
    const name = m[2]!.toLowerCase();
    if (m[1] === '/') {
      if (!open.get(name)) continue;
      for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
        open.set(top, open.get(top)! - 1);
        if (top === name) break;
      }
      continue;
    }
    if (VOID_TAGS.has(name)) continue;
    if (SELF_CLOSING_SIBLINGS.has(name) && stack[stack.length - 1] === name) continue;
    stack.push(name);
    open.set(name, (open.get(name) ?? 0) + 1);
    if (stack.length > max) return { html: html.slice(0, m.index), cut: true };
  }
  return { html, cut: false };
}

export function inertHtml(input: string, opts: InertOptions): InertBody {
  let remoteImagesBlocked = 0;
  const { html, cut } = cutAtNestingDepth(input);

  const link: sanitizeHtml.Transformer = (tagName, attribs) => {
    const out: sanitizeHtml.Attributes = { rel: 'noopener noreferrer', target: '_blank' };
    if (attribs.title !== undefined) out.title = attribs.title;
    const href = attribs.href === undefined ? '' : urlAsBrowserReadsIt(attribs.href);
    // Relative links are dropped too: in the frame they would resolve against the admin itself
    const url = /^mailto:/i.test(href) ? href : webUrl(href);
    if (url !== null && href !== '') out.href = url;
    return { tagName, attribs: out };
  };

  const image: sanitizeHtml.Transformer = (tagName, attribs) => {
    const { src, srcset: _srcset, ...rest } = attribs;
    const keep: sanitizeHtml.Attributes = {};
    for (const a of ['alt', 'title', 'width', 'height', 'style', 'border', 'align']) if (rest[a] !== undefined) keep[a] = rest[a];
    const raw = src === undefined ? '' : urlAsBrowserReadsIt(src);
    if (/^cid:/i.test(raw)) {
      const inline = cidImage(raw, opts);
      if (inline !== null) return { tagName, attribs: { ...keep, src: inline } };
      return { tagName, attribs: { ...keep, alt: keep.alt || '[image]' } };
    }
    if (RASTER_DATA_URI.test(raw)) return { tagName, attribs: { ...keep, src: raw } };
    const remote = webUrl(raw);
    if (remote !== null) {
      if (opts.remoteImages) return { tagName, attribs: { ...keep, src: remote } };
      remoteImagesBlocked++;
      // Kept as an <img> without a source: the browser shows the alt text where the picture was
      return { tagName, attribs: { alt: '[remote image blocked]', title: keep.alt ?? '', ...(keep.width ? { width: keep.width } : {}), ...(keep.height ? { height: keep.height } : {}) } };
    }
    return { tagName, attribs: keep };
  };

  const clean = sanitizeHtml(html, {
    allowedTags: FORMATTING_TAGS,
    allowedAttributes: {
      '*': LAYOUT_ATTRIBUTES,
      a: ['href', 'rel', 'target'],
      img: ['src', 'alt'],
      font: ['color', 'face', 'size'],
      table: ['cellpadding', 'cellspacing'],
      td: ['colspan', 'rowspan', 'nowrap'],
      th: ['colspan', 'rowspan', 'nowrap'],
      ol: ['start', 'type'],
      details: ['open'],
    },
    allowedStyles: ALLOWED_STYLES,
    allowedSchemes: ['http', 'https', 'mailto'],
    allowedSchemesByTag: { img: opts.remoteImages ? ['data', 'http', 'https'] : ['data'] },
    allowedSchemesAppliedToAttributes: ['href', 'src', 'cite'],
    allowProtocolRelative: false,
    // The text inside these is code or another document, not the message's words
    nonTextTags: ['script', 'style', 'textarea', 'option', 'noscript', 'title', 'template', 'xmp', 'noembed', 'noframes', 'iframe'],
    transformTags: { a: link, img: image },
    disallowedTagsMode: 'discard',
  });
  return { html: clean, remoteImagesBlocked, cut };
}

/** A text/plain body as HTML: escaped, in a <pre>; links are left as text. */
export function plainTextHtml(text: string): string {
  const escaped = text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<pre class="plain">${escaped}</pre>`;
}

/**
 * The policy the view document is served under. img-src opens to the web only when the admin
 * asked for remote images; `base-uri`/`form-action` are not covered by default-src, so they
 * are closed by name.
 */
export function viewCsp(remoteImages: boolean): string {
  const img = remoteImages ? "img-src data: https: http:" : 'img-src data:';
  return `default-src 'none'; ${img}; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'`;
}

const DOCUMENT_STYLE =
  'body{margin:0;padding:12px;font:14px/1.5 system-ui,"Noto Sans CJK TC",sans-serif;color:#111;background:#fff;overflow-wrap:anywhere}' +
  'pre.plain{white-space:pre-wrap;font:13px/1.45 ui-monospace,"Noto Sans Mono CJK TC",monospace;margin:0}' +
  'img{max-width:100%;height:auto}img:not([src]){display:inline-block;border:1px dashed #999;padding:2px 4px;color:#666;font-size:12px}img:not([src]):not([alt]){display:none}';

/** A complete document for the sandboxed frame's srcdoc, carrying its own CSP and referrer policy. */
export function inertDocument(bodyHtml: string, remoteImages: boolean): string {
  return (
    '<!DOCTYPE html><html><head><meta charset="utf-8">' +
    `<meta http-equiv="Content-Security-Policy" content="${viewCsp(remoteImages)}">` +
    '<meta name="referrer" content="no-referrer">' +
    `<style>${DOCUMENT_STYLE}</style></head><body>${bodyHtml}</body></html>`
  );
}
