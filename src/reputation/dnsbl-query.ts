import { isIPv4 } from 'node:net';
import type { Clock, Timer } from '../core/clock.js';

/**
 * Asking a DNS blacklist about one address, and reading what its answer means. The look-ups
 * go through an injected resolver (the daemon's Resolver pointed at dns.servers): several
 * lists, Spamhaus first, refuse queries that come through big public resolvers, so which
 * server asks is configuration, not this module's choice.
 */

/** The part of node's `dns.promises.Resolver` this module uses. */
export interface DnsblLookup {
  resolve4(name: string): Promise<string[]>;
  resolveTxt(name: string): Promise<string[][]>;
}

export type DnsblState = 'listed' | 'clear' | 'error';

/** The outcome of one look-up of one address on one list. */
export interface DnsblResult {
  state: DnsblState;
  /** Listing codes from the A answer, comma-separated when there are several (zen can say 127.0.0.2 and 127.0.0.4 at once). */
  answer?: string;
  /** The list's TXT explanation, when it gave one. */
  reason?: string;
  /** Why the look-up failed (an error code such as ETIMEOUT, or what the answer meant). */
  error?: string;
}

/** 192.0.2.10 on zen.spamhaus.org → 10.2.0.192.zen.spamhaus.org */
export function dnsblQueryName(ip: string, zone: string): string {
  if (!isIPv4(ip)) throw new Error(`not an IPv4 address: ${ip}`);
  return `${ip.split('.').reverse().join('.')}.${zone}`;
}

// NXDOMAIN and "name exists but has no A record" both mean "not listed"; every other
// failure (timeout, SERVFAIL, REFUSED, no route to the server) means "we do not know".
const NOT_LISTED = new Set(['ENOTFOUND', 'ENODATA']);

/**
 * 127.255.255.0/24 is how Spamhaus (and lists copying its convention) say "we will not answer
 * you": .252 bad zone name, .254 query through a public/open resolver, .255 over the free
 * query limit. Read as a listing it would be a false alarm on every box behind 8.8.8.8, and
 * would reroute all its mail; read as clear it would hide a real listing. It is neither.
 */
function refusalMeaning(a: string): string {
  if (a === '127.255.255.252') return 'list refused the query: typing error in the list name';
  if (a === '127.255.255.254') return 'list refused the query: it came through a public/open resolver (set dns.servers to a resolver of your own)';
  if (a === '127.255.255.255') return 'list refused the query: over its free query limit';
  return `list refused the query (${a})`;
}

/** A failure as one short text for logs and status: the resolver's code when it has one. */
export function errorText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string') return e.code;
  return typeof e?.message === 'string' ? e.message : String(err);
}

/**
 * TXT text is written by whoever runs the list and ends up in logs, events and alert mail:
 * control characters (a CR LF could fake lines in the alert body) become spaces, and the
 * length is capped.
 */
function cleanReason(txt: string[][]): string | undefined {
  const s = txt
    .map((chunks) => chunks.join(''))
    .join('; ')
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .trim();
  if (!s) return undefined;
  return s.length > 300 ? `${s.slice(0, 299)}…` : s;
}

/** Asks one list about one address. Never rejects: a failure is an 'error' result. */
export async function queryDnsbl(lookup: DnsblLookup, ip: string, zone: string): Promise<DnsblResult> {
  let name: string;
  try {
    name = dnsblQueryName(ip, zone);
  } catch (err) {
    return { state: 'error', error: (err as Error).message };
  }
  let addrs: string[];
  try {
    addrs = await lookup.resolve4(name);
  } catch (err) {
    const code = (err as { code?: unknown })?.code;
    if (typeof code === 'string' && NOT_LISTED.has(code)) return { state: 'clear' };
    return { state: 'error', error: errorText(err) };
  }
  if (addrs.length === 0) return { state: 'clear' };
  const codes = addrs.filter((a) => a.startsWith('127.') && !a.startsWith('127.255.255.'));
  if (codes.length === 0) {
    const refusal = addrs.find((a) => a.startsWith('127.255.255.'));
    // An answer outside 127/8 is not a list's answer at all: typically a resolver that turns
    // NXDOMAIN into the address of an ISP search page.
    return { state: 'error', error: refusal ? refusalMeaning(refusal) : `unexpected answer ${addrs.join(', ')}` };
  }
  let reason: string | undefined;
  try {
    reason = cleanReason(await lookup.resolveTxt(name));
  } catch {
    // The reason only decorates the alert; the A answer alone is the listing.
  }
  return { state: 'listed', answer: codes.join(', '), ...(reason ? { reason } : {}) };
}

export interface DnsblQuery {
  ip: string;
  zone: string;
}

/**
 * Asks every (address, list) pair, at most `concurrency` at once; the results come back in
 * the order asked. A look-up still pending after `deadlineMs` counts as an error: rounds
 * never overlap, so one promise that never settles would otherwise stop all checking for good.
 */
export async function queryAll(
  lookup: DnsblLookup,
  queries: DnsblQuery[],
  opts: { clock: Clock; deadlineMs: number; concurrency: number },
): Promise<DnsblResult[]> {
  const results: DnsblResult[] = new Array(queries.length);
  let next = 0;
  const worker = async () => {
    while (next < queries.length) {
      const i = next++;
      const q = queries[i]!;
      results[i] = await withDeadline(queryDnsbl(lookup, q.ip, q.zone), opts.clock, opts.deadlineMs);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, queries.length) }, worker));
  return results;
}

function withDeadline(p: Promise<DnsblResult>, clock: Clock, ms: number): Promise<DnsblResult> {
  let t: Timer | undefined;
  const deadline = new Promise<DnsblResult>((resolve) => {
    t = clock.setTimeout(() => resolve({ state: 'error', error: `no answer in ${ms} ms` }), ms);
    t.unref();
  });
  return Promise.race([p, deadline]).finally(() => clock.clearTimeout(t));
}
