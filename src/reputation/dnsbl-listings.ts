import type { DnsblResult } from './dnsbl-query.js';

/**
 * What is known about each watched address on each list, and which answers change it. A
 * failed look-up changes nothing: only an answer from the list turns a listing on or off.
 */

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

/** An address to check, and whose it is. */
export interface DnsblTarget {
  ip: string;
  label: string;
  /** From dnsbl.checkIps: only these count for ownListed (a listed smarthost is the ISP's problem, not a reason to reroute). */
  own: boolean;
}

/** One address turning listed or not listed on one list. */
export interface ZoneTurn {
  target: DnsblTarget;
  zone: string;
  listed: boolean;
  /** The listing's answer and reason (set when `listed`). */
  answer?: string;
  reason?: string;
  /** The lists that still have the address after this round. */
  stillOn: string[];
}

/** An address turning listed on some list, or listed on none. */
export interface IpChange {
  ip: string;
  listed: boolean;
  label: string;
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
  own: boolean;
  zones: Map<string, ZoneEntry>;
  lastChange?: string;
}

export class DnsblListings {
  /**
   * Memory only, on purpose: after a restart the first round establishes the state again.
   * A listing found then is reported (the admin must hear about it even if it began while
   * the box was down, or was already reported before a restart — a repeat is cheaper than
   * silence); a clear result then is not (there is no "delisted" without a known listing).
   */
  private readonly ips = new Map<string, IpEntry>();

  /**
   * Takes one round's answers, `results` holding each target's answers in the configured
   * list order, and says what turned: per list (for events) and per address (for listeners).
   */
  apply(targets: DnsblTarget[], results: Map<string, { zone: string; r: DnsblResult }[]>, at: string): { turns: ZoneTurn[]; changes: IpChange[] } {
    const turns: ZoneTurn[] = [];
    const changes: IpChange[] = [];

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
      // Rebuilt in the configured order; a list dropped from dnsbl.zones goes silently, like an address.
      const old = e.zones;
      e.zones = new Map();
      const turned: { zone: string; listed: boolean; z: ZoneEntry }[] = [];
      for (const { zone, r } of results.get(t.ip) ?? []) {
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
      for (const { zone, listed, z } of turned) {
        turns.push({ target: t, zone, listed, ...(listed ? { answer: z.answer, reason: z.reason } : {}), stillOn });
      }
      const after = listedOf(e);
      if (after !== before) changes.push({ ip: t.ip, listed: after, label: t.label });
    }
    return { turns, changes };
  }

  status(): DnsblIpStatus[] {
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
    return ips;
  }

  isListed(ip: string): boolean {
    const e = this.ips.get(ip);
    return e ? listedOf(e) : false;
  }

  /** Any dnsbl.checkIps address listed. */
  ownListed(): boolean {
    for (const e of this.ips.values()) if (e.own && listedOf(e)) return true;
    return false;
  }
}

function listedOf(e: IpEntry): boolean {
  for (const z of e.zones.values()) if (z.listed) return true;
  return false;
}

function pick(z: ZoneEntry): { answer?: string; reason?: string } {
  return { ...(z.answer !== undefined ? { answer: z.answer } : {}), ...(z.reason !== undefined ? { reason: z.reason } : {}) };
}
