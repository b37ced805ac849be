import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The HA wire formats. The network link is a TLS-PSK stream of frames: a JSON header and
 * an optional binary body (a message, a mailbox file), each prefixed by its length. The
 * serial link carries only heartbeats and control notices, one signed line each: at
 * 115200 baud a mail body would starve the heartbeats.
 */

/**
 * The version of the HA wire formats. Version 1 had no number at all (a frame or line
 * without `v` is from it). 2: serial lines carry the sender's boot and a counter inside
 * the HMAC (serial-guard.ts), and a join carries each file's size and hash.
 */
export const HA_WIRE_VERSION = 2;

export interface Frame {
  header: FrameHeader;
  body: Buffer | null;
}

export type FrameHeader = { t: string; [k: string]: unknown };

/** A frame longer than this is a broken or hostile peer, not a message (smtp.maxMessageBytes tops at well below). */
const MAX_FRAME_BYTES = 256 * 1024 * 1024;

export function encodeFrame(header: FrameHeader, body?: Buffer | null): Buffer[] {
  const json = Buffer.from(JSON.stringify(header));
  const pre = Buffer.allocUnsafe(8);
  pre.writeUInt32BE(json.length, 0);
  pre.writeUInt32BE(body?.length ?? 0, 4);
  return body?.length ? [pre, json, body] : [pre, json];
}

/** Reassembles frames from stream chunks. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Frame[] = [];
    for (;;) {
      if (this.buffered < 8) break;
      const pre = this.peek(8);
      const jsonLen = pre.readUInt32BE(0);
      const bodyLen = pre.readUInt32BE(4);
      if (jsonLen + bodyLen > MAX_FRAME_BYTES) throw new Error(`frame of ${jsonLen + bodyLen} bytes is over the limit`);
      if (this.buffered < 8 + jsonLen + bodyLen) break;
      const all = this.take(8 + jsonLen + bodyLen);
      const header = JSON.parse(all.subarray(8, 8 + jsonLen).toString('utf8')) as FrameHeader;
      if (typeof header?.t !== 'string') throw new Error('frame without a type');
      out.push({ header, body: bodyLen ? all.subarray(8 + jsonLen) : null });
    }
    return out;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined.subarray(0, n);
  }

  private take(n: number): Buffer {
    const joined = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = joined.subarray(0, n);
    const rest = joined.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}

/** Per-purpose keys derived from the one shared secret. */
export function deriveKey(sharedKey: string, purpose: 'psk' | 'heartbeat'): Buffer {
  return createHmac('sha256', sharedKey).update(`mlsd-ha-${purpose}-v1`).digest();
}

/** A serial line: the JSON, a space, its HMAC in hex, a newline. */
export function signLine(body: object, key: Buffer): string {
  const json = JSON.stringify(body);
  return `${json} ${createHmac('sha256', key).update(json).digest('hex')}\n`;
}

/** The line's JSON if its HMAC is right; null for a forged, damaged or foreign line. */
export function verifyLine(line: string, key: Buffer): FrameHeader | null {
  const sp = line.lastIndexOf(' ');
  if (sp < 0) return null;
  const json = line.slice(0, sp);
  // Buffer.from(…, 'hex') stops quietly at the first non-hex pair: check the form first.
  const hex = line.slice(sp + 1).trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) return null;
  const mac = Buffer.from(hex, 'hex');
  const want = createHmac('sha256', key).update(json).digest();
  if (mac.length !== want.length || !timingSafeEqual(mac, want)) return null;
  try {
    const v = JSON.parse(json) as FrameHeader;
    return typeof v?.t === 'string' ? v : null;
  } catch {
    return null;
  }
}
