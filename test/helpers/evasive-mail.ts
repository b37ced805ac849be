import fc from 'fast-check';
import yazl from 'yazl';

/**
 * Messages that carry a test virus or a program in the forms a scanner bypass uses: the
 * obsolete header syntax of RFC 5322 §4 (space or tab before the colon, folded names and
 * values, odd case, a repeated Content-Type), LF or CRLF line ends, unquoted boundaries, and
 * the payload nested in multiparts, forwarded messages (in quoted-printable or base64) and zips.
 * Shared by the property test of the built-in layer and the SMTP test of the whole path.
 */

// Put together at run time, so that this file is not itself taken for a test virus.
export const EICAR = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$' + 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');

/** The smallest thing Windows' loader would take for a program: MZ, e_lfanew, PE\0\0. */
export function fakePe(): Buffer {
  const b = Buffer.alloc(0x100);
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  b.writeUInt16LE(0x14c, 0x84);
  return b;
}

export type PayloadKind = 'eicar' | 'exe';

export interface HeaderForm {
  /** 0 as written, 1 lower, 2 upper, 3 alternating. */
  nameCase: 0 | 1 | 2 | 3;
  /** Between the name and the colon (obs-optional). */
  beforeColon: '' | ' ' | '\t' | ' \t ';
  /** A fold right after the colon, or none. */
  fold: 'none' | 'value' | 'beforeColon';
}

export type Wrap =
  | { kind: 'attach'; encoding: 'base64' | 'quoted-printable'; form: HeaderForm }
  | { kind: 'multipart'; subtype: 'mixed' | 'alternative' | 'related'; form: HeaderForm; quoteBoundary: boolean; inner: Wrap }
  | { kind: 'rfc822'; encoding: '7bit' | 'quoted-printable' | 'base64'; form: HeaderForm; inner: Wrap }
  | { kind: 'zip'; form: HeaderForm }
  /** A plain-text part with the file uuencoded in it (Outlook and Thunderbird show it as an attachment). */
  | { kind: 'uuencode'; form: HeaderForm }
  | { kind: 'single'; form: HeaderForm };

export interface EvasiveMail {
  payload: PayloadKind;
  /** The message itself: its top-level structure is a multipart unless `wrap` is 'single'. */
  wrap: Wrap;
  eol: '\r\n' | '\n';
  /** A `Content-Type: text/plain` before the real one (mailparser reads the first, some programs the last). */
  decoyType: boolean;
  topForm: HeaderForm;
  quoteBoundary: boolean;
}

const formArb: fc.Arbitrary<HeaderForm> = fc.record({
  nameCase: fc.constantFrom(0, 1, 2, 3),
  beforeColon: fc.constantFrom('', ' ', '\t', ' \t '),
  fold: fc.constantFrom('none', 'value', 'beforeColon'),
});

const wrapArb: fc.Arbitrary<Wrap> = fc.letrec<{ wrap: Wrap }>((tie) => ({
  wrap: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ kind: fc.constant('attach' as const), encoding: fc.constantFrom('base64' as const, 'quoted-printable' as const), form: formArb }),
    fc.record({ kind: fc.constant('zip' as const), form: formArb }),
    fc.record({ kind: fc.constant('uuencode' as const), form: formArb }),
    fc.record({ kind: fc.constant('multipart' as const), subtype: fc.constantFrom('mixed' as const, 'alternative' as const, 'related' as const), form: formArb, quoteBoundary: fc.boolean(), inner: tie('wrap') }),
    fc.record({ kind: fc.constant('rfc822' as const), encoding: fc.constantFrom('7bit' as const, 'quoted-printable' as const, 'base64' as const), form: formArb, inner: tie('wrap') }),
  ),
})).wrap;

export const evasiveMailArb: fc.Arbitrary<EvasiveMail> = fc.record({
  payload: fc.constantFrom('eicar' as const, 'exe' as const),
  wrap: fc.oneof(wrapArb, fc.record({ kind: fc.constant('single' as const), form: formArb })),
  eol: fc.constantFrom('\r\n' as const, '\n' as const),
  decoyType: fc.boolean(),
  topForm: formArb,
  quoteBoundary: fc.boolean(),
});

function cased(name: string, c: HeaderForm['nameCase']): string {
  if (c === 1) return name.toLowerCase();
  if (c === 2) return name.toUpperCase();
  if (c === 3) return [...name].map((ch, i) => (i % 2 ? ch.toLowerCase() : ch.toUpperCase())).join('');
  return name;
}

/** One header in the given obsolete form. */
export function header(name: string, value: string, f: HeaderForm, eol: string): string {
  const n = cased(name, f.nameCase);
  if (f.fold === 'beforeColon') return `${n}${eol} ${f.beforeColon}: ${value}${eol}`;
  if (f.fold === 'value') return `${n}${f.beforeColon}:${eol}\t${value}${eol}`;
  return `${n}${f.beforeColon}: ${value}${eol}`;
}

const wrapLines = (s: string, eol: string, width = 76) => (s.match(new RegExp(`.{1,${width}}`, 'g')) ?? []).join(eol);

/** Quoted-printable of any bytes, soft line breaks included. */
export function qp(b: Buffer, eol: string): string {
  let out = '';
  let line = 0;
  for (const byte of b) {
    const ch = byte === 0x3d || byte < 0x20 || byte > 0x7e ? `=${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
    if (line + ch.length > 73) {
      out += `=${eol}`;
      line = 0;
    }
    out += ch;
    line += ch.length;
  }
  return out;
}

export function zipOf(name: string, content: Buffer): Promise<Buffer> {
  const z = new yazl.ZipFile();
  z.addBuffer(content, name);
  z.end();
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    z.outputStream.on('data', (c: Buffer) => parts.push(c)).on('end', () => resolve(Buffer.concat(parts))).on('error', reject);
  });
}

/** The payload's file: EICAR named .txt and the program named .dat, so only content betrays them. */
export function payloadFile(kind: PayloadKind): { name: string; content: Buffer } {
  return kind === 'eicar' ? { name: 'notes.txt', content: EICAR } : { name: 'report.dat', content: fakePe() };
}

/** Classic uuencode: 45 bytes a line, the last line "`" (zero bytes). */
export function uuencode(b: Buffer, eol: string): string {
  const ch = (n: number) => String.fromCharCode(n === 0 ? 96 : n + 32);
  let out = '';
  for (let i = 0; i < b.length; i += 45) {
    const chunk = b.subarray(i, i + 45);
    out += ch(chunk.length);
    for (let j = 0; j < chunk.length; j += 3) {
      const [x, y = 0, z = 0] = [chunk[j]!, chunk[j + 1], chunk[j + 2]];
      out += ch(x >> 2) + ch(((x & 3) << 4) | (y >> 4)) + ch(((y & 15) << 2) | (z >> 6)) + ch(z & 63);
    }
    out += eol;
  }
  return `${out}\`${eol}`;
}

let counter = 0;

/** Headers and body of one MIME entity (a part, or a whole message when `top`). */
function entity(w: Wrap, m: EvasiveMail, zipped: Buffer, top: boolean): { head: string; body: string } {
  const eol = m.eol;
  const file = payloadFile(m.payload);
  const ct = (value: string, f: HeaderForm) => (top && m.decoyType ? `Content-Type: text/plain${eol}` : '') + header('Content-Type', value, f, eol);
  switch (w.kind) {
    case 'single':
    case 'attach': {
      const enc = w.kind === 'attach' ? w.encoding : 'base64';
      const body = enc === 'base64' ? wrapLines(file.content.toString('base64'), eol) : qp(file.content, eol);
      return {
        head: ct(`application/octet-stream; name="${file.name}"`, w.form) + header('Content-Transfer-Encoding', enc, w.form, eol) + `Content-Disposition: attachment; filename="${file.name}"${eol}`,
        body: body + eol,
      };
    }
    case 'zip':
      return {
        head: ct('application/zip; name="files.zip"', w.form) + header('Content-Transfer-Encoding', 'base64', w.form, eol) + `Content-Disposition: attachment; filename="files.zip"${eol}`,
        body: wrapLines(zipped.toString('base64'), eol) + eol,
      };
    case 'uuencode':
      return {
        head: ct('text/plain; charset=us-ascii', w.form),
        body: `The file, as my old program sends it:${eol}${eol}begin 644 ${file.name}${eol}${uuencode(file.content, eol)}end${eol}`,
      };
    case 'multipart': {
      const b = `b${++counter}_${w.subtype}`;
      const inner = entity(w.inner, m, zipped, false);
      const param = w.quoteBoundary ? `"${b}"` : b;
      return {
        head: ct(`multipart/${w.subtype}; boundary=${param}`, w.form),
        body: `--${b}${eol}Content-Type: text/plain${eol}${eol}See the attachment.${eol}--${b}${eol}${inner.head}${eol}${inner.body}--${b}--${eol}`,
      };
    }
    case 'rfc822': {
      const inner = buildMail({ ...m, wrap: w.inner, decoyType: false }, zipped);
      const body = w.encoding === 'base64' ? wrapLines(inner.toString('base64'), eol) : w.encoding === 'quoted-printable' ? qp(inner, eol) : inner.toString('latin1');
      return {
        head: ct('message/rfc822; name="forwarded.eml"', w.form) + header('Content-Transfer-Encoding', w.encoding, w.form, eol) + `Content-Disposition: attachment; filename="forwarded.eml"${eol}`,
        body: body + eol,
      };
    }
  }
}

/** The whole message (headers for an outside recipient), `zipped` being the payload in a zip. */
export function buildMail(m: EvasiveMail, zipped: Buffer, from = 'alice@example.test', to = 'bob@remote.test'): Buffer {
  const eol = m.eol;
  const w: Wrap = m.wrap.kind === 'attach' || m.wrap.kind === 'zip' || m.wrap.kind === 'rfc822' ? { kind: 'multipart', subtype: 'mixed', form: m.topForm, quoteBoundary: m.quoteBoundary, inner: m.wrap } : m.wrap;
  const e = entity(w, m, zipped, true);
  return Buffer.from(`From: <${from}>${eol}To: <${to}>${eol}Subject: figures${eol}MIME-Version: 1.0${eol}${e.head}${eol}${e.body}`, 'latin1');
}
