import { replies, type Reply } from './reply.js';
import type { HeaderCollector } from './headers.js';
import { normalizeAddress } from '../policy/address.js';

/**
 * Whether a received message has come round a mail loop, judged at end of DATA from its
 * header block:
 * - more hops than smtp.maxHops: the Received fields, our own counted (the one we put in
 *   front of it), as Postfix's hopcount_limit counts them; Delivered-To is not a hop;
 * - a recipient already named in a Delivered-To field: we stamped it when an alias here
 *   forwarded the message out, and a remote forward sent it back (Postfix's local(8) rule).
 * Both sides are compared in one form (normalizeAddress: NFC, lower case, A-label domain),
 * the header read as UTF-8, so an alias with a UTF-8 local part is caught at the first turn.
 * A looping message is refused whole: the sending server bounces it to its sender, so no
 * recipient's copy vanishes silently.
 */
export function loopRefusal(headers: HeaderCollector, rcpt: string[], maxHops: number): { reply: Reply; extra: Record<string, unknown> } | null {
  const hops = headers.countFields('received') + 1;
  if (hops > maxHops) return { reply: replies.tooManyHops, extra: { hops, maxHops } };
  const same = (a: string) => normalizeAddress(a) ?? a;
  const delivered = new Set(headers.deliveredTo().map(same));
  const looping = rcpt.filter((r) => delivered.has(same(r)));
  if (looping.length) return { reply: { ...replies.forwardingLoop, text: `${replies.forwardingLoop.text} ${looping.join(', ')}` }, extra: { looping } };
  return null;
}
