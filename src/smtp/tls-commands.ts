// `tls show` and `tls install`: the box's certificate (one for SMTP STARTTLS and the web
// admin's HTTPS, kept in <config-dir>/tls and replicated to an HA peer like any config file).
// An installed certificate is checked before anything is written: a box that cannot present
// its certificate is a box nobody can log in to over HTTPS.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandSpec } from '../commands/registry.js';
import type { EventInput } from '../events/events.js';
import { writeFileAtomic } from '../store/atomic.js';

export interface TlsCommandDeps {
  configDir: string;
  now: () => number;
  emit: (ev: EventInput) => void;
  /** Puts a new certificate to use where that can be done live; returns what it did, one line each. */
  apply: (m: { cert: string; key: string }) => Promise<string[]>;
}

export interface CertificateFacts {
  subject: string;
  issuer: string;
  subjectAltNames: string[];
  validFrom: string;
  validTo: string;
  expired: boolean;
  selfSigned: boolean;
  fingerprint256: string;
  /** Certificates in cert.pem: the box's own, then the intermediates. */
  chainLength: number;
}

/**
 * The PEM blocks of a text, by label (CERTIFICATE, PRIVATE KEY, ...), read line by line: a
 * regular expression over a hostile megabyte of BEGIN lines without END would take minutes.
 */
function pemBlocks(text: string): { label: string; pem: string }[] {
  const out: { label: string; pem: string }[] = [];
  let open: { label: string; lines: string[] } | null = null;
  // Each marker on a line of its own: files pasted one after another may glue an END to the next BEGIN.
  const lines = text.replace(/-----(BEGIN|END) ([A-Z0-9 ]{1,40})-----/g, '\n-----$1 $2-----\n').split('\n');
  for (const raw of lines) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '') continue;
    const begin = /^-----BEGIN ([A-Z0-9 ]{1,40})-----$/.exec(line);
    if (begin) {
      open = { label: begin[1]!, lines: [line] };
      continue;
    }
    if (!open) continue;
    open.lines.push(line);
    if (line === `-----END ${open.label}-----`) {
      out.push({ label: open.label, pem: `${open.lines.join('\n')}\n` });
      open = null;
    }
  }
  return out;
}

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ', ');

export function certificateFacts(chain: X509Certificate[], now: number): CertificateFacts {
  const leaf = chain[0]!;
  return {
    subject: oneLine(leaf.subject),
    issuer: oneLine(leaf.issuer),
    subjectAltNames: (leaf.subjectAltName ?? '').split(/,\s*/).filter(Boolean),
    validFrom: new Date(leaf.validFrom).toISOString(),
    validTo: new Date(leaf.validTo).toISOString(),
    expired: Date.parse(leaf.validTo) < now,
    selfSigned: leaf.checkIssued(leaf) && leaf.verify(leaf.publicKey),
    fingerprint256: leaf.fingerprint256,
    chainLength: chain.length,
  };
}

/**
 * Reads "certificate chain + private key" as one PEM text and checks it: every certificate
 * parses, they are in order (each issued by the next), exactly one unencrypted key that
 * belongs to the first certificate, and the certificate is valid now. Throws one line.
 */
export function checkTlsBundle(text: string, now: number): { chain: X509Certificate[]; key: KeyObject } {
  const blocks = pemBlocks(text);
  const certs = blocks.filter((b) => b.label === 'CERTIFICATE');
  const keys = blocks.filter((b) => /PRIVATE KEY$/.test(b.label));
  if (!certs.length) throw new Error('tls install: no PEM certificate in the input (give the certificate chain, then the private key, both PEM)');
  if (!keys.length) throw new Error('tls install: no PEM private key in the input (give the certificate chain, then the private key, both PEM)');
  if (keys.length > 1) throw new Error(`tls install: ${keys.length} private keys in the input; give exactly one`);
  if (keys[0]!.label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type: 4,ENCRYPTED/.test(keys[0]!.pem)) throw new Error('tls install: the private key is encrypted with a passphrase; give it unencrypted (openssl pkey -in key.pem)');
  const chain = certs.map((c, i) => {
    try {
      return new X509Certificate(c.pem);
    } catch (err) {
      throw new Error(`tls install: certificate ${i + 1} does not parse (${(err as Error).message})`);
    }
  });
  let key: KeyObject;
  try {
    key = createPrivateKey(keys[0]!.pem);
  } catch (err) {
    throw new Error(`tls install: the private key does not parse (${(err as Error).message})`);
  }
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(key)) throw new Error(`tls install: the private key does not belong to the certificate (${oneLine(leaf.subject)}); nothing was changed`);
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!)) throw new Error(`tls install: certificate ${i + 2} did not issue certificate ${i + 1}; put the box's certificate first, then its intermediates in order`);
  }
  if (Date.parse(leaf.validTo) < now) throw new Error(`tls install: the certificate expired on ${new Date(leaf.validTo).toISOString()}; nothing was changed`);
  if (Date.parse(leaf.validFrom) > now) throw new Error(`tls install: the certificate is not valid before ${new Date(leaf.validFrom).toISOString()} (is the box's clock right?); nothing was changed`);
  return { chain, key };
}

function showText(f: CertificateFacts): string {
  return [
    `subject:      ${f.subject}`,
    `issuer:       ${f.issuer}${f.selfSigned ? ' (self-signed)' : ''}`,
    `names:        ${f.subjectAltNames.join(', ') || '(none)'}`,
    `valid:        ${f.validFrom} to ${f.validTo}${f.expired ? ' (EXPIRED)' : ''}`,
    `SHA-256:      ${f.fingerprint256}`,
    `chain:        ${f.chainLength} certificate${f.chainLength === 1 ? '' : 's'}`,
  ].join('\n');
}

export function tlsCommands(d: TlsCommandDeps): CommandSpec[] {
  const dir = join(d.configDir, 'tls');
  return [
    {
      name: 'tls show',
      summary: "the box's certificate: subject, issuer, names, validity, SHA-256 fingerprint",
      standby: true,
      run: async () => {
        const pem = await readFile(join(dir, 'cert.pem'), 'utf8').catch(() => null);
        if (pem === null) throw new Error('tls show: no certificate yet (one is made at the first start)');
        const chain = pemBlocks(pem)
          .filter((b) => b.label === 'CERTIFICATE')
          .map((b) => new X509Certificate(b.pem));
        if (!chain.length) throw new Error(`tls show: ${join(dir, 'cert.pem')} holds no certificate`);
        const facts = certificateFacts(chain, d.now());
        return { text: showText(facts), json: facts };
      },
    },
    {
      name: 'tls install',
      summary: 'install a certificate: its PEM chain and private key on standard input, checked first',
      stdin: true,
      // tls/*.pem come from the active box: one installed on a standby would be overwritten.
      standby: false,
      run: async (input) => {
        const { chain, key } = checkTlsBundle(input.stdin ?? '', d.now());
        const cert = chain.map((c) => c.toString().trimEnd() + '\n').join('');
        const keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
        // The key first: a crash between the two leaves the old certificate with a key that
        // does not fit it, and the next `tls install` of the same bundle repairs that.
        await writeFileAtomic(join(dir, 'key.pem'), keyPem, 0o600);
        await writeFileAtomic(join(dir, 'cert.pem'), cert, 0o644);
        const facts = certificateFacts(chain, d.now());
        const applied = await d.apply({ cert, key: keyPem }).catch((err: Error) => [`the web admin keeps its old certificate until the next start (${err.message})`]);
        d.emit({ kind: 'tls.installed', severity: 'info', text: `TLS certificate installed: ${facts.subject}, valid to ${facts.validTo}, SHA-256 ${facts.fingerprint256}`, data: { subject: facts.subject, fingerprint256: facts.fingerprint256, validTo: facts.validTo } });
        const lines = [`certificate installed: ${facts.subject}, valid to ${facts.validTo}`, `SHA-256 ${facts.fingerprint256}`, ...applied, 'SMTP (STARTTLS) presents it from the next start of the mail service (a restart of mlsd or an HA switchover)'];
        return { text: lines.join('\n'), json: { installed: facts, applied } };
      },
    },
  ];
}
