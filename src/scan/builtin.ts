import type { Entry, ZipFile } from 'yauzl';

/**
 * The built-in scanning layer: needs no engine, so it runs first on every scanned message
 * (outbound by default). It finds the industry test patterns (so an administrator can check that scanning
 * works end to end), and executables however they are named or packed in zips. The other
 * built-in check, an account's sudden jump in sending volume, is in anomaly.ts.
 */

export interface BuiltinFinding {
  kind: 'spam' | 'virus' | 'executable';
  /** GTUBE, EICAR, EXE_ATTACHMENT, DOUBLE_EXTENSION or ZIP_LIMIT. */
  rule: string;
  /** Where and what: "invoice.zip > setup.exe (PE executable)". */
  detail: string;
}

export interface BuiltinScanOptions {
  /** Look for executables (default true); off, only the test patterns are looked for. */
  executables?: boolean;
  /** Zips opened inside one another at most (default 2: a zip and a zip in it). */
  maxZipDepth?: number;
  /** Archive entries looked at per message, over all its zips (default 1000). */
  maxZipEntries?: number;
  /** Bytes unpacked per message, over all its zips (default 50 MiB). */
  maxUnzippedBytes?: number;
  /** Plain-text messages are searched without the MIME parser (default true; off in the
   *  tests that check the fast path decides as the full parse does). */
  fastPath?: boolean;
}

// Both test strings are put together at run time so that this file and its build output
// do not themselves match them: a virus scanner on a developer's machine or on a backup of
// the appliance would otherwise quarantine mlsd.
const GTUBE = Buffer.from('XJS*C4JDBQADN1.NSBN3*2IDNEN*' + 'GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X', 'latin1');
const EICAR = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$' + 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');
const GTUBE_TEXT = GTUBE.toString('latin1');
const EICAR_TEXT = EICAR.toString('latin1');

/** Bytes of a file's start kept for sniffing its type (far past any real PE header offset). */
const HEAD_BYTES = 64 * 1024;
/** Forwarded messages (message/rfc822 attachments) looked into, one inside another. */
const MAX_MESSAGE_DEPTH = 3;

/**
 * File names Windows (or a Java or Android runtime) runs, or that install or configure
 * software, when the recipient double-clicks them. Beyond the usual list: installer patches
 * and transforms, help and shortcut formats abused as droppers, app packages, and the disk
 * images malspam used in 2022 to carry a shortcut past the "downloaded from the internet" mark.
 */
const DANGEROUS_EXT = new Set([
  'exe', 'scr', 'pif', 'com', 'bat', 'cmd', 'vbs', 'vbe', 'js', 'jse', 'wsf', 'wsh', 'hta', 'jar', 'msi', 'ps1', 'lnk', 'cpl', 'reg',
  'msp', 'mst', 'msc', 'scf', 'chm', 'hlp', 'inf', 'application', 'gadget', 'appref-ms', 'url', 'psm1', 'psd1', 'ps1xml', 'vb', 'ws', 'wsc', 'sct', 'shb', 'shs',
  'appx', 'appxbundle', 'msix', 'msixbundle', 'apk', 'iso', 'img', 'vhd', 'vhdx',
]);

/** Extensions an executable's name pretends to with a second one ("invoice.pdf.exe"). */
const DECOY_EXT = new Set([
  'pdf', 'doc', 'docx', 'docm', 'xls', 'xlsx', 'xlsm', 'ppt', 'pptx', 'pptm', 'odt', 'ods', 'odp', 'rtf', 'txt', 'csv', 'xml', 'htm', 'html',
  'jpg', 'jpeg', 'png', 'gif', 'bmp', 'tif', 'tiff', 'svg', 'mp3', 'mp4', 'wav', 'avi', 'mov', 'zip', 'rar', '7z', 'eml', 'msg',
]);

/** Characters that make a name display differently than it is ("invoice\u202Efdp.exe" shows as "invoiceexe.pdf"). */
const INVISIBLE = /[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;

interface Ctx {
  executables: boolean;
  maxZipDepth: number;
  maxZipEntries: number;
  maxUnzippedBytes: number;
  entriesLeft: number;
  bytesLeft: number;
  /** Set once a per-message budget ran out: no further archive is opened. */
  exhausted: boolean;
  findings: BuiltinFinding[];
  /** Paths already reported as executable, so a name and a content check report a file once. */
  flagged: Set<string>;
  yauzl: typeof import('yauzl');
}

/**
 * Scans one message. Never throws: anything that fails midway keeps what was found before
 * it. mailparser refuses a message of more than 1000 MIME parts or with a header block over
 * 1 MB: such a message is a MIME_LIMIT finding, as it cannot be looked into.
 */
export async function builtinScan(message: Buffer, opts: BuiltinScanOptions = {}): Promise<BuiltinFinding[]> {
  const maxZipEntries = nonNegative(opts.maxZipEntries, 1000);
  const maxUnzippedBytes = nonNegative(opts.maxUnzippedBytes, 50 * 1024 * 1024);
  const findings: BuiltinFinding[] = [];
  const plainBody = opts.fastPath === false ? null : plainTextBody(message);
  if (plainBody) {
    // Nothing to decode and no attachment: the raw body bytes are the text mailparser would
    // give. Skipping the parser here halves the cost of scanning ordinary mail (~1 ms a message).
    const where = pathText(['message body']);
    if (plainBody.includes(GTUBE)) findings.push({ kind: 'spam', rule: 'GTUBE', detail: where });
    if (plainBody.includes(EICAR)) findings.push({ kind: 'virus', rule: 'EICAR', detail: where });
    return findings;
  }
  try {
    const ctx: Ctx = {
      executables: opts.executables ?? true,
      maxZipDepth: nonNegative(opts.maxZipDepth, 2),
      maxZipEntries,
      maxUnzippedBytes,
      entriesLeft: maxZipEntries,
      bytesLeft: maxUnzippedBytes,
      exhausted: false,
      findings,
      flagged: new Set(),
      // Loaded on first use, like the parser: a box with scanning off never pays for them.
      yauzl: (await import('yauzl')).default,
    };
    await scanMessage(ctx, message, [], 0);
  } catch (err) {
    // mailparser refuses what no mail program sends (over 1000 MIME parts, a header block
    // over 1 MB): such a message cannot be looked into, so it is not let out unexamined.
    findings.push({ kind: 'virus', rule: 'MIME_LIMIT', detail: `cannot be examined: ${oneLine((err as Error).message)}` });
  }
  return findings;
}

/** Charsets in which every ASCII byte stands for itself: the raw bytes hold the test patterns
 *  exactly when the decoded text does. */
const ASCII_CHARSET = /^(us-ascii|ascii|utf-8|utf8|iso-8859-\d{1,2}|windows-125\d)$/;
/** A header line as RFC 5322 §2.2 writes it: a name of printable characters, then the colon. */
const STRICT_FIELD = /^([!-9;-~]+):/;

/**
 * The body of a message that is plain text and nothing else, or null. The fast path may only
 * decide what the full parse would decide the same way (one parse decides, issue 12), so it
 * refuses anything it does not fully understand, and the message then goes to mailparser:
 * an obsolete header form (space before the colon, RFC 5322 §4.5), a header line that is no
 * header, a bare CR, a repeated Content-Type or Content-Transfer-Encoding, any other
 * Content-* header (a disposition may name a file), a parameter other than an ASCII charset
 * (format=flowed joins lines), any transfer encoding. Lines end at LF, as mailparser reads them.
 */
function plainTextBody(message: Buffer): Buffer | null {
  let pos = 0;
  let type: string | undefined;
  let encoding: string | undefined;
  let lastName: string | null = null;
  for (;;) {
    if (pos >= HEAD_BYTES) return null;
    const nl = message.indexOf(0x0a, pos);
    // A header block with no end: mailparser reads it all as headers, no text.
    const lineEnd = nl < 0 ? message.length : nl;
    let line = message.subarray(pos, lineEnd).toString('latin1');
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.includes('\r')) return null;
    if (line === '') return finish();
    if (line[0] === ' ' || line[0] === '\t') {
      if (lastName === null) return null;
      if (lastName === 'content-type') type += ` ${line.trim()}`;
      else if (lastName === 'content-transfer-encoding') encoding += ` ${line.trim()}`;
    } else {
      const field = STRICT_FIELD.exec(line);
      if (!field) return null;
      lastName = field[1]!.toLowerCase();
      const value = line.slice(field[0].length).trim();
      if (lastName === 'content-type') {
        if (type !== undefined) return null;
        type = value;
      } else if (lastName === 'content-transfer-encoding') {
        if (encoding !== undefined) return null;
        encoding = value;
      } else if (lastName.startsWith('content-')) return null;
    }
    if (nl < 0) return finish();
    pos = nl + 1;
  }
  function finish(): Buffer | null {
    if (encoding !== undefined && !/^(7bit|8bit)$/i.test(encoding.trim())) return null;
    if (type !== undefined) {
      const m = /^text\/plain\s*(?:;\s*charset\s*=\s*("?)([A-Za-z0-9_-]+)\1\s*)?;?\s*$/i.exec(type);
      if (!m || (m[2] !== undefined && !ASCII_CHARSET.test(m[2].toLowerCase()))) return null;
    }
    const body = message.subarray(Math.min(message.length, message.indexOf(0x0a, pos) + 1 || message.length));
    // A uuencoded file in the text is an attachment to mail programs that decode it.
    return UU_BEGIN.test(body.toString('latin1')) ? null : body;
  }
}

function nonNegative(v: number | undefined, dflt: number): number {
  return v !== undefined && Number.isFinite(v) && v >= 0 ? Math.floor(v) : dflt;
}

async function scanMessage(ctx: Ctx, raw: Buffer, path: string[], depth: number): Promise<void> {
  const doubt = ambiguousHeaders(raw);
  if (doubt) ctx.findings.push({ kind: 'virus', rule: 'MIME_AMBIGUOUS', detail: `${pathText([...path, 'message'])} (${doubt})` });
  const { simpleParser } = await import('mailparser');
  const mail = await simpleParser(raw, {
    // Only the decoded parts are wanted: no checksums, no generated HTML, and cid: images
    // left as links rather than copied into the HTML as data: URLs.
    checksumAlgo: false,
    skipTextToHtml: true,
    skipTextLinks: true,
    keepCidLinks: true,
  });
  const body = [mail.text ?? '', typeof mail.html === 'string' ? mail.html : ''];
  const where = pathText([...path, 'message body']);
  if (body.some((t) => t.includes(GTUBE_TEXT))) ctx.findings.push({ kind: 'spam', rule: 'GTUBE', detail: where });
  if (body.some((t) => t.includes(EICAR_TEXT))) ctx.findings.push({ kind: 'virus', rule: 'EICAR', detail: where });
  for (const t of body) await scanUuencoded(ctx, path, t);

  for (const att of mail.attachments) {
    const name = att.filename ?? '';
    const label = name || `unnamed ${att.contentType}`;
    const content = att.content;
    if (!Buffer.isBuffer(content)) continue;
    if (att.contentType === 'message/rfc822') {
      // A forwarded message is a message of its own: its attachments are decoded only by
      // parsing it. One nested deeper, or that cannot be parsed, cannot be called clean:
      // its base64 parts would otherwise pass as the undecoded text they are.
      if (depth >= MAX_MESSAGE_DEPTH) ctx.findings.push({ kind: 'virus', rule: 'MIME_LIMIT', detail: `${pathText([...path, label])} (forwarded messages nested deeper than ${MAX_MESSAGE_DEPTH})` });
      else await scanMessage(ctx, content, [...path, label], depth + 1).catch((err: Error) => ctx.findings.push({ kind: 'virus', rule: 'MIME_LIMIT', detail: `${pathText([...path, label])} (cannot be examined: ${oneLine(err.message)})` }));
      continue;
    }
    // A text attachment is a text part too (SpamAssassin matches GTUBE in it as well).
    if (att.contentType.startsWith('text/') && content.includes(GTUBE)) ctx.findings.push({ kind: 'spam', rule: 'GTUBE', detail: pathText([...path, label]) });
    if (att.contentType.startsWith('text/')) await scanUuencoded(ctx, [...path, label], content.toString('latin1'));
    judge(ctx, [...path, label], name, content.subarray(0, HEAD_BYTES), content.includes(EICAR), false);
    if (looksZip(content)) await openZip(ctx, [...path, label], content, 1);
  }
}

const HEADER_NAME = /^([!-9;-~]+)[ \t]*:/;

/**
 * Why mail programs could read a message's structure otherwise than mailparser does, or null.
 * mailparser takes the first of two Content-Type (or Content-Transfer-Encoding) headers, some
 * mail programs the last; mailparser reads a bare CR as part of a line, some programs as a
 * line end (so a Content-Type after one is seen by them only). Looked for in every header block: the message's own, and those after a line
 * starting "--" (a MIME boundary; a stray one in text costs nothing, a block is judged only
 * by its repeated headers and bare CRs).
 */
function ambiguousHeaders(raw: Buffer): string | null {
  let inHead = true;
  let fields: string[] = [];
  // Header lines unfolded first: a name folded before its colon is still a name to mailparser.
  const judgeBlock = (): string | null => {
    const values = new Map<string, Set<string>>();
    for (const f of fields) {
      const name = HEADER_NAME.exec(f)?.[1]?.toLowerCase();
      if (name !== 'content-type' && name !== 'content-transfer-encoding') continue;
      const set = values.get(name) ?? new Set();
      // The same value twice is odd but reads the same whichever one a program takes.
      set.add(f.slice(f.indexOf(':') + 1).replace(/\s+/g, ' ').trim().toLowerCase());
      values.set(name, set);
      if (set.size > 1) return `${name} given twice, differently`;
    }
    return null;
  };
  // Line by line over the bytes: a body line is looked at only for its first two bytes, so a
  // large message is not copied into a string.
  for (let pos = 0; pos <= raw.length; ) {
    const nl = raw.indexOf(0x0a, pos);
    const end = nl < 0 ? raw.length : nl;
    const start = pos;
    pos = end + 1;
    if (!inHead) {
      if (raw[start] === 0x2d && raw[start + 1] === 0x2d && start + 1 < end) {
        inHead = true;
        fields = [];
      }
      continue;
    }
    const l = raw.toString('latin1', start, end > start && raw[end - 1] === 0x0d ? end - 1 : end);
    if (l === '') {
      const doubt = judgeBlock();
      if (doubt) return doubt;
      inHead = false;
      continue;
    }
    // A program that ends lines at a bare CR too would read the header after it.
    if (l.split('\r').slice(1).some((seg) => /^content-(type|transfer-encoding)$/i.test(HEADER_NAME.exec(seg)?.[1] ?? ''))) return 'a Content-Type header behind a bare CR';
    if ((l[0] === ' ' || l[0] === '\t') && fields.length) fields[fields.length - 1] += l;
    else fields.push(l);
  }
  return inHead ? judgeBlock() : null;
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 200);
}

/** The start of a uuencoded file ("begin 644 setup.exe"), on a line of its own. */
const UU_BEGIN = /^begin [0-7]{3,4} (.*?)\r?$/m;

/**
 * Files uuencoded in a text: Outlook and Thunderbird show such a block in a plain-text
 * message as an attachment, while mailparser leaves it text. Each is judged like an
 * attachment, and its bytes count against the per-message unpacking budget.
 */
async function scanUuencoded(ctx: Ctx, path: string[], text: string): Promise<void> {
  if (!UU_BEGIN.test(text)) return;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length && !ctx.exhausted; i++) {
    const begin = UU_BEGIN.exec(lines[i]!);
    if (!begin) continue;
    const name = begin[1]!.trim();
    const chunks: Buffer[] = [];
    for (i++; i < lines.length; i++) {
      const line = lines[i]!.replace(/\r$/, '');
      if (line === 'end') break;
      const n = (line.charCodeAt(0) - 32) & 63;
      if (!line || n === 0) continue;
      chunks.push(uudecodeLine(line, n));
    }
    const data = Buffer.concat(chunks);
    const here = [...path, name || 'uuencoded file'];
    if (data.length > ctx.bytesLeft) return budgetHit(ctx, here, `more than ${bytesText(ctx.maxUnzippedBytes)} unpacked`);
    ctx.bytesLeft -= data.length;
    judge(ctx, here, name, data.subarray(0, HEAD_BYTES), data.includes(EICAR), false);
    if (looksZip(data)) await openZip(ctx, here, data, 1);
  }
}

/** One uuencoded line: a length character, then 4 characters for each 3 bytes. */
function uudecodeLine(line: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  const c = (j: number) => (line.charCodeAt(j) - 32) & 63;
  for (let o = 0, j = 1; o < n; o += 3, j += 4) {
    const v = (c(j) << 18) | (c(j + 1) << 12) | (c(j + 2) << 6) | c(j + 3);
    out[o] = v >> 16;
    if (o + 1 < n) out[o + 1] = (v >> 8) & 255;
    if (o + 2 < n) out[o + 2] = v & 255;
  }
  return out;
}

/** Reports what one file (an attachment or an archive entry) is, from its name and first bytes. */
function judge(ctx: Ctx, path: string[], name: string, head: Buffer, eicar: boolean, encrypted: boolean): void {
  if (eicar) ctx.findings.push({ kind: 'virus', rule: 'EICAR', detail: pathText(path) });
  if (!ctx.executables) return;
  const content = head.length ? sniffExecutable(head) : null;
  const byName = dangerousName(name);
  if (!content && !byName) return;
  let what = content ?? `.${byName!.ext} file name`;
  if (byName?.decoy) what += ` disguised as .${byName.decoy}`;
  if (byName?.hidden) what += ', name reversed by invisible characters';
  if (encrypted) what += ', encrypted';
  flagExecutable(ctx, path, byName?.decoy ? 'DOUBLE_EXTENSION' : 'EXE_ATTACHMENT', what);
}

function flagExecutable(ctx: Ctx, path: string[], rule: string, what: string): void {
  const key = path.join('\n');
  if (ctx.flagged.has(key)) return;
  ctx.flagged.add(key);
  ctx.findings.push({ kind: 'executable', rule, detail: `${pathText(path)} (${what})` });
}

/** Once per message: the budgets are per message, so the first archive to hit one ends all unpacking. */
function budgetHit(ctx: Ctx, path: string[], what: string): void {
  if (ctx.exhausted) return;
  ctx.exhausted = true;
  ctx.findings.push({ kind: 'executable', rule: 'ZIP_LIMIT', detail: `${pathText(path)} (${what})` });
}

/**
 * Zips in zips in zips are a known way past scanners that stop at some depth: an archive
 * not looked into cannot be called clean.
 */
function tooDeep(ctx: Ctx, path: string[]): void {
  ctx.findings.push({ kind: 'executable', rule: 'ZIP_LIMIT', detail: `${pathText(path)} (archives nested deeper than ${ctx.maxZipDepth})` });
}

function bytesText(n: number): string {
  return n >= 1024 * 1024 ? `${+(n / 1024 / 1024).toFixed(1)} MiB` : `${n} bytes`;
}

function looksZip(b: Buffer): boolean {
  // A local file header, or the end record of an empty archive.
  return b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && ((b[2] === 3 && b[3] === 4) || (b[2] === 5 && b[3] === 6));
}

/**
 * Opens an archive found at nesting `level` (1 for an attachment) and judges every entry.
 * A corrupt archive is not an error: what was listed before the damage is still judged.
 */
async function openZip(ctx: Ctx, path: string[], data: Buffer, level: number): Promise<void> {
  if (ctx.exhausted) return;
  if (level > ctx.maxZipDepth) return tooDeep(ctx, path);
  let zip: ZipFile;
  try {
    // Names are decoded here rather than by yauzl, which refuses the whole archive at a name
    // like "../x.exe" or "C:/x.exe": a sender could hide an entry behind such a name.
    zip = await ctx.yauzl.fromBufferPromise(data, { decodeStrings: false, validateEntrySizes: true });
  } catch {
    return;
  }
  let manifest = false;
  let javaClass = false;
  let dex = false;
  try {
    for await (const entry of zip.eachEntry()) {
      if (ctx.entriesLeft <= 0) {
        budgetHit(ctx, path, `more than ${ctx.maxZipEntries} archive entries`);
        break;
      }
      ctx.entriesLeft--;
      const name = ctx.yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, false);
      if (name.endsWith('/')) continue;
      const lower = name.toLowerCase();
      if (lower === 'meta-inf/manifest.mf') manifest = true;
      else if (lower.endsWith('.class')) javaClass = true;
      else if (lower === 'classes.dex') dex = true;

      const here = [...path, name];
      const encrypted = entry.isEncrypted();
      const got = !encrypted && entry.canDecodeFileData() ? await readEntry(ctx, zip, entry, here, level < ctx.maxZipDepth) : null;
      judge(ctx, here, name, got?.head ?? Buffer.alloc(0), got?.eicar ?? false, encrypted);
      if (got && looksZip(got.head)) {
        if (got.all) await openZip(ctx, here, got.all, level + 1);
        else if (!got.cut) tooDeep(ctx, here);
      }
      if (ctx.exhausted) break;
    }
  } catch {
    // A damaged central directory: the entries before it were judged.
  } finally {
    zip.close();
  }
  // Renamed Java and Android programs: an archive with a manifest and classes, or with Dalvik code.
  if (!ctx.executables) return;
  if (manifest && javaClass) flagExecutable(ctx, path, 'EXE_ATTACHMENT', 'Java program');
  else if (dex) flagExecutable(ctx, path, 'EXE_ATTACHMENT', 'Android package');
}

interface EntryData {
  head: Buffer;
  /** The whole entry, kept only when it may be an archive to open next. */
  all: Buffer | null;
  eicar: boolean;
  /** Unpacking stopped at the byte budget. */
  cut: boolean;
}

/**
 * Unpacks one entry as a stream, counting every byte against the message's budget, so a
 * bomb is stopped by what it inflates to and not by the size it declares. Only the head
 * is kept, plus the whole entry when it looks like a zip that may be opened next.
 */
function readEntry(ctx: Ctx, zip: ZipFile, entry: Entry, path: string[], mayOpen: boolean): Promise<EntryData | null> {
  return new Promise((resolve) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err || !stream) return resolve(null);
      const head: Buffer[] = [];
      let headLen = 0;
      let all: Buffer[] | null = null;
      let sniffed = false;
      let tail = Buffer.alloc(0);
      let eicar = false;
      let cut = false;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        resolve({ head: Buffer.concat(head), all: all && !cut ? Buffer.concat(all) : null, eicar, cut });
      };
      stream.on('data', (chunk: Buffer) => {
        if (done) return;
        if (chunk.length > ctx.bytesLeft) {
          chunk = chunk.subarray(0, ctx.bytesLeft);
          cut = true;
        }
        ctx.bytesLeft -= chunk.length;
        if (headLen < HEAD_BYTES) {
          const part = chunk.subarray(0, HEAD_BYTES - headLen);
          head.push(part);
          headLen += part.length;
          if (!sniffed && headLen >= 4) {
            sniffed = true;
            // The chunks before this one were all head (under 4 bytes), so the entry so far is head.
            if (mayOpen && looksZip(Buffer.concat(head))) all = head.slice(0, -1);
          }
        }
        all?.push(chunk);
        // The pattern may straddle two chunks: look across the seam too.
        if (!eicar && (chunk.includes(EICAR) || Buffer.concat([tail, chunk.subarray(0, EICAR.length - 1)]).includes(EICAR))) eicar = true;
        tail = Buffer.from(chunk.subarray(Math.max(0, chunk.length - (EICAR.length - 1))));
        if (cut) {
          budgetHit(ctx, path, `more than ${bytesText(ctx.maxUnzippedBytes)} unpacked`);
          stream.destroy();
          finish();
        }
      });
      // A truncated or lying entry (bad deflate data, wrong size): judge what came out of it.
      stream.on('error', finish);
      stream.on('end', finish);
      stream.on('close', finish);
    });
  });
}

/** What kind of program the bytes are, from their magic numbers; null when none. */
function sniffExecutable(b: Buffer): string | null {
  if (b.length >= 0x40 && b[0] === 0x4d && b[1] === 0x5a) {
    // Every text file starting "MZ" is not a program: Windows runs it only with a PE header where e_lfanew points.
    const pe = b.readUInt32LE(0x3c);
    if (pe + 4 <= b.length && b.readUInt32BE(pe) === 0x50450000) return 'PE executable';
  }
  if (b.length >= 4) {
    const m = b.readUInt32BE(0);
    if (m === 0x7f454c46) return 'ELF executable';
    if (m === 0xfeedface || m === 0xfeedfacf || m === 0xcefaedfe || m === 0xcffaedfe) return 'Mach-O executable';
    // The same magic starts a Java class file, whose next word is its version (45 and up);
    // a universal binary's is its number of architectures.
    if ((m === 0xcafebabe || m === 0xcafebabf) && b.length >= 8 && b.readUInt32BE(4) >= 1 && b.readUInt32BE(4) <= 20) return 'Mach-O universal executable';
  }
  if (b.length >= LNK_HEADER.length && b.subarray(0, LNK_HEADER.length).equals(LNK_HEADER)) return 'Windows shortcut';
  const msi = oleInstaller(b);
  if (msi) return msi;
  return null;
}

const LNK_HEADER = Buffer.from('4c0000000114020000000000c000000000000046', 'hex');
const OLE_MAGIC = Buffer.from('d0cf11e0a1b11ae1', 'hex');
/** {000C10xx-0000-0000-C000-000000000046} as stored, minus its first byte. */
const MSI_CLSID_REST = Buffer.from('100c0000000000c000000000000046', 'hex');

/**
 * An OLE compound file is also a Word or Excel 97 document, so the magic alone says
 * nothing: an installer is told by the class ID of its root storage.
 */
function oleInstaller(b: Buffer): string | null {
  if (b.length < 512 || !b.subarray(0, 8).equals(OLE_MAGIC)) return null;
  const shift = b.readUInt16LE(0x1e);
  if (shift !== 9 && shift !== 12) return null;
  const dirSector = b.readUInt32LE(0x30);
  const clsid = (dirSector + 1) * 2 ** shift + 0x50;
  if (clsid + 16 > b.length) return null;
  if (!b.subarray(clsid + 1, clsid + 16).equals(MSI_CLSID_REST)) return null;
  const kind = b[clsid];
  if (kind === 0x84) return 'Windows installer';
  if (kind === 0x86) return 'Windows installer patch';
  if (kind === 0x82) return 'Windows installer transform';
  return null;
}

/** The dangerous extension of a file name, and the one before it when that poses as a document. */
function dangerousName(name: string): { ext: string; decoy?: string; hidden?: boolean } | null {
  const base = name.split(/[\\/]/).pop() ?? '';
  const real = base.replace(INVISIBLE, '');
  // Windows drops trailing dots and spaces, so "setup.exe. " runs as setup.exe.
  const parts = real.replace(/[. ]+$/, '').toLowerCase().split('.');
  if (parts.length < 2) return null;
  const ext = parts[parts.length - 1]!;
  if (!DANGEROUS_EXT.has(ext)) return null;
  const out: { ext: string; decoy?: string; hidden?: boolean } = { ext };
  const prev = parts.length > 2 ? parts[parts.length - 2]!.trim() : '';
  if (DECOY_EXT.has(prev)) out.decoy = prev;
  if (real !== base) out.hidden = true;
  return out;
}

/**
 * A path for a finding's detail. The names come from the sender and the detail goes into
 * logs, headers and alert mails: no control or direction characters, bounded length.
 */
function pathText(path: string[]): string {
  return path
    .map((p) => {
      const s = p.replace(INVISIBLE, '').replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
      return s.length > 120 ? `${s.slice(0, 117)}...` : s;
    })
    .join(' > ');
}
