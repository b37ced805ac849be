import addressparser from 'nodemailer/lib/addressparser';

/** The header block mlsd reads (as Postfix's header_size_limit); a longer one is refused. */
export const MAX_HEADER_BYTES = 256 * 1024;
/** The bytes of an end of header block (CRLF CRLF) that begins just inside the cap. */
const END_MARK_BYTES = 4;

/**
 * Collects the header block of a message as it streams past (up to the first empty
 * line, or a cap), so the header From can be judged without a full MIME parse.
 * Header bytes are read as UTF-8 (RFC 6532): a name with a UTF-8 local part reads the
 * same here as in the envelope.
 */
export class HeaderCollector {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private done = false;
  private tooLong = false;

  push(chunk: Buffer): void {
    if (this.done) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    const joined = Buffer.concat(this.chunks);
    const end = findHeaderEnd(joined);
    // Read a few bytes past the cap before judging, so an end of header block that begins
    // just inside it is found however the bytes arrive.
    if (end >= 0 || this.bytes >= MAX_HEADER_BYTES + END_MARK_BYTES) {
      this.tooLong = end < 0 || end > MAX_HEADER_BYTES;
      // The cap holds however the bytes arrive: an end found past it in one big chunk is cut too.
      this.chunks = [joined.subarray(0, end >= 0 ? Math.min(end, MAX_HEADER_BYTES) : MAX_HEADER_BYTES)];
      this.done = true;
    } else {
      this.chunks = [joined];
    }
  }

  /**
   * The header block does not end within MAX_HEADER_BYTES. Such a message is refused, not
   * judged on the part that was kept: a From (or Received) past the cap would go unseen
   * here and be read by everyone downstream.
   */
  get headerTooLong(): boolean {
    return this.tooLong;
  }

  /** All header fields with the given name, unfolded (only the exact "Name:" spelling). */
  fields(name: string): string[] {
    const text = Buffer.concat(this.chunks).toString('utf8').replace(/\r?\n[ \t]+/g, ' ');
    const prefix = name.toLowerCase() + ':';
    return text
      .split(/\r?\n/)
      .filter((l) => l.toLowerCase().startsWith(prefix))
      .map((l) => l.slice(prefix.length).trim());
  }

  /**
   * The values of the header fields with this name, unfolded, counting the obsolete forms of
   * RFC 5322 §4.5 (white space before the colon, any case) that other software still reads
   * as the field: a hop count, a loop check or a From check must not be dodged by writing
   * "Received :" or "FROM\t:". Unfolding comes first, as a reader's does, so white space
   * folded onto the next line before the colon counts too.
   */
  fieldsLoose(name: string): string[] {
    const text = Buffer.concat(this.chunks).toString('utf8').replace(/\r?\n[ \t]+/g, ' ');
    const re = new RegExp(`^${name.replace(/[^A-Za-z0-9-]/g, '')}[ \\t]*:`, 'i');
    return text
      .split(/\r?\n/)
      .filter((l) => re.test(l))
      .map((l) => l.slice(l.indexOf(':') + 1).trim());
  }

  /** How many header fields have this name (obsolete forms included, as fieldsLoose). */
  countFields(name: string): number {
    return this.fieldsLoose(name).length;
  }

  /** The addresses of the Delivered-To fields (lower case, NFC, without angle brackets). */
  deliveredTo(): string[] {
    return this.fieldsLoose('delivered-to')
      .map((v) => v.replace(/^<|>$/g, '').trim().normalize('NFC').toLowerCase())
      .filter(Boolean);
  }

  /**
   * Addresses of every From field, in any spelling fieldsLoose reads (normally one field;
   * a message with more is refused, see headerRefusal). Only the addresses count: a display
   * name that looks like an address ("ceo@example.test" <x@remote.test>) is not one.
   */
  fromAddresses(): string[] {
    return this.fieldsLoose('from').flatMap((v) =>
      (addressparser(v, { flatten: true }) as { address?: string }[])
        .map((a) => (a.address ?? '').trim().toLowerCase())
        .filter(Boolean),
    );
  }
}

/**
 * Where the first empty line begins: the header block ends there. Line ends may be CRLF or
 * a bare LF, and mixed (smtp-server passes them through as the client sent them): "\n\r\n",
 * a bare-LF header line followed by a CRLF empty line, ends the block too, or the whole
 * message would be taken for header (and refused as too long, or for a From in its body).
 */
function findHeaderEnd(buf: Buffer): number {
  if (buf.length >= 2 && (buf.subarray(0, 2).toString() === '\r\n' || buf[0] === 0x0a)) return 0;
  const found = [buf.indexOf('\r\n\r\n'), buf.indexOf('\n\n'), buf.indexOf('\n\r\n')].filter((i) => i >= 0);
  return found.length ? Math.min(...found) : -1;
}

/** RFC 5321 4.4 trace header; `with` per RFC 3848 (ESMTP, ESMTPS, ESMTPSA, ESMTPA). */
export function receivedHeader(o: {
  helo: string;
  clientIp: string;
  hostname: string;
  id: string;
  tls: boolean;
  auth: boolean;
  /** The client said SMTPUTF8 on MAIL FROM: the protocol is then UTF8SMTP (RFC 6531 3.7.3). */
  smtputf8?: boolean;
  rcpt: string[];
  date: Date;
}): string {
  const proto = (o.smtputf8 ? 'UTF8SMTP' : 'ESMTP') + (o.tls ? 'S' : '') + (o.auth ? 'A' : '');
  const helo = o.helo.replace(/[^\x21-\x7e]/g, '?').slice(0, 255);
  const forPart = o.rcpt.length === 1 ? `\r\n\tfor <${o.rcpt[0]}>` : '';
  return `Received: from ${helo} ([${o.clientIp}])\r\n\tby ${o.hostname} (mlsd) with ${proto} id ${o.id}${forPart};\r\n\t${o.date.toUTCString().replace('GMT', '+0000')}\r\n`;
}
