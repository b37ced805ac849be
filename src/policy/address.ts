/**
 * Envelope address handling for policy decisions. The rule is: an address is split on
 * its last "@"; anything that could make another MTA see a different destination than
 * we do (quotes, address literals, trailing dots, a second "@", "%" or "!" routing, full
 * stops other than ".") is either refused or stays an opaque local part. Nothing here
 * ever re-routes.
 *
 * One form is stored and compared: the local part lower-cased in Unicode NFC, the domain
 * in lower-case A-labels (core/names.ts checkDomain). A-label and U-label spellings of an
 * address are therefore the same address everywhere (accounts, aliases, local and relay
 * domains, the queue).
 */

import { checkDomain, DOMAIN_PATTERN, toAsciiDomain, toUnicodeDomain } from '../core/names.js';

export interface AddressParts {
  local: string;
  domain: string;
}

// RFC 5321 atext. "%" and "!" are atext, so they may appear; they are never interpreted as routing.
const ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-";
// RFC 6531 adds UTF8-non-ascii to atext. Of it we take letters, marks, digits, punctuation
// and symbols: not controls, format characters (bidi overrides, zero-width joiners),
// spaces, private use, or U+FFFD (what a byte that was not UTF-8 decodes to).
const UTF8_ATEXT = '(?=[^\\x00-\\x7f])(?!\\uFFFD)[\\p{L}\\p{M}\\p{N}\\p{P}\\p{S}]';
const ATOM = `(?:[${ATEXT}]|${UTF8_ATEXT})+`;
// Dot-atom local part: no leading/trailing/double dots.
const LOCAL_PART = new RegExp(`^${ATOM}(?:\\.${ATOM})*$`, 'u');
const DOMAIN = DOMAIN_PATTERN;
/** RFC 5321 4.5.3.1.1: 64 octets (of UTF-8, RFC 6531 3.3). */
const MAX_LOCAL_OCTETS = 64;

/**
 * The stored form of an address (see the top of this file); the domain is converted to
 * A-labels when it is a valid domain and left as given (lower-cased) otherwise, so that
 * splitAddress refuses it. Null for a blank address (the null sender).
 */
export function normalizeAddress(address: string): string | null {
  const trimmed = address.trim();
  if (!trimmed) return null;
  const at = trimmed.lastIndexOf('@');
  // No domain: "postmaster" (RFC 5321 4.1.1.3), or something splitAddress refuses.
  if (at < 0) return trimmed.normalize('NFC').toLowerCase();
  const local = trimmed.slice(0, at).normalize('NFC').toLowerCase();
  const domain = trimmed.slice(at + 1);
  const d = checkDomain(domain);
  return `${local}@${d.ok ? d.domain : domain.toLowerCase()}`;
}

/**
 * Splits a normalized address. Returns null for anything not a plain dot-atom@domain:
 * quoted local parts, address literals ([1.2.3.4]), trailing dots, domains not in their
 * stored A-label form, empty parts. A UTF-8 local part passes (see needsSmtpUtf8).
 */
export function splitAddress(address: string): AddressParts | null {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return null;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (Buffer.byteLength(local) > MAX_LOCAL_OCTETS || !LOCAL_PART.test(local)) return null;
  // The pattern alone would pass an "xn--" label that is not valid punycode.
  if (!DOMAIN.test(domain) || toAsciiDomain(domain) !== domain) return null;
  return { local, domain };
}

/**
 * True when a normalized address can travel only with SMTPUTF8 (RFC 6531): its local
 * part is not ASCII. (Its domain never needs it: it is stored in A-labels.)
 */
export function needsSmtpUtf8(address: string): boolean {
  return /[^\x00-\x7f]/.test(address);
}

/** Why an address given by an administrator is refused, in words; null when it is fine. */
export function addressProblem(address: string): string | null {
  const trimmed = address.trim();
  const at = trimmed.lastIndexOf('@');
  if (at > 0) {
    const d = checkDomain(trimmed.slice(at + 1));
    if (!d.ok) return d.reason;
  }
  const norm = normalizeAddress(trimmed);
  return norm && splitAddress(norm) ? null : `${address}: not a valid address (expected user@example.test)`;
}

/** A stored address as people read it: the domain in U-labels (for messages to administrators). */
export function displayAddress(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? address : `${address.slice(0, at)}@${toUnicodeDomain(address.slice(at + 1))}`;
}
