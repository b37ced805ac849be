import { simpleParser, type AddressObject, type Attachment, type ParsedMail } from 'mailparser';
import { inertDocument, inertHtml, plainTextHtml, viewCsp, type InlineImage } from './inert-html.js';

/**
 * How the web admin shows a mail message from the quarantine or the archive: the headers as
 * plain strings (the front end sets them with textContent), the body as an inert HTML
 * document for a sandboxed frame, and the attachments as a list to download — never to render.
 * Pure: no HTTP here; the admin routes serve what this returns.
 */

export interface AttachmentEntry {
  /** Position in the message, the only thing the download route takes from the URL. */
  index: number;
  filename: string;
  contentType: string;
  size: number;
}

export interface MessageView {
  subject: string;
  from: string;
  to: string;
  cc: string;
  /** ISO 8601, or '' when the message has no readable date. */
  date: string;
  messageId: string;
  bodyDocument: string;
  remoteImagesBlocked: number;
  /** The body was longer than the view shows; the .eml download has all of it. */
  bodyTruncated: boolean;
  attachments: AttachmentEntry[];
}

export interface AttachmentContent {
  filename: string;
  contentType: string;
  content: Buffer;
}

export { viewCsp };

/** HTML beyond this is cut before sanitising: a view, not an archive, and it keeps the admin fast. */
const BODY_VIEW_MAX = 1024 * 1024;
const FILENAME_MAX = 200;
const HEADER_MAX = 4096;

/*
 * Never parse the body into text (we sanitise the HTML itself) and never let mailparser
 * rewrite cid: links into data: URIs of whatever type the part claims: the sanitiser does
 * that, for raster types only.
 */
const PARSE_OPTIONS = { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true, keepCidLinks: true } as const;

/** C0/C1 controls and the bidi controls that make "\u202egnp.exe" read as "exe.png". */
const CONTROL_OR_BIDI = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function headerText(s: string | undefined): string {
  return (s ?? '').replace(CONTROL_OR_BIDI, (c) => (c === '\t' ? ' ' : '')).slice(0, HEADER_MAX);
}

function addressText(a: AddressObject | AddressObject[] | undefined): string {
  const list = a === undefined ? [] : Array.isArray(a) ? a : [a];
  return headerText(list.map((o) => o.text).join(', '));
}

/**
 * A name that is safe as a download's filename on any OS the admin may use: no path
 * separators or Windows-reserved characters, no controls or bidi tricks, no leading dot
 * (hidden file, `..`), no trailing dot/space, at most 200 characters with the extension kept.
 * `n` is what a nameless attachment is called: attachment-n.
 */
export function safeFilename(name: string | undefined, n: number): string {
  let s = (name ?? '').normalize('NFC').replace(CONTROL_OR_BIDI, '');
  s = s.replace(/[/\\:*?"<>|]/g, '_').trim();
  s = s.replace(/^[.\s]+/, '').replace(/[.\s]+$/, '');
  const chars = [...s];
  if (chars.length > FILENAME_MAX) {
    const dot = s.lastIndexOf('.');
    const ext = dot > 0 ? [...s.slice(dot)] : [];
    const keepExt = ext.length > 0 && ext.length <= 16 ? ext : [];
    s = chars.slice(0, FILENAME_MAX - keepExt.length).join('') + keepExt.join('');
  }
  // CON, NUL, COM1… open a device on Windows whatever their extension
  if (/^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/i.test(s)) s = `_${s}`;
  return s === '' || /^_*$/.test(s) ? `attachment-${n}` : s;
}

/**
 * A Content-Disposition value forcing a download: an ASCII-only `filename` for old clients
 * and the real name as RFC 5987 `filename*` (UTF-8, %-encoded), so a Chinese name survives
 * and nothing in it can close the quote or start a header.
 */
export function contentDisposition(filename: string): string {
  const name = safeFilename(filename, 1);
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\%]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

function safeContentType(ct: string | undefined): string {
  const t = (ct ?? '').toLowerCase().trim();
  return /^[a-z0-9!#$&^_.+-]{1,64}\/[a-z0-9!#$&^_.+-]{1,64}$/.test(t) ? t : 'application/octet-stream';
}

function entries(attachments: Attachment[]): AttachmentEntry[] {
  return attachments.map((a, index) => ({ index, filename: safeFilename(a.filename, index + 1), contentType: safeContentType(a.contentType), size: a.content.length }));
}

function inlineImages(attachments: Attachment[]): (cid: string) => InlineImage | undefined {
  const byCid = new Map<string, InlineImage>();
  for (const a of attachments) if (a.cid && !byCid.has(a.cid)) byCid.set(a.cid, { contentType: safeContentType(a.contentType), content: a.content });
  return (cid) => byCid.get(cid);
}

function body(m: ParsedMail, remoteImages: boolean): { html: string; remoteImagesBlocked: number; truncated: boolean } {
  const source = typeof m.html === 'string' && m.html.trim() !== '' ? { html: m.html } : { text: m.text ?? '' };
  const full = source.html ?? source.text ?? '';
  const truncated = full.length > BODY_VIEW_MAX;
  const shown = truncated ? full.slice(0, BODY_VIEW_MAX) : full;
  if (source.html === undefined) return { html: plainTextHtml(shown), remoteImagesBlocked: 0, truncated };
  const clean = inertHtml(shown, { remoteImages, inlineImage: inlineImages(m.attachments) });
  return { html: clean.html, remoteImagesBlocked: clean.remoteImagesBlocked, truncated: truncated || clean.cut };
}

async function parse(raw: Buffer): Promise<ParsedMail | null> {
  try {
    return await simpleParser(raw, PARSE_OPTIONS);
  } catch {
    return null;
  }
}

/**
 * The view of a message. One that mailparser cannot read at all is shown as its raw bytes,
 * as text: the admin still sees what arrived.
 */
export async function parseForView(raw: Buffer, opts: { remoteImages: boolean }): Promise<MessageView> {
  const m = await parse(raw);
  if (m === null) {
    const text = raw.subarray(0, BODY_VIEW_MAX).toString('utf8');
    return {
      subject: '', from: '', to: '', cc: '', date: '', messageId: '',
      bodyDocument: inertDocument(plainTextHtml(text), opts.remoteImages),
      remoteImagesBlocked: 0,
      bodyTruncated: raw.length > BODY_VIEW_MAX,
      attachments: [],
    };
  }
  const b = body(m, opts.remoteImages);
  return {
    subject: headerText(m.subject),
    from: addressText(m.from),
    to: addressText(m.to),
    cc: addressText(m.cc),
    date: m.date && !Number.isNaN(m.date.getTime()) ? m.date.toISOString() : '',
    messageId: headerText(m.messageId),
    bodyDocument: inertDocument(b.html, opts.remoteImages),
    remoteImagesBlocked: b.remoteImagesBlocked,
    bodyTruncated: b.truncated,
    attachments: entries(m.attachments),
  };
}

/**
 * The index the download route got from its URL: a plain non-negative decimal integer
 * (a string such as '', ' 1', '1e0' or '0x1' is not one), else null.
 */
function attachmentIndex(index: number | string): number | null {
  if (typeof index === 'string') return /^(0|[1-9]\d{0,5})$/.test(index) ? Number(index) : null;
  return Number.isSafeInteger(index) && index >= 0 ? index : null;
}

/** One attachment's bytes for a download, or null when the index names none. */
export async function attachmentOf(raw: Buffer, index: number | string): Promise<AttachmentContent | null> {
  const i = attachmentIndex(index);
  if (i === null) return null;
  const m = await parse(raw);
  const a = m?.attachments[i];
  if (a === undefined) return null;
  return { filename: safeFilename(a.filename, i + 1), contentType: safeContentType(a.contentType), content: a.content };
}
