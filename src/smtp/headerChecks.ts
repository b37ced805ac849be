import { replies, type Reply } from './reply.js';
import { MAX_HEADER_BYTES, type HeaderCollector } from './headers.js';

/**
 * Whether a received message's header block is one mlsd can judge, checked at end of DATA
 * for every client before the policy chain reads its From:
 * - a header block that does not end within MAX_HEADER_BYTES is refused (552 5.3.4): the
 *   part past the cap is never read here, so a From placed there would escape the From
 *   checks (Postfix's header_size_limit, refused rather than cut);
 * - more than one From field, in any spelling RFC 5322 §4.5 allows, is refused (550 5.7.1,
 *   as Gmail does): RFC 5322 §3.6 allows exactly one, and readers and DMARC checkers
 *   disagree on which of several counts, so no check of "the" From could be trusted.
 */
export function headerRefusal(headers: HeaderCollector): { reply: Reply; extra: Record<string, unknown> } | null {
  if (headers.headerTooLong) return { reply: replies.headerTooBig, extra: { maxHeaderBytes: MAX_HEADER_BYTES } };
  const fromFields = headers.countFields('from');
  if (fromFields > 1) return { reply: replies.multipleFromFields, extra: { fromFields } };
  return null;
}
