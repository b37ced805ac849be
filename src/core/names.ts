/** The shapes of names mlsd accepts, one definition each (config, address checks and DKIM share them). */

import { domainToASCII, domainToUnicode } from 'node:url';

/** A lower-case DNS domain of two labels or more, as used for mail domains. */
export const DOMAIN_PATTERN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

/** One lower-case DNS label (a DKIM selector). */
export const DNS_LABEL_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * The domain of an address: what follows its last "@", lower-cased (domains compare
 * without case; routing and local-domain checks must agree on that).
 */
export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/**
 * Full stops other than "." that IDNA (UTS-46) maps to "." (ideographic, full-width and
 * half-width). Refused rather than mapped: an MTA that does not map them would see other
 * labels than we do, and a domain must mean the same thing to every hop.
 */
const DOT_LIKE = /[\u3002\uff0e\uff61]/;

export type DomainCheck = { ok: true; domain: string } | { ok: false; reason: string };

/**
 * A mail domain in its one stored and compared form: lower-case ASCII, with A-labels for
 * internationalised labels (what DNS and DKIM use). Takes A-labels or U-labels (台灣.台灣
 * and xn--kpry57d.xn--kpry57d give the same result), in any case. IDNA itself is Node's
 * (url.domainToASCII, UTS-46): invalid punycode, disallowed code points and the bidi
 * rules are its judgement. A U-label that IDNA would have to *map* to something other
 * than its lower case (full-width letters, decomposed accents) is refused with the form
 * to write instead, so that what an administrator or a client typed is what we store.
 */
export function checkDomain(input: string): DomainCheck {
  if (DOT_LIKE.test(input)) return { ok: false, reason: `${input}: contains a full stop other than "." (such as 。); write the domain with "."` };
  const lower = input.toLowerCase();
  const ascii = domainToASCII(lower);
  if (!ascii) return { ok: false, reason: `${input}: not a valid domain name (invalid internationalised label or punycode)` };
  if (!DOMAIN_PATTERN.test(ascii)) return { ok: false, reason: `${input}: expected a domain name such as example.test or 例子.測試 (labels of 1-63 letters, digits or hyphens, at least two labels)` };
  const given = lower.split('.');
  const asciiLabels = ascii.split('.');
  const unicodeLabels = domainToUnicode(ascii).split('.');
  const stable = given.every((l, i) => l === asciiLabels[i] || l === unicodeLabels[i]);
  if (!stable) return { ok: false, reason: `${input}: not in IDNA form; did you mean ${unicodeLabels.join('.')}?` };
  return { ok: true, domain: ascii };
}

/** The stored form of a domain (see checkDomain), or null when it is not a valid one. */
export function toAsciiDomain(input: string): string | null {
  const c = checkDomain(input);
  return c.ok ? c.domain : null;
}

/** A domain as people read it (U-labels), for messages and listings; the input is a stored form. */
export function toUnicodeDomain(ascii: string): string {
  return domainToUnicode(ascii) || ascii;
}

/** An address lower-cased, with its domain in the stored form; null when it has no valid domain. */
export function withAsciiDomain(address: string): string | null {
  const at = address.lastIndexOf('@');
  const domain = at < 0 ? null : toAsciiDomain(address.slice(at + 1));
  return domain === null ? null : `${address.slice(0, at).toLowerCase()}@${domain}`;
}
