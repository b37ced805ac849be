/** The shapes of names mlsd accepts, one definition each (config, address checks and DKIM share them). */

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
