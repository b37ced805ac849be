import { simpleParser, type AddressObject } from 'mailparser';
import type { AttachmentInfo } from './types.js';

/** What the archive pulls out of a message for its rules, its index and its snippets. */
export interface Extracted {
  subject: string;
  headerFrom: string[];
  headerTo: string[];
  date: string | null;
  messageId: string | null;
  body: string;
  attachments: AttachmentInfo[];
  /** Text of text/plain and text/html attachments (cheap to read), capped. */
  attachmentText: string;
}

const ATTACHMENT_TEXT_MAX = 256 * 1024;
const BODY_TEXT_MAX = 1024 * 1024;

function addresses(a: AddressObject | AddressObject[] | undefined): string[] {
  const list = a === undefined ? [] : Array.isArray(a) ? a : [a];
  return list.flatMap((o) => o.value.flatMap((v) => [v.address, ...(v.group ?? []).map((g) => g.address)])).filter((x): x is string => !!x).map((x) => x.toLowerCase());
}

/** Tags out, entities of the common kind decoded: enough to index an HTML attachment's words. */
function htmlText(html: string): string {
  return html
    .replace(/<(script|style)[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&nbsp;/gi, ' ')
    .replace(/&lt;/gi, '<')
    .replace(/&gt;/gi, '>')
    .replace(/&quot;/gi, '"')
    .replace(/&#(\d+);/g, (_, n: string) => safeChar(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n: string) => safeChar(parseInt(n, 16)))
    .replace(/&amp;/gi, '&');
}

function safeChar(code: number): string {
  return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : ' ';
}

function decodeText(content: Buffer, charset: string | undefined): string {
  try {
    return new TextDecoder(charset ?? 'utf-8').decode(content);
  } catch {
    return content.toString('utf8');
  }
}

/**
 * Parses a message (mailparser). A message that does not parse is still archived: its
 * text is then what the bytes read as, so nothing the box accepted is refused here.
 */
export async function extract(bytes: Buffer): Promise<Extracted> {
  try {
    const m = await simpleParser(bytes, { skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true, maxHtmlLengthToParse: BODY_TEXT_MAX });
    const attachments: AttachmentInfo[] = [];
    let attachmentText = '';
    for (const a of m.attachments) {
      const name = a.filename ?? '';
      attachments.push({ name, size: a.size, contentType: a.contentType });
      if (attachmentText.length >= ATTACHMENT_TEXT_MAX) continue;
      if (a.contentType === 'text/plain' || a.contentType === 'text/html') {
        const ct = a.headers.get('content-type') as { params?: { charset?: string } } | undefined;
        const raw = decodeText(a.content, ct?.params?.charset || undefined);
        attachmentText += `${a.contentType === 'text/html' ? htmlText(raw) : raw}\n`.slice(0, ATTACHMENT_TEXT_MAX - attachmentText.length);
      }
    }
    return {
      subject: m.subject ?? '',
      headerFrom: addresses(m.from),
      headerTo: [...addresses(m.to), ...addresses(m.cc)],
      date: m.date && !Number.isNaN(m.date.getTime()) ? m.date.toISOString() : null,
      messageId: m.messageId ?? null,
      body: (m.text ?? (typeof m.html === 'string' ? htmlText(m.html) : '')).slice(0, BODY_TEXT_MAX),
      attachments,
      attachmentText,
    };
  } catch {
    return { subject: '', headerFrom: [], headerTo: [], date: null, messageId: null, body: bytes.subarray(0, BODY_TEXT_MAX).toString('utf8'), attachments: [], attachmentText: '' };
  }
}

/**
 * Splits off our own Received line (the first header field, naming this message's id):
 * the archive keeps the bytes as the client sent them, so a message sent twice is stored
 * once, and puts the line back in front on export.
 */
export function splitTrace(bytes: Buffer, id: string): { trace: string; content: Buffer } {
  const head = bytes.subarray(0, Math.min(bytes.length, 2048)).toString('latin1');
  if (!head.startsWith('Received: ')) return { trace: '', content: bytes };
  // The field ends at the first line break not followed by folding white space.
  const m = /\r?\n(?![ \t])/.exec(head);
  if (!m) return { trace: '', content: bytes };
  const field = head.slice(0, m.index + m[0].length);
  if (!field.includes('(mlsd) with') || !field.includes(` id ${id}`)) return { trace: '', content: bytes };
  return { trace: field, content: bytes.subarray(field.length) };
}
