import type { Config } from '../config/schema.js';
import type { DayCount } from '../store/counters.js';
import type { EventInput } from '../events/events.js';
import { IpList, subnetOf } from './ipList.js';
import { replies, type Reply } from './reply.js';
import { accept, refuse, type SessionFacts, type Verdict } from './types.js';
import { SlidingMinute, localDay } from './window.js';

type Limit =
  | 'perIpMessagesPerMinute'
  | 'perIpRecipientsPerMinute'
  | 'perIpMessagesPerDay'
  | 'perAccountMessagesPerDay'
  | 'perIpConnectionsPerMinute'
  | 'perIpConcurrentConnections'
  | 'perSubnetConcurrentConnections'
  | 'perAccountNewRecipientsPerDay';

export type { DayCount };

/** Where day counters are kept so that a restart does not hand out a fresh quota. */
export interface DayCounterStore {
  save(key: string, value: DayCount): void;
}

const WARN_AT = 0.8;

/** A counter close to its limit, for the dashboard: who, which limit, how far along. */
export interface NearLimit {
  /** The config key of the limit, e.g. "thresholds.perIpMessagesPerDay". */
  limit: string;
  /** The client IP (or, for perSubnetConcurrentConnections, its network) or the login counted. */
  ip?: string;
  account?: string;
  count: number;
  max: number;
}

/** Which limit each counter key's prefix is counted against, and whose it is. */
const MINUTE_LIMITS: Record<string, Limit> = { conn: 'perIpConnectionsPerMinute', msg: 'perIpMessagesPerMinute', rcpt: 'perIpRecipientsPerMinute' };
const DAY_LIMITS: Record<string, [Limit, 'ip' | 'account']> = { ip: ['perIpMessagesPerDay', 'ip'], acct: ['perAccountMessagesPerDay', 'account'], new: ['perAccountNewRecipientsPerDay', 'account'] };

export interface SuspensionEvidence {
  /** The threshold that tripped, e.g. "thresholds.perAccountMessagesPerDay". */
  limitName: string;
  /** What the account did against it: messages today, or new recipients today. */
  used: number;
  limit: number;
  messagesToday: number;
  clientIps: string[];
  sampleSubjects: string[];
  /** MAILs refused at the limit today (they count toward auth.suspendAtMultiple). */
  refusedAttempts: number;
}

/**
 * The mail control thresholds ("郵件管制臨界值"): per client IP and per login, checked at
 * the earliest stage that knows them (connect, MAIL, RCPT) and counted when a message is
 * committed or a recipient accepted. Refusals are temporary (4xx), so a legitimate sender
 * retries later. Crossing 80% of a limit and tripping it are events (the alert path).
 */
export class ThresholdPolicy {
  private readonly minutes = new Map<string, SlidingMinute>();
  private readonly days = new Map<string, DayCount>();
  private readonly open = new Map<string, number>();
  /** Open connections per network (subnetOf), and the network each address with open ones counts in ('' = none). */
  private readonly openNet = new Map<string, number>();
  private readonly netOf = new Map<string, string>();
  /** A LAN is many hosts in one /24: relay.allowIps clients are not counted per network. */
  private relayIps: IpList;
  private readonly lastTrip = new Map<string, number>();
  /** Per login, today: the client IPs it sent from and a few subjects (evidence for a suspension). */
  private readonly evidence = new Map<string, { day: string; ips: Set<string>; subjects: string[] }>();
  /** Per login, today: the new recipients already counted (at most the day limit each). */
  private readonly newToday = new Map<string, { day: string; rcpts: Set<string> }>();
  private suspendFn: ((login: string, evidence: SuspensionEvidence) => void) | null = null;
  private exemptIps: IpList;
  private exemptAccounts: Set<string>;
  private ops = 0;

  constructor(
    private readonly config: () => Config,
    private readonly emit: (ev: EventInput) => void,
    private readonly store: DayCounterStore,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 50000,
  ) {
    this.exemptIps = new IpList(config().thresholds.exemptIps);
    this.exemptAccounts = new Set(config().thresholds.exemptAccounts);
    this.relayIps = new IpList(config().relay.allowIps);
  }

  /** Who suspends an account that reached auth.suspendAtMultiple x its day limit. */
  onSuspend(fn: (login: string, evidence: SuspensionEvidence) => void): void {
    this.suspendFn = fn;
  }

  /** Called when the config changes: the exemption lists are parsed once, not per check. */
  reload(): void {
    this.exemptIps = new IpList(this.config().thresholds.exemptIps);
    this.exemptAccounts = new Set(this.config().thresholds.exemptAccounts);
    this.relayIps = new IpList(this.config().relay.allowIps);
  }

  /** Day counters read back at start (today's only). */
  restore(entries: Iterable<[string, DayCount]>): void {
    const today = this.today();
    for (const [k, v] of entries) if (v.day === today) this.days.set(k, v);
  }

  private today(): string {
    return localDay(this.now(), this.config().timezone);
  }

  private exempt(f: SessionFacts): boolean {
    return this.exemptIps.has(f.clientIp) || (!!f.login && this.exemptAccounts.has(f.login));
  }

  private minute(key: string): SlidingMinute {
    let w = this.minutes.get(key);
    if (!w) this.minutes.set(key, (w = new SlidingMinute()));
    return w;
  }

  private dayCount(key: string): number {
    const d = this.days.get(key);
    return d && d.day === this.today() ? d.count : 0;
  }

  /** Refuses when one more would pass the limit (the limit-th is still accepted). */
  private over(limit: Limit, used: number, who: { ip?: string; account?: string }, reply: Reply, text: string): Verdict {
    const max = this.config().thresholds[limit];
    if (max === 0 || used + 1 <= max) return accept;
    const key = `${limit}:${who.ip ?? ''}:${who.account ?? ''}`;
    const t = this.now();
    // One event per limit and client per minute: a refused client retries often.
    if ((this.lastTrip.get(key) ?? 0) <= t - 60_000) {
      this.lastTrip.set(key, t);
      this.emit({ kind: 'threshold.tripped', severity: 'critical', ...who, limit: `thresholds.${limit}`, text: `${text}: ${used} of ${max}`, data: { used, limit: max } });
    }
    return refuse({ ...reply, text: `Error: ${text} (limit thresholds.${limit} = ${max}), try again later` });
  }

  /** After counting: an event when a counter crosses 80% of its limit. */
  private warn(limit: Limit, before: number, after: number, who: { ip?: string; account?: string }, text: string): void {
    const max = this.config().thresholds[limit];
    if (max === 0) return;
    const at = Math.ceil(max * WARN_AT);
    if (before < at && after >= at && after <= max) {
      this.emit({ kind: 'threshold.warning', severity: 'warning', ...who, limit: `thresholds.${limit}`, text: `${text}: ${after} of ${max} (80%)`, data: { used: after, limit: max } });
    }
  }

  connect(f: SessionFacts): Verdict {
    if (this.exempt(f)) return accept;
    const ip = f.clientIp;
    const w = this.minute(`conn:${ip}`);
    const t = this.now();
    let v = this.over('perIpConnectionsPerMinute', w.count(t), { ip }, replies.tooManyConnections, `too many connections from ${ip} in the last minute`);
    if (v.ok) v = this.over('perIpConcurrentConnections', this.open.get(ip) ?? 0, { ip }, replies.tooManyConnections, `too many open connections from ${ip}`);
    const th = this.config().thresholds;
    // An address counts in the network it was first counted in until its last connection closes.
    const net = this.netOf.get(ip) ?? (this.relayIps.has(ip) ? '' : subnetOf(ip, th.subnetPrefixV4, th.subnetPrefixV6));
    if (v.ok && net) v = this.over('perSubnetConcurrentConnections', this.openNet.get(net) ?? 0, { ip: net }, replies.tooManyConnections, `too many open connections from ${net}`);
    w.add(t);
    if (v.ok) {
      this.open.set(ip, (this.open.get(ip) ?? 0) + 1);
      this.netOf.set(ip, net);
      if (net) this.openNet.set(net, (this.openNet.get(net) ?? 0) + 1);
    }
    this.housekeep();
    return v;
  }

  /** Only for connections that `connect` accepted. */
  disconnect(f: SessionFacts): void {
    const n = (this.open.get(f.clientIp) ?? 0) - 1;
    if (n > 0) this.open.set(f.clientIp, n);
    else this.open.delete(f.clientIp);
    const net = this.netOf.get(f.clientIp);
    if (net) {
      const m = (this.openNet.get(net) ?? 0) - 1;
      if (m > 0) this.openNet.set(net, m);
      else this.openNet.delete(net);
    }
    if (n <= 0) this.netOf.delete(f.clientIp);
  }

  mail(f: SessionFacts): Verdict {
    if (this.exempt(f)) return accept;
    const ip = f.clientIp;
    const t = this.now();
    let v = this.over('perIpMessagesPerMinute', this.minute(`msg:${ip}`).count(t), { ip }, replies.rate, `too many messages from ${ip} in the last minute`);
    if (v.ok) v = this.over('perIpMessagesPerDay', this.dayCount(`ip:${ip}`), { ip }, replies.rate, `too many messages from ${ip} today`);
    if (v.ok && f.login) {
      const used = this.dayCount(`acct:${f.login}`);
      v = this.over('perAccountMessagesPerDay', used, { account: f.login }, replies.rate, `too many messages from ${f.login} today`);
      // Messages refused past the limit count as attempts: otherwise `used` stops at the
      // limit and suspendAtMultiple above 1 could never be reached.
      const refused = v.ok ? this.dayCount(`acctRefused:${f.login}`) : this.countRefused(`acctRefused:${f.login}`);
      this.maybeSuspend(f.login, used, refused);
    }
    return v;
  }

  /** One more MAIL refused today by an account's day limit (kept like the day counters). */
  private countRefused(key: string): number {
    const v = { day: this.today(), count: this.dayCount(key) + 1 };
    this.days.set(key, v);
    this.store.save(key, v);
    return v.count;
  }

  /** Checks and, when accepted, counts one recipient. */
  rcpt(f: SessionFacts): Verdict {
    if (this.exempt(f)) return accept;
    const ip = f.clientIp;
    const w = this.minute(`rcpt:${ip}`);
    const t = this.now();
    const before = w.count(t);
    const v = this.over('perIpRecipientsPerMinute', before, { ip }, replies.tooManyRecipients, `too many recipients from ${ip} in the last minute`);
    if (v.ok) {
      w.add(t);
      this.warn('perIpRecipientsPerMinute', before, before + 1, { ip }, `recipients from ${ip} in the last minute`);
    }
    return v;
  }

  /**
   * A compromised password sends until stopped: once its attempts today (messages sent
   * plus MAILs refused at the limit) reach suspendAtMultiple x the day limit, the account
   * is handed to the suspender with the evidence (counts, IPs, subjects). With 1, the first
   * attempt past the limit suspends; with 2, a client that keeps trying as many times again.
   */
  private maybeSuspend(login: string, sent: number, refused: number): void {
    const cfg = this.config();
    const max = cfg.thresholds.perAccountMessagesPerDay;
    if (max === 0 || sent + refused < max * cfg.auth.suspendAtMultiple) return;
    this.suspend(login, 'perAccountMessagesPerDay', sent, max, undefined, refused);
  }

  private suspend(login: string, limit: Limit, used: number, max: number, clientIp?: string, refusedAttempts = 0): void {
    if (!this.config().auth.suspendOnThreshold || !this.suspendFn) return;
    const ev = this.evidence.get(login);
    this.suspendFn(login, {
      limitName: `thresholds.${limit}`,
      used,
      limit: max,
      messagesToday: this.dayCount(`acct:${login}`),
      clientIps: [...new Set([...(ev?.ips ?? []), ...(clientIp ? [clientIp] : [])])],
      sampleSubjects: ev?.subjects ?? [],
      refusedAttempts,
    });
  }

  /**
   * First-time recipients of a login (after mox): a stolen password mails thousands of
   * strangers, a person mostly writes to people they wrote to before. `isNew` is true when
   * this login never sent to this recipient; the recipient is then counted for today.
   */
  newRecipient(f: SessionFacts, isNew: boolean, recipient: string): Verdict {
    if (!f.login || this.exempt(f) || !isNew) return accept;
    // Remembered only at commit: until then a recipient counted today is not counted again.
    const today = this.today();
    let counted = this.newToday.get(f.login);
    if (!counted || counted.day !== today) this.newToday.set(f.login, (counted = { day: today, rcpts: new Set() }));
    if (counted.rcpts.has(recipient)) return accept;
    const key = `new:${f.login}`;
    const used = this.dayCount(key);
    const v = this.over('perAccountNewRecipientsPerDay', used, { account: f.login }, replies.tooManyRecipients, `too many new recipients from ${f.login} today`);
    if (!v.ok) {
      this.suspend(f.login, 'perAccountNewRecipientsPerDay', used, this.config().thresholds.perAccountNewRecipientsPerDay, f.clientIp);
      return v;
    }
    this.bumpDay(key, 'perAccountNewRecipientsPerDay', { account: f.login }, `new recipients from ${f.login} today`);
    counted.rcpts.add(recipient);
    return accept;
  }

  /** Counts a committed message. */
  committed(f: SessionFacts, subject = ''): void {
    if (this.exempt(f)) return;
    if (f.login) {
      const today = this.today();
      let ev = this.evidence.get(f.login);
      if (!ev || ev.day !== today) this.evidence.set(f.login, (ev = { day: today, ips: new Set(), subjects: [] }));
      if (ev.ips.size < 50) ev.ips.add(f.clientIp);
      if (ev.subjects.length < 5 && subject) ev.subjects.push(subject.slice(0, 200));
    }
    const ip = f.clientIp;
    const t = this.now();
    const w = this.minute(`msg:${ip}`);
    const before = w.count(t);
    w.add(t);
    this.warn('perIpMessagesPerMinute', before, before + 1, { ip }, `messages from ${ip} in the last minute`);
    this.bumpDay(`ip:${ip}`, 'perIpMessagesPerDay', { ip }, `messages from ${ip} today`);
    if (f.login) this.bumpDay(`acct:${f.login}`, 'perAccountMessagesPerDay', { account: f.login }, `messages from ${f.login} today`);
    this.housekeep();
  }

  private bumpDay(key: string, limit: Limit, who: { ip?: string; account?: string }, text: string): void {
    const before = this.dayCount(key);
    const v = { day: this.today(), count: before + 1 };
    this.days.set(key, v);
    this.store.save(key, v);
    this.warn(limit, before, v.count, who, text);
  }

  /** Keeps memory bounded: windows with nothing in them and past days are dropped. */
  private housekeep(): void {
    if (++this.ops % 1000 !== 0 && this.minutes.size + this.days.size < this.maxKeys) return;
    const t = this.now();
    const today = this.today();
    for (const [k, w] of this.minutes) if (w.idle(t)) this.minutes.delete(k);
    for (const [k, d] of this.days) if (d.day !== today) this.days.delete(k);
    for (const [k, e] of this.evidence) if (e.day !== today) this.evidence.delete(k);
    for (const [k, n] of this.newToday) if (n.day !== today) this.newToday.delete(k);
    for (const [k, at] of this.lastTrip) if (at <= t - 60_000) this.lastTrip.delete(k);
    // Still too many (a flood of distinct IPs within one minute): drop the oldest.
    while (this.minutes.size > this.maxKeys) this.minutes.delete(this.minutes.keys().next().value!);
    while (this.days.size > this.maxKeys) this.days.delete(this.days.keys().next().value!);
  }

  /**
   * The counters at `share` or more of their limit now, closest first, at most `top` (for
   * the status and the dashboard). Limits of 0 (none) are skipped without a look.
   */
  nearLimits(share = 0.5, top = 10): NearLimit[] {
    const th = this.config().thresholds;
    const t = this.now();
    const today = this.today();
    const out: NearLimit[] = [];
    const consider = (limit: Limit, who: { ip?: string; account?: string }, count: number) => {
      const max = th[limit];
      if (max > 0 && count >= max * share) out.push({ limit: `thresholds.${limit}`, ...who, count, max });
    };
    const split = (key: string) => {
      const i = key.indexOf(':');
      return [key.slice(0, i), key.slice(i + 1)] as const;
    };
    for (const [key, w] of this.minutes) {
      const [kind, ip] = split(key);
      const limit = MINUTE_LIMITS[kind];
      if (limit && th[limit] > 0) consider(limit, { ip }, w.count(t));
    }
    for (const [key, d] of this.days) {
      const [kind, who] = split(key);
      const spec = DAY_LIMITS[kind];
      if (spec && d.day === today) consider(spec[0], { [spec[1]]: who }, d.count);
    }
    for (const [ip, n] of this.open) consider('perIpConcurrentConnections', { ip }, n);
    for (const [net, n] of this.openNet) consider('perSubnetConcurrentConnections', { ip: net }, n);
    return out.sort((a, b) => b.count / b.max - a.count / a.max || b.count - a.count).slice(0, top);
  }

  /** For status and tests. */
  stats(): { minuteWindows: number; dayCounters: number } {
    return { minuteWindows: this.minutes.size, dayCounters: this.days.size };
  }
}
