/**
 * The archive bench's corpus: mixed Traditional Chinese and English business mail as RFC 5322
 * bytes with the envelope the box would record (IntakeRecord), made one message at a time
 * from a seed (never the whole corpus in memory or on disk). Median about 4 KiB with a long
 * tail; a few percent with attachments (text, HTML, PDF-like and spreadsheet-like bytes) up
 * to 256 KiB; about 2 % exact duplicates of an earlier message's bytes; Chinese bodies in
 * UTF-8 as 8bit, quoted-printable or base64; words drawn by Zipf rank (vocab.ts).
 */
import type { Direction, IntakeRecord, Verdict } from '../../../src/archive/types.js';
import { Rng, Zipf } from './random.js';
import { attachmentHeaders, base64Lines, encodeBody, encodedWord, mailbox, rfc5322Date, type TransferEncoding } from './mime.js';
import { EN_COMMON, EN_GLUE, EN_TAIL_N, EXTERNAL_DOMAINS, FIRST, LAST, LOCAL_DOMAINS, ZH_COMMON, ZH_GLUE, ZH_TAIL_N, enTail, zhTail } from './vocab.js';

export interface CorpusOptions {
  count: number;
  seed?: number;
  /** The rule set hash every intake record names. */
  ruleset: string;
  /** ms since epoch of the first message. */
  start?: number;
  /** Mean gap between arrivals, ms (30 s: a million messages span about a year). */
  meanGapMs?: number;
}

export interface CorpusMessage {
  rec: IntakeRecord;
  bytes: Buffer;
  /** The same bytes as an earlier message (stored once by the archive). */
  duplicate: boolean;
  attachments: number;
  lang: Lang;
}

type Lang = 'zh' | 'en' | 'mixed';

export interface Person {
  address: string;
  en: string;
  zh: string;
  local: boolean;
}

/** The share of words drawn from the names' long tail rather than the common words. */
const TAIL_SHARE = 0.08;
export const DUPLICATE_SHARE = 0.02;
export const ATTACHMENT_SHARE = 0.04;
const SPAM_SHARE = 0.005;
const ATTACHMENT_MAX = 256 * 1024;
/** Encoded bytes per text byte: any text (base64), and what quoted-printable does to Chinese. */
const INFLATION: Record<TransferEncoding, number> = { '7bit': 1, '8bit': 1, 'quoted-printable': 1.03, base64: 1.37 };
const INFLATION_ZH: Record<TransferEncoding, number> = { '7bit': 1, '8bit': 1, 'quoted-printable': 2.9, base64: 1 };
export const CORPUS_SEED = 20140414;
export const CORPUS_START = Date.UTC(2024, 0, 1) - 8 * 3600 * 1000;

/** A bijection of 0..n-1 that scatters neighbouring ranks (so rank 0 and 1 do not share a surname). */
function scatter(n: number): (i: number) => number {
  const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
  const m = [7919, 104729, 15485863].find((p) => gcd(p, n) === 1)!;
  return (i) => (i * m + 17) % n;
}

/** The words, ranked; draws by Zipf over the common words, and over the names' tail now and then. */
export class Lexicon {
  readonly zh = new Zipf(ZH_COMMON.length, 1.0);
  readonly en = new Zipf(EN_COMMON.length, 1.0);
  readonly zhTailZ = new Zipf(ZH_TAIL_N, 1.1);
  readonly enTailZ = new Zipf(Math.min(EN_TAIL_N, 100_000), 1.1);
  private readonly zhScatter = scatter(ZH_TAIL_N);
  private readonly enScatter = scatter(EN_TAIL_N);

  zhTailWord(rank: number): string {
    return zhTail(this.zhScatter(rank));
  }

  enTailWord(rank: number): string {
    return enTail(this.enScatter(rank));
  }

  zhWord(rng: Rng): string {
    return rng.chance(TAIL_SHARE) ? this.zhTailWord(this.zhTailZ.draw(rng)) : ZH_COMMON[this.zh.draw(rng)]!;
  }

  enWord(rng: Rng): string {
    if (rng.chance(TAIL_SHARE)) return this.enTailWord(this.enTailZ.draw(rng));
    const forms = EN_COMMON[this.en.draw(rng)]!;
    return rng.chance(0.6) ? forms[0]! : rng.pick(forms);
  }

  /** One sentence in the language; 'mixed' is Chinese with English words in it. */
  sentence(rng: Rng, lang: Lang): string {
    if (lang === 'en') {
      const n = rng.int(6, 16);
      const w: string[] = [];
      for (let i = 0; i < n; i++) w.push(rng.chance(0.45) ? rng.pick(EN_GLUE) : this.enWord(rng));
      const s = w.join(' ');
      return `${s[0]!.toUpperCase()}${s.slice(1)}${rng.chance(0.1) ? '?' : '.'}`;
    }
    const n = rng.int(4, 12);
    let s = '';
    for (let i = 0; i < n; i++) {
      if (lang === 'mixed' && rng.chance(0.2)) s += ` ${this.enWord(rng)} `;
      else s += rng.chance(0.25) ? rng.pick(ZH_GLUE) : this.zhWord(rng);
      if (i < n - 1 && rng.chance(0.2)) s += '，';
    }
    return s.trim() + (rng.chance(0.1) ? '？' : '。');
  }
}

/** Wraps text at about `width` characters: English at a space, Chinese anywhere. */
function wrap(text: string, width: number): string {
  const out: string[] = [];
  let at = 0;
  while (text.length - at > width) {
    let cut = at + width;
    const space = text.lastIndexOf(' ', cut);
    if (space > at + width / 2) cut = space + 1;
    out.push(text.slice(at, cut).trimEnd());
    at = cut;
  }
  out.push(text.slice(at));
  return out.join('\n');
}

/** The address book: the box's own people and the companies they write to. */
export function people(rng: Rng, lex: Lexicon): { local: Person[]; external: Person[] } {
  const make = (domains: string[], n: number, local: boolean): Person[] => {
    const seen = new Set<string>();
    const out: Person[] = [];
    while (out.length < n) {
      const first = rng.pick(FIRST);
      const last = rng.pick(LAST);
      const domain = rng.pick(domains);
      const address = `${first}.${last}@${domain}`;
      if (seen.has(address)) continue;
      seen.add(address);
      out.push({ address, en: `${first[0]!.toUpperCase()}${first.slice(1)} ${last[0]!.toUpperCase()}${last.slice(1)}`, zh: lex.zhTailWord(rng.int(0, 5000)), local });
    }
    return out;
  };
  return { local: make(LOCAL_DOMAINS, 150, true), external: make(EXTERNAL_DOMAINS, 300, false) };
}

/** The corpus, one message at a time. */
export class Corpus {
  readonly lex = new Lexicon();
  private readonly rng: Rng;
  readonly local: Person[];
  readonly external: Person[];
  private readonly localZ: Zipf;
  private readonly externalZ: Zipf;
  /** Recent distinct messages, the pool duplicates are drawn from. */
  private readonly recent: { bytes: Buffer; rec: IntakeRecord; attachments: number; lang: Lang }[] = [];
  private time: number;
  private seq = 0;

  constructor(private readonly o: CorpusOptions) {
    this.rng = new Rng(o.seed ?? CORPUS_SEED);
    ({ local: this.local, external: this.external } = people(this.rng, this.lex));
    this.localZ = new Zipf(this.local.length, 0.8);
    this.externalZ = new Zipf(this.external.length, 0.8);
    this.time = o.start ?? CORPUS_START;
  }

  *messages(): Generator<CorpusMessage> {
    while (this.seq < this.o.count) yield this.next();
  }

  next(): CorpusMessage {
    const rng = this.rng;
    this.seq++;
    this.time += Math.max(1, Math.round(rng.exp(this.o.meanGapMs ?? 30_000)));
    const id = `A${this.seq.toString(36).toUpperCase().padStart(8, '0')}`;
    const received = new Date(this.time).toISOString();
    if (this.recent.length > 50 && rng.chance(DUPLICATE_SHARE)) {
      const d = rng.pick(this.recent);
      return { rec: { ...d.rec, id, received }, bytes: d.bytes, duplicate: true, attachments: d.attachments, lang: d.lang };
    }
    const m = this.compose(id, received);
    this.recent.push(m);
    if (this.recent.length > 512) this.recent.shift();
    return { ...m, duplicate: false };
  }

  private person(local: boolean): Person {
    return local ? this.local[this.localZ.draw(this.rng)]! : this.external[this.externalZ.draw(this.rng)]!;
  }

  private compose(id: string, received: string): { rec: IntakeRecord; bytes: Buffer; attachments: number; lang: Lang } {
    const rng = this.rng;
    const u = rng.next();
    const direction: Direction = u < 0.5 ? 'in' : u < 0.85 ? 'out' : 'internal';
    const from = this.person(direction !== 'in');
    const nRcpt = rng.chance(0.7) ? 1 : rng.chance(0.6) ? 2 : rng.int(3, 6);
    const rcpts: Person[] = [];
    while (rcpts.length < nRcpt) {
      const p = this.person(direction !== 'out' || (rcpts.length > 0 && rng.chance(0.3)));
      if (p !== from && !rcpts.includes(p)) rcpts.push(p);
    }
    const nTo = Math.max(1, Math.ceil(rcpts.length / 2));
    // A Bcc: an envelope recipient no header names.
    const bcc = rng.chance(0.05) ? this.person(true) : null;
    const envRcpt = [...rcpts.map((p) => p.address), ...(bcc && !rcpts.includes(bcc) && bcc !== from ? [bcc.address] : [])];

    const lang: Lang = rng.chance(0.45) ? 'zh' : rng.chance(0.64) ? 'en' : 'mixed';
    const enc: TransferEncoding = lang === 'en' ? (rng.chance(0.1) ? 'quoted-printable' : '7bit') : rng.chance(0.5) ? '8bit' : rng.chance(0.5) ? 'quoted-printable' : 'base64';
    const text = this.bodyText(rng, lang, from, rcpts[0]!, INFLATION[enc] * (lang === 'en' ? 1 : INFLATION_ZH[enc]));
    const subject = this.subject(rng, lang);
    const boundary = `----=_Part_${this.seq}_${rng.int(1e8, 9e8)}`;
    const nAtt = rng.chance(ATTACHMENT_SHARE) ? (rng.chance(0.75) ? 1 : rng.int(2, 3)) : 0;
    const withHtml = rng.chance(0.12);

    const head = [
      `From: ${mailbox(lang === 'en' ? from.en : from.zh, from.address)}`,
      `To: ${rcpts.slice(0, nTo).map((p) => mailbox(lang === 'en' ? p.en : p.zh, p.address)).join(',\r\n ')}`,
      ...(rcpts.length > nTo ? [`Cc: ${rcpts.slice(nTo).map((p) => mailbox(p.en, p.address)).join(',\r\n ')}`] : []),
      `Subject: ${encodedWord(subject)}`,
      `Date: ${rfc5322Date(Date.parse(received) - rng.int(1000, 20_000))}`,
      `Message-ID: <${this.seq}.${rng.int(1e9, 4e9).toString(36)}@${from.address.split('@')[1]}>`,
      'MIME-Version: 1.0',
    ];
    if (rng.chance(0.4)) head.push(`X-Mailer: ${rng.pick(['Microsoft Outlook 16.0', 'Apple Mail (2.3731)', 'Mozilla Thunderbird 115.3', 'Foxmail 7.2'])}`);

    const textPart = (e: TransferEncoding) => `Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: ${e}\r\n\r\n${encodeBody(text, e)}`;
    const htmlPart = (e: TransferEncoding) => `Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: ${e}\r\n\r\n${encodeBody(toHtml(text), e === '7bit' ? 'quoted-printable' : e)}`;
    const alt = `${boundary}_alt`;
    const bodyPart = withHtml ? `Content-Type: multipart/alternative; boundary="${alt}"\r\n\r\n--${alt}\r\n${textPart(enc)}\r\n--${alt}\r\n${htmlPart(enc)}\r\n--${alt}--` : textPart(enc);

    let msg: string;
    if (!nAtt) msg = `${head.join('\r\n')}\r\n${bodyPart}\r\n`;
    else {
      const parts = [bodyPart];
      for (let i = 0; i < nAtt; i++) parts.push(this.attachment(rng, lang));
      msg = `${head.join('\r\n')}\r\nContent-Type: multipart/mixed; boundary="${boundary}"\r\n\r\nThis is a multi-part message in MIME format.\r\n${parts.map((p) => `--${boundary}\r\n${p}\r\n`).join('')}--${boundary}--\r\n`;
    }
    const bytes = Buffer.from(msg, 'utf8');
    const verdict: Verdict = rng.chance(SPAM_SHARE) ? 'spam' : 'clean';
    const rec: IntakeRecord = {
      id,
      from: from.address,
      rcpt: envRcpt,
      clientIp: direction === 'in' ? `203.0.113.${rng.int(1, 254)}` : `192.168.10.${rng.int(10, 200)}`,
      login: direction === 'in' ? null : from.address,
      listener: direction === 'in' ? 'mx' : 'submission',
      received,
      size: bytes.length,
      direction,
      verdict,
      ruleset: this.o.ruleset,
    };
    return { rec, bytes, attachments: nAtt, lang };
  }

  private subject(rng: Rng, lang: Lang): string {
    const n = rng.int(2, 5);
    const words: string[] = [];
    for (let i = 0; i < n; i++) words.push(lang === 'en' ? this.lex.enWord(rng) : lang === 'mixed' && rng.chance(0.3) ? this.lex.enWord(rng) : this.lex.zhWord(rng));
    let s = lang === 'en' ? words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join(' ') : words.join(lang === 'mixed' ? ' ' : '');
    if (rng.chance(0.25)) s += ` ${rng.pick(['PO', 'INV', 'SO', 'Q'])}-${rng.int(2024000, 2024999)}`;
    if (rng.chance(0.3)) s = `${lang === 'en' ? rng.pick(['RE: ', 'Re: ', 'FW: ']) : rng.pick(['RE: ', '回覆：', '轉寄：'])}${s}`;
    return s;
  }

  /**
   * Body text whose encoded size is about the drawn one (log-normal, median ~3 KiB; 1 % of
   * mail five to thirty times longer, up to 256 KiB encoded). `inflation`: encoded bytes per text byte.
   */
  private bodyText(rng: Rng, lang: Lang, from: Person, to: Person, inflation: number): string {
    let target = rng.logNormal(3000, 0.6);
    if (rng.chance(0.01)) target *= rng.int(5, 30);
    target = Math.min(target, 256 * 1024) / inflation;
    const width = lang === 'en' ? 72 : 38;
    const paras: string[] = [lang === 'en' ? `Dear ${to.en.split(' ')[0]},` : `${to.zh} 您好：`];
    let bytes = 0;
    while (bytes < target) {
      const n = rng.int(2, 6);
      const s: string[] = [];
      for (let i = 0; i < n; i++) s.push(this.lex.sentence(rng, lang));
      const p = wrap(s.join(lang === 'en' ? ' ' : ''), width);
      bytes += Buffer.byteLength(p) + 2;
      paras.push(p);
    }
    paras.push(lang === 'en' ? `Best regards,\n${from.en}\nTel: +886-2-2${rng.int(100, 999)}-${rng.int(1000, 9999)}` : `敬祝 商祺\n${from.zh}\n電話：(02) 2${rng.int(100, 999)}-${rng.int(1000, 9999)}`);
    return paras.join('\n\n');
  }

  private attachment(rng: Rng, lang: Lang): string {
    const size = Math.round(Math.min(ATTACHMENT_MAX, Math.exp(rng.int(Math.log(2048) * 100, Math.log(ATTACHMENT_MAX) * 100) / 100)));
    const tag = `${rng.pick(['PO', 'INV', 'Q', 'SO', 'DN'])}-${rng.int(2024000, 2024999)}`;
    const zhName = lang !== 'en' && rng.chance(0.7);
    const kind = rng.next();
    if (kind < 0.25) {
      const name = zhName ? `${this.lex.zhWord(rng)}${this.lex.zhWord(rng)}說明_${tag}.txt` : `${this.lex.enWord(rng)}-notes-${tag}.txt`;
      return `${attachmentHeaders('text/plain; charset="utf-8"', name, 'base64')}\r\n\r\n${encodeBody(this.filler(rng, lang, size), 'base64')}`;
    }
    if (kind < 0.45) {
      const name = zhName ? `${this.lex.zhWord(rng)}報告_${tag}.html` : `${this.lex.enWord(rng)}-report-${tag}.html`;
      const enc: TransferEncoding = lang === 'en' ? 'quoted-printable' : 'base64';
      return `${attachmentHeaders('text/html; charset="utf-8"', name, enc)}\r\n\r\n${encodeBody(toHtml(this.filler(rng, lang, size)), enc)}`;
    }
    if (kind < 0.85) {
      const name = zhName ? `${this.lex.zhWord(rng)}單_${tag}.pdf` : `${rng.pick(['Invoice', 'Quotation', 'Contract', 'PackingList'])}_${tag}.pdf`;
      const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nstream\n', 'latin1'), rng.bytes(size)]);
      return `${attachmentHeaders('application/pdf', name, 'base64')}\r\n\r\n${base64Lines(pdf)}`;
    }
    const name = zhName ? `${this.lex.zhWord(rng)}明細_${tag}.xlsx` : `${this.lex.enWord(rng)}_${tag}.xlsx`;
    const zip = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), rng.bytes(size)]);
    return `${attachmentHeaders('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', name, 'base64')}\r\n\r\n${base64Lines(zip)}`;
  }

  /** Text of about `size` bytes (an attachment's). */
  private filler(rng: Rng, lang: Lang, size: number): string {
    const out: string[] = [];
    let n = 0;
    while (n < size) {
      const s = this.lex.sentence(rng, lang);
      n += Buffer.byteLength(s) + 1;
      out.push(s);
    }
    return wrap(out.join(lang === 'en' ? ' ' : ''), lang === 'en' ? 72 : 38);
  }
}

function toHtml(text: string): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<html><head><meta charset="utf-8"></head><body>\n${text
    .split('\n\n')
    .map((p) => `<p>${esc(p).replace(/\n/g, '<br>\n')}</p>`)
    .join('\n')}\n</body></html>`;
}
