// RFC 2047 encoded words (=?UTF-8?B?...?=, =?Big5?Q?...?=) as the quarantine keeps a Subject
// header raw: decoded here for display only (the result is still set with textContent). A word
// whose charset the browser does not know, or that is malformed, is left as it came.
const WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g;

function bytesOf(encoding: string, text: string): Uint8Array | null {
  if (encoding.toUpperCase() === 'B') {
    try {
      return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    } catch {
      return null;
    }
  }
  // Q: "_" is a space, =XX a byte, the rest ASCII.
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '_') out.push(0x20);
    else if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(c.charCodeAt(0) & 0xff);
  }
  return Uint8Array.from(out);
}

function decodeWord(charset: string, encoding: string, text: string): string | null {
  const bytes = bytesOf(encoding, text);
  if (!bytes) return null;
  try {
    // "UTF-8*zh-TW": RFC 2231 language suffix.
    return new TextDecoder(charset.replace(/\*.*$/, '')).decode(bytes);
  } catch {
    return null;
  }
}

/** A header value with its encoded words decoded; whitespace between two encoded words dropped (RFC 2047 §6.2). */
export function decodeMimeWords(value: string): string {
  return value
    .replace(/(=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=)\s+(?==\?[^?\s]+\?[BbQq]\?[^?\s]*\?=)/g, '$1')
    .replace(WORD, (whole, charset: string, enc: string, text: string) => decodeWord(charset, enc, text) ?? whole);
}
