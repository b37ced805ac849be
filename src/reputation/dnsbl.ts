import { isIPv4 } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';

/**
 * Watches whether the box's own outbound address (and, optionally, other addresses our mail
 * leaves through, such as the smarthost's) is listed on DNS blacklists. Being listed is how a
 * company finds its mail refused everywhere, so a listing is a critical event the moment it
 * is seen, and the reroute logic (dnsbl.autoReroute) follows `onChange`.
 *
 * The look-ups go through an injected resolver (the daemon's Resolver pointed at
 * dns.servers): several lists, Spamhaus first, refuse queries that come through big public
 * resolvers, so which server asks is configuration, not this module's choice.
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

export interface DnsblZoneStatus extends DnsblResult {
  zone: string;
  /** When this list was last asked about this address (ISO). */
  checkedAt: string;
}

export interface DnsblIpStatus {
  ip: string;
  /** 'own' for dnsbl.checkIps; otherwise the label extraIps gave (e.g. 'smarthost'). */
  label: string;
  /**
   * The known state: listed on at least one list. A failed look-up does not clear it, so
   * this can be true while every zone entry says 'error'; such an entry keeps the answer and
   * reason of the listing it still stands for.
   */
  listed: boolean;
  zones: DnsblZoneStatus[];
  /** When a listing or delisting of this address was last seen (ISO); unset if none since start. */
  lastChange?: string;
}

export interface DnsblStatus {
  /** When the last round finished (ISO); unset before the first one. */
  checkedAt?: string;
  ips: DnsblIpStatus[];
}

export interface DnsblSettings {
  checkIps: string[];
  zones: string[];
  intervalMinutes: number;
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

function errorText(err: unknown): string {
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

interface ZoneEntry {
  /**
   * The known state, set only by a successful look-up: undefined until one succeeded, so a
   * failure never turns into a listing or a delisting.
   */
  listed?: boolean;
  /** The answer/reason of the listing `listed` stands for. */
  answer?: string;
  reason?: string;
  last: DnsblZoneStatus;
}

interface IpEntry {
  label: string;
  /** From dnsbl.checkIps: only these count for ownListed (a listed smarthost is the ISP's problem, not a reason to reroute). */
  own: boolean;
  zones: Map<string, ZoneEntry>;
  lastChange?: string;
}

interface Target {
  ip: string;
  label: string;
  own: boolean;
}

const CONCURRENCY = 8;

export class DnsblMonitor {
  private readonly settings: () => DnsblSettings;
  private readonly extraIps?: () => Promise<{ ip: string; label: string }[]>;
  private readonly lookup: DnsblLookup;
  private readonly emit: (ev: EventInput) => Promise<unknown> | void;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly startDelayMs: number;
  private readonly lookupDeadlineMs: number;

  /**
   * Memory only, on purpose: after a restart the first round establishes the state again.
   * A listing found then is reported (the admin must hear about it even if it began while
   * the box was down, or was already reported before a restart — a repeat is cheaper than
   * silence); a clear result then is not (there is no "delisted" without a known listing).
   */
  private readonly ips = new Map<string, IpEntry>();
  /** The last extraIps answer, reused when extraIps fails so its addresses are neither dropped nor reported as changed. */
  private lastExtras: { ip: string; label: string }[] = [];
  private readonly listeners: ((ip: string, listed: boolean, label: string) => void)[] = [];
  private inflight?: Promise<DnsblStatus>;
  private timer?: NodeJS.Timeout;
  private started = false;
  /** Bumped by stop(): a round begun before it applies nothing, a timer chain from before it does not re-arm. */
  private generation = 0;
  private lastRound?: string;

  constructor(deps: {
    settings: () => DnsblSettings;
    /** Other addresses our mail leaves through, e.g. the smarthost's resolved address, label 'smarthost'. */
    extraIps?: () => Promise<{ ip: string; label: string }[]>;
    lookup: DnsblLookup;
    emit: (ev: EventInput) => Promise<unknown> | void;
    log: Logger;
    now?: () => Date;
    /** Delay of the first round after start(); default 10 s, so the daemon and the network are up first. */
    startDelayMs?: number;
    /**
     * A look-up still pending after this long counts as an error (default 120 s, beyond
     * node's own resolver timeouts). Rounds never overlap, so one promise that never settles
     * would otherwise stop all checking for good.
     */
    lookupDeadlineMs?: number;
  }) {
    this.settings = deps.settings;
    if (deps.extraIps) this.extraIps = deps.extraIps;
    this.lookup = deps.lookup;
    this.emit = deps.emit;
    this.log = deps.log;
    this.now = deps.now ?? (() => new Date());
    this.startDelayMs = deps.startDelayMs ?? 10_000;
    this.lookupDeadlineMs = deps.lookupDeadlineMs ?? 120_000;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.schedule(this.startDelayMs);
  }

  stop(): void {
    this.started = false;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Called with ip-level transitions only (listed on some list ↔ listed on none), not per list. */
  onChange(cb: (ip: string, listed: boolean, label: string) => void): void {
    this.listeners.push(cb);
  }

  /** Runs a round now; while one is running, returns that round rather than starting a second. */
  checkNow(): Promise<DnsblStatus> {
    if (!this.inflight) {
      this.inflight = this.round().finally(() => {
        this.inflight = undefined;
      });
    }
    return this.inflight;
  }

  status(): DnsblStatus {
    const ips: DnsblIpStatus[] = [];
    for (const [ip, e] of this.ips) {
      ips.push({
        ip,
        label: e.label,
        listed: listedOf(e),
        zones: [...e.zones.values()].map((z) => ({ ...z.last })),
        ...(e.lastChange ? { lastChange: e.lastChange } : {}),
      });
    }
    return { ...(this.lastRound ? { checkedAt: this.lastRound } : {}), ips };
  }

  isListed(ip: string): boolean {
    const e = this.ips.get(ip);
    return e ? listedOf(e) : false;
  }

  /** Any dnsbl.checkIps address listed: what decides rerouting. */
  ownListed(): boolean {
    for (const e of this.ips.values()) if (e.own && listedOf(e)) return true;
    return false;
  }

  private schedule(ms: number): void {
    const gen = this.generation;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.checkNow()
        .catch((err: unknown) => this.log.error({ evt: 'dnsbl.fail', err: errorText(err) }, 'dnsbl check failed'))
        .finally(() => {
          // Re-read per tick so a changed interval applies from the next one; counted from
          // the end of a round, so a slow round never makes two run back to back.
          if (this.started && gen === this.generation) this.schedule(Math.max(0.01, this.settings().intervalMinutes) * 60_000);
        });
    }, ms);
    this.timer.unref();
  }

  private async targets(checkIps: string[]): Promise<Target[]> {
    if (this.extraIps) {
      try {
        this.lastExtras = await this.extraIps();
      } catch (err) {
        this.log.warn({ evt: 'dnsbl.extra.fail', err: errorText(err) }, 'could not get the extra addresses to check; checking the previous ones');
      }
    }
    const out = new Map<string, Target>();
    for (const ip of checkIps) if (!out.has(ip)) out.set(ip, { ip, label: 'own', own: true });
    // An address that is also in checkIps stays 'own': it is ours whatever else uses it.
    for (const { ip, label } of this.lastExtras) if (!out.has(ip)) out.set(ip, { ip, label, own: false });
    return [...out.values()];
  }

  private withDeadline(p: Promise<DnsblResult>): Promise<DnsblResult> {
    let t: NodeJS.Timeout | undefined;
    const deadline = new Promise<DnsblResult>((resolve) => {
      t = setTimeout(() => resolve({ state: 'error', error: `no answer in ${this.lookupDeadlineMs} ms` }), this.lookupDeadlineMs);
      t.unref();
    });
    return Promise.race([p, deadline]).finally(() => clearTimeout(t));
  }

  private async round(): Promise<DnsblStatus> {
    const gen = this.generation;
    const t0 = performance.now();
    const s = this.settings();
    const zones = [...new Set(s.zones)];
    const all = await this.targets(s.checkIps);
    // The schema only admits IPv4 in checkIps; an extra address may be IPv6, which these
    // lists are not asked about (reversed-octet names are IPv4 only).
    const targets = all.filter((t) => isIPv4(t.ip));
    const skipped = all.filter((t) => !isIPv4(t.ip)).map((t) => t.ip);

    const jobs = targets.flatMap((t) => zones.map((zone) => ({ ip: t.ip, zone })));
    const results: DnsblResult[] = new Array(jobs.length);
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const i = next++;
        const j = jobs[i]!;
        results[i] = await this.withDeadline(queryDnsbl(this.lookup, j.ip, j.zone));
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, jobs.length) }, worker));

    // stop() during the round (shutdown): the event log may already be closed.
    if (gen !== this.generation) return this.status();

    const at = this.now().toISOString();
    const events: EventInput[] = [];
    const changes: { ip: string; listed: boolean; label: string }[] = [];
    const byIp = new Map<string, { zone: string; r: DnsblResult }[]>();
    jobs.forEach((j, i) => {
      let list = byIp.get(j.ip);
      if (!list) byIp.set(j.ip, (list = []));
      list.push({ zone: j.zone, r: results[i]! });
    });

    // Addresses no longer to be checked leave the status. No delisting is reported (nobody
    // asked the list), but a listener that rerouted for one must hear it no longer counts.
    const wanted = new Set(targets.map((t) => t.ip));
    for (const [ip, e] of this.ips) {
      if (wanted.has(ip)) continue;
      if (listedOf(e)) changes.push({ ip, listed: false, label: e.label });
      this.ips.delete(ip);
    }

    for (const t of targets) {
      let e = this.ips.get(t.ip);
      if (!e) this.ips.set(t.ip, (e = { label: t.label, own: t.own, zones: new Map() }));
      const before = listedOf(e);
      e.label = t.label;
      e.own = t.own;
      const zoneResults = byIp.get(t.ip) ?? [];
      // Rebuilt in the configured order; a list dropped from dnsbl.zones goes silently, like an address.
      const old = e.zones;
      e.zones = new Map();
      const turned: { zone: string; listed: boolean; z: ZoneEntry }[] = [];
      for (const { zone, r } of zoneResults) {
        const z: ZoneEntry = old.get(zone) ?? { last: { zone, state: r.state, checkedAt: at } };
        if (r.state === 'error') {
          z.last = { zone, state: 'error', ...(z.listed ? pick(z) : {}), error: r.error ?? 'error', checkedAt: at };
        } else {
          const listed = r.state === 'listed';
          // undefined → true is reported (see `ips`); undefined → false is not.
          if (listed !== (z.listed ?? false)) turned.push({ zone, listed, z });
          z.listed = listed;
          if (listed) {
            z.answer = r.answer;
            z.reason = r.reason;
          } else {
            delete z.answer;
            delete z.reason;
          }
          z.last = { zone, state: r.state, ...(listed ? pick(z) : {}), checkedAt: at };
        }
        e.zones.set(zone, z);
      }
      if (turned.length) e.lastChange = at;
      const stillOn = [...e.zones].filter(([, z]) => z.listed).map(([zone]) => zone);
      const who = t.own ? t.ip : `${t.ip} (${t.label})`;
      for (const { zone, listed, z } of turned) {
        if (listed) {
          events.push({
            kind: 'dnsbl.listed',
            severity: 'critical',
            ip: t.ip,
            text: `${who} is listed on ${zone} (${z.answer}${z.reason ? `: ${z.reason}` : ''})`,
            data: { zone, answer: z.answer, ...(z.reason ? { reason: z.reason } : {}), label: t.label },
          });
        } else {
          // Said in the text, since the admin reading "no longer listed" must not take it
          // for "all clear" while another list still has the address.
          const rest = stillOn.length ? `still listed on ${stillOn.join(', ')}` : 'not listed on any list checked';
          events.push({
            kind: 'dnsbl.delisted',
            severity: 'info',
            ip: t.ip,
            text: `${who} is no longer listed on ${zone} (${rest})`,
            data: { zone, label: t.label, stillListedOn: stillOn },
          });
        }
      }
      const after = listedOf(e);
      if (after !== before) changes.push({ ip: t.ip, listed: after, label: t.label });
    }
    this.lastRound = at;

    const listed = results.filter((r) => r.state === 'listed').length;
    const failed = results.filter((r) => r.state === 'error');
    this.log[listed || failed.length ? 'warn' : 'info'](
      {
        evt: 'dnsbl.check',
        ips: targets.length,
        zones: zones.length,
        listed,
        errors: failed.length,
        ms: Math.round(performance.now() - t0),
        ...(failed.length ? { firstError: failed[0]!.error } : {}),
        ...(skipped.length ? { skipped } : {}),
      },
      'dnsbl check done',
    );

    // Emits are started in order before the listeners run, so the listing is in the event
    // log ahead of whatever the listeners report (a reroute); the listeners do not wait for
    // the event log, since rerouting must not depend on a disk write.
    const pending = events.map((ev) => this.safeEmit(ev));
    for (const c of changes) {
      for (const cb of this.listeners) {
        try {
          cb(c.ip, c.listed, c.label);
        } catch (err) {
          this.log.error({ evt: 'dnsbl.listener.fail', ip: c.ip, err: errorText(err) }, 'dnsbl change listener failed');
        }
      }
    }
    await Promise.all(pending);
    return this.status();
  }

  private async safeEmit(ev: EventInput): Promise<void> {
    try {
      await this.emit(ev);
    } catch (err) {
      this.log.error({ evt: 'dnsbl.emit.fail', kind: ev.kind, ip: ev.ip, err: errorText(err) }, 'could not record dnsbl event');
    }
  }
}

function listedOf(e: IpEntry): boolean {
  for (const z of e.zones.values()) if (z.listed) return true;
  return false;
}

function pick(z: ZoneEntry): { answer?: string; reason?: string } {
  return { ...(z.answer !== undefined ? { answer: z.answer } : {}), ...(z.reason !== undefined ? { reason: z.reason } : {}) };
}
