import { generateKeyPair, createPrivateKey, createPublicKey } from 'node:crypto';
import { readdir, readFile, stat, chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, pipeline, type TransformCallback, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { DKIMSignOptions } from 'mailauth';
import { writeFileAtomic } from '../store/atomic.js';
import type { Logger } from '../log/logger.js';
import { DNS_LABEL_PATTERN, DOMAIN_PATTERN } from '../core/names.js';
import type { DataDecl } from '../store/data.js';

/** DKIM keys sign with the published key on either box, and survive a data-disk swap. */
export const DKIM_DATA: DataDecl = {
  owner: 'dkim',
  configFiles: [{ pattern: /^dkim\/[^/]+\.key$/, describe: 'DKIM private key per domain and selector', replicate: true, mode: 0o600 }],
};

/**
 * DKIM keys and signing for outbound mail.
 *
 * Keys live under the config dir (system flash), not the data disk: a swapped data disk
 * must not change the keys whose public halves are published in the customer's DNS.
 * One PEM file per domain and selector, `<configDir>/dkim/<domain>.<selector>.key`, so an
 * administrator can also drop in the key of the server this box replaces.
 */

const generateKeyPairAsync = promisify(generateKeyPair);

// A selector is one DNS label (config schema); it cannot contain a dot, which is what lets
// `<domain>.<selector>.key` be split unambiguously at its last dot.
const SELECTOR = DNS_LABEL_PATTERN;
const DOMAIN = DOMAIN_PATTERN;
const KEY_FILE = /^(.+)\.([a-z0-9][a-z0-9-]{0,62})\.key$/;

interface DkimKey {
  privatePem: string;
  /** base64 of the DER SubjectPublicKeyInfo: the p= of the DNS record. */
  publicB64: string;
  file: string;
}

// mailauth's signer pulls in joi, tldts and libmime (~20 MB RSS on this box), so it is
// loaded on the first signature, not at start: a box with DKIM off never pays for it.
let mailauthSign: Promise<typeof import('mailauth/lib/dkim/sign.js')> | undefined;
function loadSigner(): Promise<typeof import('mailauth/lib/dkim/sign.js')> {
  mailauthSign ??= import('mailauth/lib/dkim/sign.js').catch((err: unknown) => {
    mailauthSign = undefined; // let a later call retry rather than caching the failure
    throw err;
  });
  return mailauthSign;
}

function norm(domain: string): string {
  return domain.trim().toLowerCase().replace(/\.$/, '');
}

function mapKey(domain: string, selector: string): string {
  return `${domain}\0${selector}`;
}

export class DkimKeys {
  private readonly keys = new Map<string, DkimKey>();
  // ensure() calls run one after another, so two overlapping calls (start-up and a config
  // reload) cannot both generate a key for the same domain.
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** Loads every key under `<configDir>/dkim`. Unreadable or non-RSA files are logged and skipped. */
  static async open(configDir: string, log: Logger): Promise<DkimKeys> {
    const keys = new DkimKeys(join(configDir, 'dkim'), log);
    await keys.load();
    return keys;
  }

  private async load(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names.sort()) {
      const m = KEY_FILE.exec(name);
      if (!m || name.startsWith('.')) continue; // also skips writeFileAtomic's leftover temp files
      const domain = m[1]!;
      const selector = m[2]!;
      if (!DOMAIN.test(domain)) continue;
      const file = join(this.dir, name);
      try {
        const st = await stat(file);
        if (!st.isFile()) continue;
        if (st.mode & 0o077) {
          // A private key readable by others is as good as published; tighten rather than refuse.
          await chmod(file, 0o600);
          this.log.warn({ evt: 'dkim.key_mode', file, mode: (st.mode & 0o777).toString(8) }, 'DKIM key file was readable by others; mode set to 0600');
        }
        const pem = await readFile(file, 'utf8');
        this.keys.set(mapKey(domain, selector), parseKey(pem, file));
      } catch (err) {
        // Skipped, so has() is false and the next ensure() replaces the file: an unusable key
        // signs nothing, while a new one only needs its DNS record published.
        this.log.error({ evt: 'dkim.key_invalid', file, err: (err as Error).message }, 'unusable DKIM key file ignored');
      }
    }
  }

  /**
   * Generates an RSA 2048 key for every domain that has none for `selector` yet. Returns
   * the domains that got a new key (their DNS record must be published). A key that
   * cannot be written is logged (evt dkim.keygen_fail), not thrown: the server must keep
   * running without DKIM for that domain; has() tells the caller what can be signed.
   */
  ensure(domains: string[], selector: string): Promise<string[]> {
    const run = this.queue.then(() => this.ensureNow(domains, selector));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async ensureNow(domains: string[], selector: string): Promise<string[]> {
    checkSelector(selector);
    const made: string[] = [];
    for (const d of new Set(domains.map(norm))) {
      checkDomain(d);
      if (this.keys.has(mapKey(d, selector))) continue;
      const file = join(this.dir, `${d}.${selector}.key`);
      try {
        // One at a time: generation runs on the libuv pool, and several 2048-bit keys at
        // once on the board's slow CPU would hold up every fs call of the daemon meanwhile.
        const { privateKey } = await generateKeyPairAsync('rsa', {
          modulusLength: 2048,
          publicKeyEncoding: { type: 'spki', format: 'pem' },
          privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        });
        await mkdir(this.dir, { recursive: true, mode: 0o700 });
        await writeFileAtomic(file, privateKey, 0o600);
        this.keys.set(mapKey(d, selector), parseKey(privateKey, file));
        made.push(d);
        this.log.info({ evt: 'dkim.keygen', domain: d, selector, file }, 'DKIM key generated; publish its DNS record');
      } catch (err) {
        this.log.error({ evt: 'dkim.keygen_fail', domain: d, selector, file, err: (err as Error).message }, 'could not create DKIM key');
      }
    }
    return made;
  }

  has(domain: string, selector: string): boolean {
    return this.keys.has(mapKey(norm(domain), selector));
  }

  /** The TXT record to publish; zoneLine is ready to paste into a BIND zone file. */
  dnsRecord(domain: string, selector: string): { name: string; value: string; zoneLine: string } {
    const d = norm(domain);
    const key = this.get(d, selector);
    const name = `${selector}._domainkey.${d}`;
    const value = `v=DKIM1; k=rsa; p=${key.publicB64}`;
    // A TXT character-string holds at most 255 octets; longer values are several strings
    // that resolvers concatenate. A 2048-bit key (~400 characters) needs two.
    const chunks: string[] = [];
    for (let i = 0; i < value.length; i += 255) chunks.push(value.slice(i, i + 255));
    const zoneLine = `${name}. IN TXT ${chunks.map((c) => `"${c.replace(/["\\]/g, '\\$&')}"`).join(' ')}`;
    return { name, value, zoneLine };
  }

  /**
   * Signs a message (relaxed/relaxed, rsa-sha256, mailauth's default header list: From,
   * Sender, Reply-To, To, Cc, Subject, Date, Message-ID, In-Reply-To, References, MIME and
   * List-* fields...). Returns the DKIM-Signature field, folded, ending in CRLF, to send
   * before the unchanged message. Give a stream factory for big messages: the message
   * is hashed as it streams, never held in memory. A message without a body (no empty
   * line) is signed as having an empty one, which is how RFC 6376 treats it.
   * Throws for an unknown domain/selector or when mailauth produced no signature.
   */
  async sign(message: Buffer | (() => NodeJS.ReadableStream), domain: string, selector: string): Promise<string> {
    const d = norm(domain);
    const key = this.get(d, selector);
    const { dkimSign } = await loadSigner();
    const entry: DKIMSignOptions = { signingDomain: d, selector, privateKey: key.privatePem };
    // mailauth reads only `signatureData`: the top-level signingDomain/selector/privateKey its
    // typings require are ignored, and without signatureData it silently returns no signature.
    // `headerList` is left out on purpose: typed string[], but an array is silently ignored
    // (only a colon-separated string is read).
    const opts: DKIMSignOptions = { ...entry, canonicalization: 'relaxed/relaxed', algorithm: 'rsa-sha256', signatureData: [entry] };

    let result: Awaited<ReturnType<typeof dkimSign>>;
    if (Buffer.isBuffer(message)) {
      result = await dkimSign(withHeaderEnd(message), opts);
    } else {
      const source = message();
      const input = new HeaderEndGuard();
      pipeline(source, input, () => undefined); // errors reach dkimSign through `input`
      try {
        result = await dkimSign(input, opts);
      } finally {
        // If mailauth failed midway, stop reading the (possibly 50 MiB) file.
        (source as Readable).destroy?.();
        input.destroy();
      }
    }

    // mailauth reports failures (a bad key, say) in `errors`, as { err } records despite
    // the Error[] typing, and resolves anyway.
    const failure = result.errors[0] as unknown as { err?: Error; message?: string } | undefined;
    if (failure) throw new Error(`DKIM signing failed for d=${d} s=${selector}: ${failure.err?.message ?? failure.message ?? String(failure)}`);
    if (!/^DKIM-Signature:/i.test(result.signatures)) throw new Error(`DKIM signing produced no signature for d=${d} s=${selector}`);
    return result.signatures.endsWith('\r\n') ? result.signatures : result.signatures + '\r\n';
  }

  private get(domain: string, selector: string): DkimKey {
    const key = this.keys.get(mapKey(domain, selector));
    if (!key) throw new Error(`no DKIM key for domain "${domain}" selector "${selector}" (expected ${join(this.dir, `${domain}.${selector}.key`)})`);
    return key;
  }
}

function parseKey(pem: string, file: string): DkimKey {
  const priv = createPrivateKey({ key: pem, format: 'pem' });
  // dnsRecord() publishes k=rsa; an ed25519 or EC key would need a different record.
  if (priv.asymmetricKeyType !== 'rsa') throw new Error(`not an RSA key (${priv.asymmetricKeyType})`);
  const publicB64 = createPublicKey(priv).export({ type: 'spki', format: 'der' }).toString('base64');
  return { privatePem: pem, publicB64, file };
}

// Domains and selectors become file names: anything else would let a bad config value
// write outside the key directory.
function checkDomain(d: string): void {
  if (!DOMAIN.test(d)) throw new Error(`invalid DKIM signing domain "${d}"`);
}

function checkSelector(s: string): void {
  if (!SELECTOR.test(s)) throw new Error(`invalid DKIM selector "${s}" (expected one DNS label such as mlsd)`);
}

/** Index just past the LF of the empty line ending the header, or -1. */
function headerEnd(buf: Buffer, from = 0): number {
  for (let i = buf.indexOf(0x0a, from); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

// mailauth finishes the header (and so signs anything) only once it has seen the empty
// line; a headers-only message would get no signature and no error. Giving it the empty
// body such a message is deemed to have yields the signature a verifier computes.
function withHeaderEnd(buf: Buffer): Buffer {
  if (headerEnd(buf) >= 0) return buf;
  return Buffer.concat([buf, Buffer.from(buf.length && buf[buf.length - 1] === 0x0a ? '\r\n' : '\r\n\r\n')]);
}

/** Streaming form of withHeaderEnd: passes data through, adds the empty line at the end if none came. */
class HeaderEndGuard extends Transform {
  private seen = false;
  private tail = Buffer.alloc(0); // last bytes of the previous chunk, for a boundary split across chunks

  override _transform(chunk: Buffer | string, enc: BufferEncoding, cb: TransformCallback): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, enc) : chunk;
    if (!this.seen && buf.length) {
      const joined = Buffer.concat([this.tail, buf]);
      if (headerEnd(joined) >= 0) this.seen = true;
      else this.tail = joined.subarray(Math.max(0, joined.length - 2));
    }
    cb(null, buf);
  }

  override _flush(cb: TransformCallback): void {
    if (!this.seen) this.push(this.tail.length && this.tail[this.tail.length - 1] === 0x0a ? '\r\n' : '\r\n\r\n');
    cb();
  }
}
