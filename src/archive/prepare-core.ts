import type { ArchiveKeys } from './keys.js';
import { contentAddress, seal } from './seal.js';
import { extract, splitTrace, type Extracted } from './extract.js';

/** A message made ready for the archive: parsed, addressed, sealed. */
export interface Prepared {
  id: string;
  trace: string;
  extracted: Extracted;
  content: { address: string; sealed: Buffer; size: number };
  text: { address: string; sealed: Buffer };
}

/** The text a message is found by (and its snippet is cut from), kept as a blob of its own. */
export interface TextParts {
  body: string;
  attachmentText: string;
}

/**
 * The CPU-heavy part of archiving a message (parse, hash, compress, encrypt), a pure
 * function of its bytes: it runs in a worker thread (prepare.ts) so the thread that serves
 * SMTP only links records.
 */
export async function prepareMessage(keys: ArchiveKeys, encrypt: boolean, id: string, bytes: Buffer): Promise<Prepared> {
  const { trace, content } = splitTrace(bytes, id);
  const extracted = await extract(content);
  const parts: TextParts = { body: extracted.body, attachmentText: extracted.attachmentText };
  const text = Buffer.from(JSON.stringify(parts));
  const address = contentAddress(keys, content);
  const textAddress = contentAddress(keys, text);
  return {
    id,
    trace,
    extracted,
    content: { address, sealed: await seal(keys, address, content, encrypt), size: content.length },
    text: { address: textAddress, sealed: await seal(keys, textAddress, text, encrypt) },
  };
}
