import { isIPv4 } from 'node:net';
import { MINUTE_MS, systemClock, type Clock, type Timer } from '../core/clock.js';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import { dnsblEvent } from './dnsbl-events.js';
import { DnsblListings, type DnsblIpStatus, type DnsblTarget } from './dnsbl-listings.js';
import { errorText, queryAll, type DnsblLookup, type DnsblResult } from './dnsbl-query.js';

export type { DnsblLookup, DnsblResult, DnsblState } from './dnsbl-query.js';
export type { DnsblIpStatus, DnsblZoneStatus } from './dnsbl-listings.js';

/**
 * Watches whether the box's own outbound address (and, optionally, other addresses our mail
 * leaves through, such as the smarthost's) is listed on DNS blacklists, in rounds on a
 * schedule. A listing becomes a critical event the moment it is seen, and the reroute logic
 * (dnsbl.autoReroute) follows `onChange`. Asking and reading the lists is dnsbl-query.ts,
 * what is known per address and list is dnsbl-listings.ts, the event text dnsbl-events.ts.
 */

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

const CONCURRENCY = 8;

export class DnsblMonitor {
  private readonly settings: () => DnsblSettings;
  private readonly extraIps?: () => Promise<{ ip: string; label: string }[]>;
  private readonly lookup: DnsblLookup;
  private readonly emit: (ev: EventInput) => Promise<unknown> | void;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly startDelayMs: number;
  private readonly lookupDeadlineMs: number;

  private readonly listings = new DnsblListings();
  /** The last extraIps answer, reused when extraIps fails so its addresses are neither dropped nor reported as changed. */
  private lastExtras: { ip: string; label: string }[] = [];
  private readonly listeners: ((ip: string, listed: boolean, label: string) => void)[] = [];
  private readonly scheduledRoundWaiters: (() => void)[] = [];
  private inflight?: Promise<DnsblStatus>;
  private timer?: Timer;
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
    /** Time for the check times, the schedule and the look-up deadline; default the system's. */
    clock?: Clock;
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
    this.clock = deps.clock ?? systemClock;
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
    this.clock.clearTimeout(this.timer);
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

  /**
   * Resolves when the next round started by the schedule has ended and the one after it is
   * armed (or not, when stop() came first): a caller follows the schedule by this, not by
   * guessing how long a round takes.
   */
  nextScheduledRound(): Promise<void> {
    return new Promise((resolve) => this.scheduledRoundWaiters.push(resolve));
  }

  status(): DnsblStatus {
    return { ...(this.lastRound ? { checkedAt: this.lastRound } : {}), ips: this.listings.status() };
  }

  isListed(ip: string): boolean {
    return this.listings.isListed(ip);
  }

  /** Any dnsbl.checkIps address listed: what decides rerouting. */
  ownListed(): boolean {
    return this.listings.ownListed();
  }

  private schedule(ms: number): void {
    const gen = this.generation;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.scheduledRound(gen);
    }, ms);
    this.timer.unref();
  }

  private async scheduledRound(gen: number): Promise<void> {
    try {
      await this.checkNow();
    } catch (err) {
      this.log.error({ evt: 'dnsbl.fail', err: errorText(err) }, 'dnsbl check failed');
    }
    // Re-read per tick so a changed interval applies from the next one; counted from the end
    // of a round, so a slow round never makes two run back to back.
    if (this.started && gen === this.generation) this.schedule(Math.max(0.01, this.settings().intervalMinutes) * MINUTE_MS);
    for (const resolve of this.scheduledRoundWaiters.splice(0)) resolve();
  }

  private async targets(checkIps: string[]): Promise<DnsblTarget[]> {
    if (this.extraIps) {
      try {
        this.lastExtras = await this.extraIps();
      } catch (err) {
        this.log.warn({ evt: 'dnsbl.extra.fail', err: errorText(err) }, 'could not get the extra addresses to check; checking the previous ones');
      }
    }
    const out = new Map<string, DnsblTarget>();
    for (const ip of checkIps) if (!out.has(ip)) out.set(ip, { ip, label: 'own', own: true });
    // An address that is also in checkIps stays 'own': it is ours whatever else uses it.
    for (const { ip, label } of this.lastExtras) if (!out.has(ip)) out.set(ip, { ip, label, own: false });
    return [...out.values()];
  }

  private async round(): Promise<DnsblStatus> {
    const gen = this.generation;
    const t0 = this.clock.now();
    const s = this.settings();
    const zones = [...new Set(s.zones)];
    const all = await this.targets(s.checkIps);
    // The schema only admits IPv4 in checkIps; an extra address may be IPv6, which these
    // lists are not asked about (reversed-octet names are IPv4 only).
    const targets = all.filter((t) => isIPv4(t.ip));
    const skipped = all.filter((t) => !isIPv4(t.ip)).map((t) => t.ip);

    const queries = targets.flatMap((t) => zones.map((zone) => ({ ip: t.ip, zone })));
    const results = await queryAll(this.lookup, queries, { clock: this.clock, deadlineMs: this.lookupDeadlineMs, concurrency: CONCURRENCY });

    // stop() during the round (shutdown): the event log may already be closed.
    if (gen !== this.generation) return this.status();

    const at = new Date(this.clock.now()).toISOString();
    const byIp = new Map<string, { zone: string; r: DnsblResult }[]>();
    queries.forEach((q, i) => {
      let list = byIp.get(q.ip);
      if (!list) byIp.set(q.ip, (list = []));
      list.push({ zone: q.zone, r: results[i]! });
    });
    const { turns, changes } = this.listings.apply(targets, byIp, at);
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
        ms: Math.round(this.clock.now() - t0),
        ...(failed.length ? { firstError: failed[0]!.error } : {}),
        ...(skipped.length ? { skipped } : {}),
      },
      'dnsbl check done',
    );

    // Emits are started in order before the listeners run, so the listing is in the event
    // log ahead of whatever the listeners report (a reroute); the listeners do not wait for
    // the event log, since rerouting must not depend on a disk write.
    const pending = turns.map((turn) => this.safeEmit(dnsblEvent(turn)));
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
