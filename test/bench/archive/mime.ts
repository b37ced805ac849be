/** The MIME encodings the corpus's messages use, written out by hand (so the bytes are exactly known). */

export type TransferEncoding = '7bit' | '8bit' | 'quoted-printable' | 'base64';

const CRLF = '\r\n';

/** Base64 in lines of 76 characters. */
export function base64Lines(data: Buffer): string {
  const b = data.toString('base64');
  const out: string[] = [];
  for (let i = 0; i < b.length; i += 76) out.push(b.slice(i, i + 76));
  return out.join(CRLF);
}

const HEX = '0123456789ABCDEF';

/** Quoted-printable (RFC 2045 6.7): lines of at most 76 characters, soft breaks as "=". */
export function quotedPrintable(text: string): string {
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const bytes = Buffer.from(line, 'utf8');
    let cur = '';
    for (let i = 0; i < bytes.length; i++) {
      const c = bytes[i]!;
      const last = i === bytes.length - 1;
      const plain = (c >= 33 && c <= 126 && c !== 61) || (c === 32 && !last) || (c === 9 && !last);
      const piece = plain ? String.fromCharCode(c) : `=${HEX[c >> 4]}${HEX[c & 15]}`;
      if (cur.length + piece.length > 75) {
        out.push(`${cur}=`);
        cur = '';
      }
      cur += piece;
    }
    out.push(cur);
  }
  return out.join(CRLF);
}

/** A body in the given transfer encoding; 7bit/8bit text is sent with CRLF line ends as is. */
export function encodeBody(text: string, enc: TransferEncoding): string {
  if (enc === 'base64') return base64Lines(Buffer.from(text, 'utf8'));
  if (enc === 'quoted-printable') return quotedPrintable(text);
  return text.replace(/\r?\n/g, CRLF);
}

const ASCII = /^[\x20-\x7e]*$/;

/** An RFC 2047 encoded word (B) for a header value that is not ASCII, in pieces of 45 bytes. */
export function encodedWord(s: string): string {
  if (ASCII.test(s)) return s;
  const words: string[] = [];
  let piece = '';
  for (const ch of s) {
    if (Buffer.byteLength(piece + ch) > 45) {
      words.push(`=?UTF-8?B?${Buffer.from(piece).toString('base64')}?=`);
      piece = '';
    }
    piece += ch;
  }
  if (piece) words.push(`=?UTF-8?B?${Buffer.from(piece).toString('base64')}?=`);
  return words.join(`${CRLF} `);
}

/** A display name and address as a header shows them. */
export function mailbox(name: string, address: string): string {
  return `${ASCII.test(name) ? `"${name}"` : encodedWord(name)} <${address}>`;
}

/** Content-Type name= (RFC 2047, as Outlook writes it) and Content-Disposition filename*= (RFC 2231). */
export function attachmentHeaders(contentType: string, name: string, enc: TransferEncoding): string {
  if (ASCII.test(name)) return `Content-Type: ${contentType}; name="${name}"${CRLF}Content-Disposition: attachment; filename="${name}"${CRLF}Content-Transfer-Encoding: ${enc}`;
  const pct = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `Content-Type: ${contentType}; name="${encodedWord(name)}"${CRLF}Content-Disposition: attachment;${CRLF} filename*=UTF-8''${pct}${CRLF}Content-Transfer-Encoding: ${enc}`;
}

/** RFC 5322 date in Taiwan time. */
export function rfc5322Date(ms: number): string {
  const d = new Date(ms + 8 * 3600 * 1000);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0800`;
}
