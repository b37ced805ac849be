import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

/**
 * Delivery status notifications (RFC 3464 in an RFC 6522 multipart/report): what the
 * sender gets back when the queue gives up on a recipient, or warns that it is late.
 * Pure functions apart from readHeaderBlock; the queue runner decides when to call them.
 */

export interface FailedRecipient {
  recipient: string;
  /** RFC 3463 enhanced status, e.g. '5.1.1'. */
  status: string;
  /** Full remote reply ('550 5.1.1 <x@y>: Recipient address rejected') or our own text. */
  diagnostic: string;
  /** Host name of the server that gave the reply, when known. */
  remoteMta?: string;
  action: 'failed' | 'delayed';
  lastAttempt?: Date;
}

export interface DsnOptions {
  /** Our host name: Reporting-MTA, the From domain and the Message-ID domain. */
  reportingMta: string;
  /** Envelope sender of the original message: the DSN goes there. */
  originalFrom: string;
  /** Our queue id of the original message. */
  originalId: string;
  arrivalDate: Date;
  /** Header block of the original (readHeaderBlock); may be empty. */
  originalHeaders: Buffer;
  recipients: FailedRecipient[];
  now: Date;
}

// RFC 5322 2.1.1: 998 octets is the hard limit, 78 the one to keep to where we can.
const MAX_LINE = 998;
const FOLD_AT = 78;
// Longest unbroken piece: with a field name and a space it still fits in MAX_LINE.
const MAX_WORD = 900;

/**
 * Builds the complete DSN message, CRLF line ends, no line over 998 octets, 7-bit only (so
 * it can go to any server without 8BITMIME). Send it with the null reverse-path (MAIL
 * FROM:<>) so that it can never be bounced itself. The Message-ID and MIME boundary are
 * derived from the input, so composing the same DSN again (a retry after a crash) gives
 * the same message, which receivers can recognise as a duplicate.
 */
export function composeDsn(opts: DsnOptions): Buffer {
  const host = headerSafe(opts.reportingMta);
  const failed = opts.recipients.filter((r) => r.action === 'failed');
  const delayed = opts.recipients.filter((r) => r.action === 'delayed');
  const subject = failed.length > 0 ? 'Undelivered Mail Returned to Sender' : 'Delayed Mail (still being retried)';
  const headersPart = rfc822HeadersPart(opts.originalHeaders);

  const digest = createHash('sha256')
    .update(
      JSON.stringify([
        host,
        opts.originalFrom,
        opts.originalId,
        opts.arrivalDate.getTime(),
        opts.now.getTime(),
        opts.recipients.map((r) => [r.recipient, r.status, r.diagnostic, r.remoteMta ?? '', r.action, r.lastAttempt?.getTime() ?? 0]),
      ]),
    )
    .update(opts.originalHeaders)
    .digest('hex');
  const idPart = opts.originalId.replace(/[^A-Za-z0-9._-]/g, '') || 'dsn';
  const messageId = `<${idPart}.${opts.now.getTime().toString(36)}.${digest.slice(0, 12)}@${host}>`;

  const text = base64Lines(Buffer.from(humanText(opts, host, failed, delayed, headersPart !== null), 'utf8'));
  const status = deliveryStatus(opts, host);
  // "=_" cannot occur in base64, so only a remote reply or the verbatim original headers
  // could contain the boundary (by accident or on purpose); the loop makes even that harmless.
  let boundary = `=_mlsd_${digest.slice(12, 36)}`;
  for (let n = 0; [text, status, headersPart?.body ?? ''].some((p) => p.includes(`--${boundary}`)); n++) boundary = `=_mlsd_${digest.slice(12, 36)}_${n}`;

  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${host}>`,
    fold('To', `<${headerSafe(opts.originalFrom)}>`),
    `Subject: ${subject}`,
    `Date: ${rfc5322Date(opts.now)}`,
    fold('Message-ID', messageId),
    // RFC 3834: marks it as automatic, so vacation responders and the like stay quiet.
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="${boundary}"`,
  ];

  const parts = [
    ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: base64', 'Content-Description: Notification', '', text].join('\r\n'),
    ['Content-Type: message/delivery-status', 'Content-Description: Delivery report', '', status].join('\r\n'),
  ];
  if (headersPart) {
    parts.push(
      [
        `Content-Type: text/rfc822-headers${headersPart.base64 ? '; charset=utf-8' : ''}`,
        ...(headersPart.base64 ? ['Content-Transfer-Encoding: base64'] : []),
        'Content-Description: Undelivered message headers',
        '',
        headersPart.body,
      ].join('\r\n'),
    );
  }

  // Each part body ends in CRLF and the delimiter brings its own leading CRLF (RFC 2046
  // 5.1.1), so the original headers come out byte for byte, their last CRLF included.
  const msg =
    head.join('\r\n') +
    '\r\n\r\nThis is a MIME-encapsulated delivery status notification.\r\n' +
    parts.map((p) => `\r\n--${boundary}\r\n${p}`).join('') +
    `\r\n--${boundary}--\r\n`;
  return Buffer.from(msg, 'latin1'); // all 7-bit by construction
}

/**
 * Whether a failure of this message may be reported to its sender. Never bounce a bounce:
 * a DSN comes from the null sender (RFC 5321 4.5.5) or, from misbehaving systems, from
 * MAILER-DAEMON or as a multipart/report delivery-status without the null sender; answering
 * any of these can ping-pong between two servers forever. Auto-Submitted is deliberately
 * NOT a reason to stay silent: RFC 3834 governs auto-responders, not DSNs, and a message
 * with a real reverse-path (our own alerts, list mail, notifications) asked for failures
 * to go there. The DSN we send goes out with the null sender, so the chain ends there
 * whatever the receiving side does.
 */
export function mayBounce(originalFrom: string, originalHeaders: Buffer): boolean {
  const from = originalFrom.trim().replace(/^<(.*)>$/, '$1').trim();
  if (from === '') return false;
  const at = from.lastIndexOf('@');
  if ((at >= 0 ? from.slice(0, at) : from).toLowerCase() === 'mailer-daemon') return false;
  for (const ct of headerFields(originalHeaders, 'content-type')) {
    const type = ct.split(';')[0]!.trim().toLowerCase();
    const report = /;\s*report-type\s*=\s*"?([^";\s]+)/i.exec(ct)?.[1]?.toLowerCase();
    // global-delivery-status is the SMTPUTF8 DSN of RFC 6533.
    if (type === 'multipart/report' && (report === 'delivery-status' || report === 'global-delivery-status')) return false;
  }
  return true;
}

/**
 * Reads the header block of a message file: everything before the first empty line, the
 * line end of the last field included, the empty line excluded. Reads in small pieces and
 * stops there, so a 50 MiB message costs one or two reads. A file with no empty line is
 * all header. Past maxBytes the block is cut after the last whole line within the limit.
 */
export async function readHeaderBlock(path: string, maxBytes = 64 * 1024): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    let buf = Buffer.alloc(0);
    // Two bytes beyond the limit, so an empty line right at the limit is still recognised.
    const cap = maxBytes + 2;
    while (buf.length < cap) {
      const piece = Buffer.alloc(Math.min(16 * 1024, cap - buf.length));
      const { bytesRead } = await fh.read(piece, 0, piece.length, buf.length);
      if (bytesRead === 0) return buf.subarray(0, Math.min(buf.length, maxBytes)); // EOF: all header
      buf = Buffer.concat([buf, piece.subarray(0, bytesRead)]);
      const end = headerBlockEnd(buf);
      if (end >= 0 && end <= maxBytes) return buf.subarray(0, end);
      if (end >= 0) break;
    }
    const within = buf.subarray(0, maxBytes);
    const lastLf = within.lastIndexOf(0x0a);
    return lastLf >= 0 ? within.subarray(0, lastLf + 1) : within;
  } finally {
    await fh.close();
  }
}

/** Length of the header block (up to and including the LF before the empty line), or -1. */
function headerBlockEnd(buf: Buffer): number {
  if (buf[0] === 0x0a || (buf[0] === 0x0d && buf[1] === 0x0a)) return 0;
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
    if (buf[i + 1] === 0x0a || (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a)) return i + 1;
  }
  return -1;
}

/** Unfolded values of every field with this name. */
function headerFields(block: Buffer, name: string): string[] {
  const prefix = name.toLowerCase() + ':';
  return block
    .toString('latin1')
    .replace(/\r?\n[ \t]+/g, ' ')
    .split(/\r?\n/)
    .filter((l) => l.toLowerCase().startsWith(prefix))
    .map((l) => l.slice(prefix.length).trim());
}

function rfc5322Date(d: Date): string {
  return d.toUTCString().replace('GMT', '+0000');
}

/** One line of printable ASCII: header injection and 8-bit text cannot get through. */
function headerSafe(s: string): string {
  return s.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').trim();
}

/**
 * Folds "Name: value" at spaces to 78 columns. A word too long for one line (a remote reply
 * can carry a long token) is cut into pieces on continuation lines; unfolding then shows a
 * space inside it, a small price for staying under the 998-octet limit.
 */
function fold(name: string, value: string): string {
  const lines: string[] = [];
  let line = `${name}:`;
  let bare = true; // no word on this line yet: never fold before the first
  for (let word of value.split(' ')) {
    if (word === '') continue;
    const pieces: string[] = [];
    for (; word.length > MAX_WORD; word = word.slice(MAX_WORD)) pieces.push(word.slice(0, MAX_WORD));
    pieces.push(word);
    for (const piece of pieces) {
      if (!bare && line.length + 1 + piece.length > FOLD_AT) {
        lines.push(line);
        line = '';
      }
      line += ` ${piece}`;
      bare = false;
    }
  }
  lines.push(line);
  return lines.join('\r\n');
}

function isSmtpReply(diagnostic: string): boolean {
  return /^[2-5]\d\d([ -]|$)/.test(diagnostic.trim());
}

function validStatus(status: string, action: FailedRecipient['action']): string {
  if (/^[245]\.\d{1,3}\.\d{1,3}$/.test(status.trim())) return status.trim();
  return action === 'failed' ? '5.0.0' : '4.0.0';
}

/**
 * Address for Final-Recipient: `rfc822; addr` for ASCII addresses, else the RFC 6533
 * `utf-8; ` form with \x{HEX} escapes, which keeps the delivery-status part 7-bit.
 */
function recipientField(addr: string): string {
  const a = addr.trim().replace(/^<(.*)>$/, '$1');
  if (/^[\x21-\x7e]*$/.test(a)) return `rfc822; ${a}`;
  let out = '';
  for (const ch of a) {
    const cp = ch.codePointAt(0)!;
    const qchar = cp >= 0x21 && cp <= 0x7e && ch !== '+' && ch !== '=' && ch !== '\\';
    out += qchar ? ch : `\\x{${cp.toString(16).toUpperCase()}}`;
  }
  return `utf-8; ${out}`;
}

function deliveryStatus(opts: DsnOptions, host: string): string {
  const blocks: string[][] = [[`Reporting-MTA: dns; ${host}`, `Arrival-Date: ${rfc5322Date(opts.arrivalDate)}`]];
  for (const r of opts.recipients) {
    const diag = headerSafe(r.diagnostic.replace(/\s+/g, ' '));
    const b = [fold('Final-Recipient', recipientField(r.recipient)), `Action: ${r.action}`, `Status: ${validStatus(r.status, r.action)}`];
    if (r.remoteMta) b.push(fold('Remote-MTA', `dns; ${headerSafe(r.remoteMta)}`));
    // X-mlsd marks our own explanations (no route, timed out...), as Postfix uses X-Postfix.
    if (diag) b.push(fold('Diagnostic-Code', `${isSmtpReply(diag) ? 'smtp' : 'X-mlsd'}; ${diag}`));
    if (r.lastAttempt) b.push(`Last-Attempt-Date: ${rfc5322Date(r.lastAttempt)}`);
    blocks.push(b);
  }
  return blocks.map((b) => b.join('\r\n') + '\r\n').join('\r\n');
}

function humanText(opts: DsnOptions, host: string, failed: FailedRecipient[], delayed: FailedRecipient[], withHeaders: boolean): string {
  const arrival = rfc5322Date(opts.arrivalDate);
  const list = (rs: FailedRecipient[], said: (mta?: string) => string) =>
    rs.flatMap((r) => {
      const diag = r.diagnostic.replace(/\s+/g, ' ').trim();
      const reply = isSmtpReply(diag) ? `${said(r.remoteMta)}${diag}` : diag;
      return [`  <${r.recipient}>`, ...(reply ? [`      ${reply}`] : [])];
    });
  const en: string[] = [`This is the mail system at ${host}.`, ''];
  const zh: string[] = [`這是 ${host} 郵件系統自動發出的通知。`, ''];
  const saidEn = (mta?: string) => (mta ? `${mta} said: ` : 'the receiving server said: ');
  const saidZh = (mta?: string) => (mta ? `對方伺服器 ${mta} 回覆：` : '對方伺服器回覆：');
  if (failed.length) {
    en.push('Your message could not be delivered to the following recipients:', '', ...list(failed, saidEn), '');
    zh.push('很抱歉，您的郵件無法送達下列收件人：', '', ...list(failed, saidZh), '');
  }
  if (delayed.length) {
    en.push('Your message has not been delivered yet to the following recipients.', 'The mail system will keep trying; you do not need to send it again:', '', ...list(delayed, saidEn), '');
    zh.push('您的郵件暫時無法送達下列收件人。系統會繼續重試，您不需要重新寄送：', '', ...list(delayed, saidZh), '');
  }
  en.push(`Message ${opts.originalId}, received ${arrival}.${withHeaders ? ' Its headers are attached.' : ''}`);
  zh.push(`原始郵件編號 ${opts.originalId}，收件時間 ${arrival}。${withHeaders ? '原始郵件的標頭附於本通知之後。' : ''}`);
  return [...en, '', '-----', '', ...zh, ''].join('\r\n');
}

function base64Lines(buf: Buffer): string {
  return (buf.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n') + '\r\n';
}

/**
 * The original header block for the text/rfc822-headers part: CRLF line ends, ending in
 * CRLF, no empty line. Kept verbatim when it is plain 7-bit with short lines (the usual
 * case, readable as is); otherwise base64, which carries raw UTF-8 (RFC 6532) headers or an
 * over-long line unchanged while keeping the DSN 7-bit and within line limits.
 */
function rfc822HeadersPart(original: Buffer): { body: string; base64: boolean } | null {
  let s = original.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  s = s.replace(/(\r\n)+$/, '');
  if (s.trim() === '') return null;
  s += '\r\n';
  const plain = !/[^\x01-\x7f]/.test(s) && s.split('\r\n').every((l) => l.length <= MAX_LINE);
  if (plain) return { body: s, base64: false };
  return { body: base64Lines(Buffer.from(s, 'latin1')), base64: true };
}
