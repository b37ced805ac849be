import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';
import type { BackupKeys } from './keys.js';

/**
 * Objects on a backup target: the file's bytes under AES-256-GCM, bound by the
 * authenticated data to the object's name (a file swapped for another on the NAS fails to
 * open). Layout: magic, 12-byte nonce, ciphertext, 16-byte tag. Streamed: a WebDisk file
 * of gigabytes never sits in memory.
 */
const MAGIC = Buffer.from('MLB1');
const NONCE = 12;
const TAG = 16;

export class SealError extends Error {}

/** The SHA-256 of a local file, hex. */
export async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/** An object's name: keyed by the content hash, so equal files are one object and the name reveals nothing. */
export function objectName(keys: BackupKeys, sha256: string): string {
  return createHmac('sha256', keys.name).update(sha256).digest('hex');
}

/** Encrypts `src` into `dst` (a new file), bound to `name`. */
export async function sealFile(keys: BackupKeys, name: string, src: string, dst: string): Promise<number> {
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', keys.seal, nonce);
  c.setAAD(Buffer.from(name));
  const out = createWriteStream(dst, { flags: 'wx', mode: 0o600 });
  out.write(Buffer.concat([MAGIC, nonce]));
  await pipeline(createReadStream(src, { highWaterMark: 1 << 20 }), c, out, { end: false });
  await new Promise<void>((res, rej) => out.end(c.getAuthTag(), (err?: Error | null) => (err ? rej(err) : res())));
  return out.bytesWritten;
}

/**
 * Decrypts `src` into `dst` and checks the plaintext's SHA-256 against `sha256`. `dst` is
 * written under a temporary name and renamed only when the tag and the hash both hold, so
 * a damaged or forged object never lands as a file.
 */
export async function openFile(keys: BackupKeys, name: string, src: string, dst: string, sha256: string, o: { mode?: number; tmpDir?: string } = {}): Promise<void> {
  const mode = o.mode ?? 0o600;
  const fh = await open(src, 'r');
  let size: number;
  let head: Buffer;
  let tag: Buffer;
  try {
    size = (await fh.stat()).size;
    if (size < MAGIC.length + NONCE + TAG) throw new SealError(`object ${name} is truncated (${size} bytes)`);
    head = Buffer.alloc(MAGIC.length + NONCE);
    await fh.read(head, 0, head.length, 0);
    tag = Buffer.alloc(TAG);
    await fh.read(tag, 0, TAG, size - TAG);
  } finally {
    await fh.close();
  }
  if (!head.subarray(0, MAGIC.length).equals(MAGIC)) throw new SealError(`object ${name} is not a backup object`);
  const d = createDecipheriv('aes-256-gcm', keys.seal, head.subarray(MAGIC.length));
  d.setAAD(Buffer.from(name));
  d.setAuthTag(tag);
  const h = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      h.update(chunk);
      cb(null, chunk);
    },
  });
  // In another folder of the same disk when asked: a Maildir's new/ must never show a part.
  const tmp = join(o.tmpDir ?? dirname(dst), `.${basename(dst)}.${randomBytes(4).toString('hex')}.part`);
  try {
    // An empty file seals to no ciphertext at all (a stream over no bytes cannot be asked for).
    const body = size - TAG > head.length ? createReadStream(src, { start: head.length, end: size - TAG - 1, highWaterMark: 1 << 20 }) : Readable.from([]);
    const out = createWriteStream(tmp, { flags: 'wx', mode });
    await pipeline(body, d, tap, out).catch((err: Error) => {
      throw new SealError(`object ${name} fails authentication (${err.message}): damaged or not ours`);
    });
    const got = h.digest('hex');
    if (got !== sha256) throw new SealError(`object ${name} holds other content than the manifest says (sha256 ${got.slice(0, 12)}…, expected ${sha256.slice(0, 12)}…)`);
    const fh2 = await open(tmp, 'r+');
    await fh2.sync().finally(() => fh2.close());
    await rename(tmp, dst);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** Small things (manifests): sealed in memory, bound to their name. */
export function sealBytes(keys: BackupKeys, name: string, plain: Buffer): Buffer {
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', keys.seal, nonce);
  c.setAAD(Buffer.from(name));
  return Buffer.concat([MAGIC, nonce, c.update(plain), c.final(), c.getAuthTag()]);
}

export function openBytes(keys: BackupKeys, name: string, sealed: Buffer): Buffer {
  if (sealed.length < MAGIC.length + NONCE + TAG || !sealed.subarray(0, MAGIC.length).equals(MAGIC)) throw new SealError(`${name} is not a backup object`);
  const d = createDecipheriv('aes-256-gcm', keys.seal, sealed.subarray(MAGIC.length, MAGIC.length + NONCE));
  d.setAAD(Buffer.from(name));
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  try {
    return Buffer.concat([d.update(sealed.subarray(MAGIC.length + NONCE, sealed.length - TAG)), d.final()]);
  } catch {
    throw new SealError(`${name} fails authentication: damaged, or sealed with another key`);
  }
}
