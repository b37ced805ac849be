import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, type DecipherGCM } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform, Writable } from 'node:stream';
import type { BackupKeys } from './keys.js';

/**
 * Objects on a backup target: the file's bytes under AES-256-GCM, checked against the
 * manifest's SHA-256 when opened (a file swapped for another on the NAS fails). Layout: magic, 12-byte nonce, ciphertext, 16-byte tag. Streamed: a WebDisk file
 * of gigabytes never sits in memory.
 */
const MAGIC = Buffer.from('MLB1');
const NONCE = 12;
const TAG = 16;
/** Files up to this size are sealed and opened in memory (a stream's setup costs more than a small file). */
const SMALL = 4 * 1024 * 1024;
/** Bytes a sealed object has beyond its content. */
export const SEAL_OVERHEAD = 4 + NONCE + TAG;

export class SealError extends Error {}

/** The SHA-256 of a local file, hex. */
export async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  // Most files are mail of a few KiB: one read beats a stream's setup many times over.
  const st = await stat(path);
  if (st.size <= SMALL) {
    const b = await readFile(path);
    return { sha256: createHash('sha256').update(b).digest('hex'), size: b.length };
  }
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

/**
 * The authenticated data of every object. Objects are not bound to their name: the manifest
 * names each file's SHA-256, and opening an object checks the plaintext against it, so an
 * object swapped for another (or for one of another box) is refused all the same. This lets
 * a file be hashed and sealed in one read, so what is sealed is always what is hashed.
 */
const OBJECT_AAD = Buffer.from('mlsd-backup-object-v1');

/** The content a sealed object holds, found while sealing it. */
export interface Sealed {
  sha256: string;
  size: number;
  name: string;
  /** The sealed file (in the folder given). */
  path: string;
}

/** Reads `src` once: hashes it and encrypts it into a new file in `dir`, named by its content. */
export async function sealFile(keys: BackupKeys, src: string, dir: string): Promise<Sealed> {
  if ((await stat(src)).size <= SMALL) return sealSmall(keys, await readFile(src), dir);
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', keys.seal, nonce);
  c.setAAD(OBJECT_AAD);
  const h = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      h.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  const tmp = join(dir, `.sealing-${randomBytes(6).toString('hex')}`);
  try {
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
    out.write(Buffer.concat([MAGIC, nonce]));
    await pipeline(createReadStream(src, { highWaterMark: 1 << 20 }), tap, c, out, { end: false });
    await new Promise<void>((res, rej) => out.end(c.getAuthTag(), (err?: Error | null) => (err ? rej(err) : res())));
    const sha256 = h.digest('hex');
    const name = objectName(keys, sha256);
    const path = join(dir, `obj-${name}`);
    await rename(tmp, path);
    return { sha256, size, name, path };
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** A small file sealed in memory (the common case: mail). */
async function sealSmall(keys: BackupKeys, plain: Buffer, dir: string): Promise<Sealed> {
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', keys.seal, nonce);
  c.setAAD(OBJECT_AAD);
  const body = Buffer.concat([MAGIC, nonce, c.update(plain), c.final(), c.getAuthTag()]);
  const sha256 = createHash('sha256').update(plain).digest('hex');
  const name = objectName(keys, sha256);
  const path = join(dir, `obj-${name}`);
  const tmp = join(dir, `.sealing-${randomBytes(6).toString('hex')}`);
  await writeFile(tmp, body, { flag: 'wx', mode: 0o600 });
  await rename(tmp, path);
  return { sha256, size: plain.length, name, path };
}

/** A small object opened in memory: its plaintext, checked against the tag and the manifest's hash. */
function openSmall(keys: BackupKeys, name: string, sealed: Buffer, sha256: string): Buffer {
  if (sealed.length < SEAL_OVERHEAD || !sealed.subarray(0, MAGIC.length).equals(MAGIC)) throw new SealError(`object ${name} is ${sealed.length < SEAL_OVERHEAD ? 'truncated' : 'not a backup object'}`);
  const d = createDecipheriv('aes-256-gcm', keys.seal, sealed.subarray(MAGIC.length, MAGIC.length + NONCE));
  d.setAAD(OBJECT_AAD);
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  let plain: Buffer;
  try {
    plain = Buffer.concat([d.update(sealed.subarray(MAGIC.length + NONCE, sealed.length - TAG)), d.final()]);
  } catch {
    throw new SealError(`object ${name} fails authentication: damaged, or not sealed with this box's key`);
  }
  const got = createHash('sha256').update(plain).digest('hex');
  if (got !== sha256) throw new SealError(`object ${name} holds other content than the manifest says (sha256 ${got.slice(0, 12)}…, expected ${sha256.slice(0, 12)}…)`);
  return plain;
}

/** The ciphertext of a sealed object file as a stream, and its decipher; a file too short or not ours is a SealError. */
async function decryptStream(keys: BackupKeys, name: string, src: string): Promise<{ body: Readable; decipher: DecipherGCM }> {
  const fh = await open(src, 'r');
  let size: number;
  const head = Buffer.alloc(MAGIC.length + NONCE);
  const tag = Buffer.alloc(TAG);
  try {
    size = (await fh.stat()).size;
    if (size < MAGIC.length + NONCE + TAG) throw new SealError(`object ${name} is truncated (${size} bytes)`);
    await fh.read(head, 0, head.length, 0);
    await fh.read(tag, 0, TAG, size - TAG);
  } finally {
    await fh.close();
  }
  if (!head.subarray(0, MAGIC.length).equals(MAGIC)) throw new SealError(`object ${name} is not a backup object`);
  const decipher = createDecipheriv('aes-256-gcm', keys.seal, head.subarray(MAGIC.length));
  decipher.setAAD(OBJECT_AAD);
  decipher.setAuthTag(tag);
  // An empty file seals to no ciphertext at all (a stream over no bytes cannot be asked for).
  const body = size - TAG > head.length ? createReadStream(src, { start: head.length, end: size - TAG - 1, highWaterMark: 1 << 20 }) : Readable.from([]);
  return { body, decipher };
}

/** Only a failed tag is the object's fault; a local read or write error is not (it must not condemn a good object). */
function authFailure(name: string, err: Error): Error {
  return /unable to authenticate|Unsupported state/i.test(err.message) ? new SealError(`object ${name} fails authentication: damaged, or not sealed with this box's key`) : err;
}

function hashTap(h: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      h.update(chunk);
      cb(null, chunk);
    },
  });
}

/**
 * Decrypts `src` into `dst` and checks the plaintext's SHA-256 against `sha256`. `dst` is
 * written under a temporary name and renamed only when the tag and the hash both hold, so a
 * damaged, forged or swapped object never lands as a file.
 */
export async function openFile(keys: BackupKeys, name: string, src: string, dst: string, sha256: string, o: { mode?: number; tmpDir?: string; sync?: boolean; size?: number } = {}): Promise<void> {
  // In another folder of the same disk when asked: a Maildir's new/ must never show a part.
  const tmp = join(o.tmpDir ?? dirname(dst), `.${basename(dst)}.${randomBytes(4).toString('hex')}.part`);
  try {
    // The size the manifest names saves a stat (an object of another size fails its tag all the same).
    if ((o.size !== undefined ? o.size + SEAL_OVERHEAD : (await stat(src)).size) <= SMALL + SEAL_OVERHEAD) await writeFile(tmp, openSmall(keys, name, await readFile(src), sha256), { flag: 'wx', mode: o.mode ?? 0o600 });
    else await openLarge(keys, name, src, tmp, sha256, o.mode ?? 0o600);
    // The caller may sync the whole file system once for many files instead (a restore's batch).
    if (o.sync !== false) {
      const fh2 = await open(tmp, 'r+');
      await fh2.sync().finally(() => fh2.close());
    }
    await rename(tmp, dst);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** A large object decrypted as a stream into `tmp`, its hash checked at the end. */
async function openLarge(keys: BackupKeys, name: string, src: string, tmp: string, sha256: string, mode: number): Promise<void> {
  const { body, decipher } = await decryptStream(keys, name, src);
  const h = createHash('sha256');
  const out = createWriteStream(tmp, { flags: 'wx', mode });
  await pipeline(body, decipher, hashTap(h), out).catch((err: Error) => {
    throw authFailure(name, err);
  });
  const got = h.digest('hex');
  if (got !== sha256) throw new SealError(`object ${name} holds other content than the manifest says (sha256 ${got.slice(0, 12)}…, expected ${sha256.slice(0, 12)}…)`);
}

/** Checks an object against the manifest's hash without writing its plaintext anywhere (the nightly verify). */
export async function checkObject(keys: BackupKeys, name: string, src: string, sha256: string): Promise<void> {
  if ((await stat(src)).size <= SMALL + SEAL_OVERHEAD) {
    openSmall(keys, name, await readFile(src), sha256);
    return;
  }
  const { body, decipher } = await decryptStream(keys, name, src);
  const h = createHash('sha256');
  await pipeline(body, decipher, hashTap(h), new Writable({ write: (_c, _e, cb) => cb() })).catch((err: Error) => {
    throw authFailure(name, err);
  });
  const got = h.digest('hex');
  if (got !== sha256) throw new SealError(`object ${name} holds other content than the manifest says (sha256 ${got.slice(0, 12)}…, expected ${sha256.slice(0, 12)}…)`);
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
