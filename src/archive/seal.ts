import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { gunzip, gunzipSync, gzip, gzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import type { ArchiveKeys } from './keys.js';

/**
 * How the archive seals what it keeps: gzip, then (when `archive.encrypt` is on)
 * AES-256-GCM with a random nonce. The first byte says which, so an archive written with
 * encryption off stays readable when it is turned on, and the other way round.
 *
 *   compressed only: 0x01 | gzip
 *   encrypted:       0x02 | nonce (12) | tag (16) | AES-256-GCM(gzip)
 *
 * The associated data binds a sealed blob to where it belongs (its content address, or
 * the chain seq of a record body): moved elsewhere, it fails to open.
 */

const FORMAT_GZIP = 0x01;
const FORMAT_GCM = 0x02;
const NONCE = 12;
const TAG = 16;
const GZIP_LEVEL = 6;
// A tampered compressed-only blob could be a gzip bomb; no message inflates beyond this.
const MAX_OPENED = 1 << 30;
// Below this, zlib in the thread pool costs more in hops than it saves the event loop.
const SYNC_BELOW = 128 * 1024;

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

export type SealErrorKind = 'format' | 'tampered' | 'address';

/** A sealed blob or body that cannot be opened as it is: its kind says why. */
export class SealError extends Error {
  constructor(
    readonly kind: SealErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'SealError';
  }
}

const ADDRESS = /^[0-9a-f]{64}$/;

/**
 * The content address of some bytes: HMAC-SHA256 under the archive's address key, in hex.
 * Keyed, not a plain SHA-256, so that someone holding a message cannot confirm that it is
 * in the archive (or which messages are) by computing its hash.
 */
export function contentAddress(keys: ArchiveKeys, bytes: Buffer): string {
  return createHmac('sha256', keys.address).update(bytes).digest('hex');
}

export function isAddress(a: unknown): a is string {
  return typeof a === 'string' && ADDRESS.test(a);
}

function encrypt(keys: ArchiveKeys, aad: string, packed: Buffer): Buffer {
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', keys.seal, nonce);
  c.setAAD(Buffer.from(aad));
  const body = Buffer.concat([c.update(packed), c.final()]);
  return Buffer.concat([Buffer.from([FORMAT_GCM]), nonce, c.getAuthTag(), body]);
}

/** The compressed bytes inside a sealed blob (decrypted and authenticated when encrypted). */
function unwrap(keys: ArchiveKeys, aad: string, sealed: Buffer, what: string): Buffer {
  const format = sealed[0];
  if (format === FORMAT_GZIP) return sealed.subarray(1);
  if (format !== FORMAT_GCM) throw new SealError('format', `archive: ${what} has an unknown format byte ${format === undefined ? '(empty)' : format}`);
  if (sealed.length < 1 + NONCE + TAG) throw new SealError('format', `archive: ${what} is truncated (${sealed.length} bytes)`);
  const d = createDecipheriv('aes-256-gcm', keys.seal, sealed.subarray(1, 1 + NONCE));
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(sealed.subarray(1 + NONCE, 1 + NONCE + TAG));
  try {
    return Buffer.concat([d.update(sealed.subarray(1 + NONCE + TAG)), d.final()]);
  } catch {
    throw new SealError('tampered', `archive: ${what} fails authentication (altered, moved, or sealed with another key)`);
  }
}

function wrap(keys: ArchiveKeys, aad: string, packed: Buffer, encrypted: boolean): Buffer {
  return encrypted ? encrypt(keys, aad, packed) : Buffer.concat([Buffer.from([FORMAT_GZIP]), packed]);
}

const blobAad = (address: string) => `blob:${address}`;

/** Seals a blob stored under `address` (its content address). */
export async function seal(keys: ArchiveKeys, address: string, data: Buffer, encrypted: boolean): Promise<Buffer> {
  const o = { level: GZIP_LEVEL };
  return wrap(keys, blobAad(address), data.length < SYNC_BELOW ? gzipSync(data, o) : await gzipAsync(data, o), encrypted);
}

/**
 * Opens a sealed blob and checks that its content is the one its address names: this
 * catches any change to a compressed-only blob, and a blob sealed under another key.
 */
export async function open(keys: ArchiveKeys, address: string, sealed: Buffer): Promise<Buffer> {
  const what = `blob ${address.slice(0, 16)}`;
  const packed = unwrap(keys, blobAad(address), sealed, what);
  let data: Buffer;
  try {
    const o = { maxOutputLength: MAX_OPENED };
    data = packed.length < SYNC_BELOW / 4 ? gunzipSync(packed, o) : await gunzipAsync(packed, o);
  } catch (err) {
    throw new SealError('tampered', `archive: ${what} does not decompress (${(err as Error).message})`);
  }
  const actual = Buffer.from(contentAddress(keys, data), 'hex');
  const expected = Buffer.from(address, 'hex');
  if (expected.length !== actual.length || !timingSafeEqual(actual, expected)) throw new SealError('address', `archive: ${what}: its content does not match its address`);
  return data;
}

const chainAad = (seq: number) => `chain:${seq}`;

/**
 * Seals the JSON body of chain record `seq` (base64, as ChainRecord.sealed holds it).
 * Synchronous: bodies are small, and a chain append computes its mac at once.
 */
export function sealJson(keys: ArchiveKeys, seq: number, body: unknown, encrypted: boolean): string {
  return wrap(keys, chainAad(seq), gzipSync(Buffer.from(JSON.stringify(body)), { level: GZIP_LEVEL }), encrypted).toString('base64');
}

/** Opens the body of chain record `seq`; a body moved from another seq fails (when encrypted). */
export function openJson(keys: ArchiveKeys, seq: number, sealed: string): unknown {
  const what = `chain record ${seq}`;
  const packed = unwrap(keys, chainAad(seq), Buffer.from(sealed, 'base64'), what);
  try {
    return JSON.parse(gunzipSync(packed, { maxOutputLength: MAX_OPENED }).toString('utf8')) as unknown;
  } catch (err) {
    throw new SealError('tampered', `archive: ${what} does not decompress to JSON (${(err as Error).message})`);
  }
}
