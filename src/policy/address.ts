/**
 * Envelope address handling for policy decisions. The rule is: an address is split on
 * its last "@"; anything that could make another MTA see a different destination than
 * we do (quotes, address literals, trailing dots, a second "@", "%" or "!" routing) is
 * either refused or stays an opaque local part. Nothing here ever re-routes.
 */

import { DOMAIN_PATTERN } from '../core/names.js';

export interface AddressParts {
  local: string;
  domain: string;
}

// RFC 5321 dot-atom local part: atext characters, no leading/trailing/double dots.
// "%" and "!" are atext, so they may appear; they are never interpreted as routing.
const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const DOMAIN = DOMAIN_PATTERN;

/** Lower-cases the domain (and the local part: mlsd mailboxes are case-insensitive). */
export function normalizeAddress(address: string): string | null {
  const trimmed = address.trim();
  if (!trimmed) return null;
  return trimmed.toLowerCase();
}

/**
 * Splits a normalized address. Returns null for anything not a plain dot-atom@domain:
 * quoted local parts, address literals ([1.2.3.4]), trailing dots, IDN U-labels that
 * were not given as ASCII, empty parts.
 */
export function splitAddress(address: string): AddressParts | null {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return null;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (local.length > 64 || !LOCAL_PART.test(local)) return null;
  if (!DOMAIN.test(domain)) return null;
  return { local, domain };
}
