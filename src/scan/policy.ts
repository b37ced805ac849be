import type { Config } from '../config/schema.js';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import type { ContentDecision, SessionFacts } from '../policy/types.js';
import { localDay } from '../policy/window.js';
import { VolumeAnomaly } from './anomaly.js';
import { decide, scanMessage, summarize, type ScanResult } from './scanner.js';
import { DAY_MS } from '../core/clock.js';

export interface ContentMessage {
  from: string;
  rcpt: string[];
  size: number;
  contents: () => Promise<Buffer>;
}

/** A scan holds its whole message in memory: a few at a time bound that (they are CPU-bound anyway). */
const MAX_CONCURRENT_SCANS = 4;

/**
 * The end-of-DATA content policy: decides whether a message is scanned (local senders,
 * optionally outside ones), runs the scanners within a bounded number of slots, turns the
 * result into a decision, and raises the events an administrator needs: engine failures,
 * refusals, repeated hits from one account or PC (compromised), unusual volume.
 */
export class ContentPolicy {
  private readonly anomaly: VolumeAnomaly;
  private readonly anomalyReported = new Set<string>();
  private readonly hits = new Map<string, number[]>();
  private readonly hitAlerted = new Map<string, number>();
  private running = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(
    private readonly deps: {
      config: () => Config;
      /** A client of the company's own network (relay.allowIps). */
      isTrustedClient: (ip: string) => boolean;
      emit: (ev: EventInput) => void;
      log: Logger;
      now?: () => number;
    },
  ) {
    const a = deps.config().scan.anomaly;
    this.anomaly = new VolumeAnomaly({ minDaysOfHistory: 7, factor: a.factor, floor: a.floor });
  }

  /** The volume history, weeks long, for the daemon to keep across restarts. */
  snapshot(): unknown {
    return this.anomaly.snapshot();
  }

  restore(saved: unknown): void {
    this.anomaly.restore(saved);
  }

  async check(facts: SessionFacts, m: ContentMessage): Promise<ContentDecision | null> {
    const cfg = this.deps.config();
    const log = this.deps.log;
    const direction = facts.login || this.deps.isTrustedClient(facts.clientIp) ? 'outbound' : 'inbound';
    if (!cfg.scan[direction].enabled) return null;
    if (direction === 'outbound' && facts.login) this.noteVolume(facts.login, cfg);
    if (m.size > cfg.scan.maxBytes) {
      log.warn({ evt: 'scan.skip', direction, size: m.size, maxBytes: cfg.scan.maxBytes, login: facts.login, ip: facts.clientIp }, 'message too large to scan');
      this.deps.emit({ kind: 'scan.skipped', severity: 'warning', account: facts.login ?? undefined, ip: facts.clientIp, text: `a ${m.size}-byte message from <${m.from}> was passed unscanned (scan.maxBytes ${cfg.scan.maxBytes})` });
      return null;
    }
    // Waiting for a slot counts against the engines' timeout: past it, the message is
    // handled as an engine failure rather than keeping the client waiting.
    if (!(await this.acquire(this.now() + cfg.scan.timeoutSeconds * 1000))) {
      log.warn({ evt: 'scan.busy', login: facts.login, ip: facts.clientIp }, 'no scanner free in time');
      return decide({ class: 'clean', findings: [], errors: ['all scanners busy'], scores: [], ms: 0 }, direction, cfg.scan);
    }
    let result: ScanResult;
    try {
      result = await scanMessage(await m.contents(), cfg.scan);
    } finally {
      this.release();
    }
    const decision = decide(result, direction, cfg.scan);
    const summary = summarize(result);
    log.info(
      { evt: 'scan.result', direction, class: result.class, findings: summary || null, errors: result.errors.length ? result.errors : undefined, ms: result.ms, decision: decision.kind === 'commit' ? decision.scan.action : decision.kind, from: m.from, rcpt: m.rcpt, login: facts.login, ip: facts.clientIp },
      'message scanned',
    );
    if (result.errors.length) {
      this.deps.emit({ kind: 'scan.engineFailure', severity: 'warning', text: `content scanning incomplete (${result.errors.join('; ')}); messages are ${cfg.scan.onEngineFailure === 'defer' ? 'deferred (451)' : 'passed with a header'}` });
    }
    if (result.class !== 'clean') {
      if (decision.kind === 'refuse') this.deps.emit({ kind: 'scan.rejected', severity: 'info', account: facts.login ?? undefined, ip: facts.clientIp, text: `refused at end of DATA from <${m.from}> (${result.class}): ${summary}` });
      if (direction === 'outbound') this.noteHit(facts, result.class, summary, cfg);
    }
    return decision;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  private async acquire(deadline: number): Promise<boolean> {
    while (this.running >= MAX_CONCURRENT_SCANS) {
      const left = deadline - this.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(() => {
          const i = this.waiters.indexOf(wake);
          if (i >= 0) this.waiters.splice(i, 1);
          resolve();
        }, left);
        this.waiters.push(wake);
      });
    }
    this.running++;
    return true;
  }

  private release(): void {
    this.running--;
    this.waiters.shift()?.();
  }

  private noteVolume(login: string, cfg: Config): void {
    const day = localDay(this.now(), cfg.timezone);
    this.anomaly.record(login, day);
    const a = this.anomaly.check(login, day);
    const key = `${login}|${day}`;
    if (!a.anomalous || this.anomalyReported.has(key)) return;
    // Reported once per account and day; yesterday's marks are of no use any more.
    for (const k of this.anomalyReported) if (!k.endsWith(`|${day}`)) this.anomalyReported.delete(k);
    this.anomalyReported.add(key);
    this.deps.emit({ kind: 'scan.anomaly', severity: 'warning', account: login, text: `${login} sent ${a.today} messages today, usually about ${a.usual}`, data: { today: a.today, usual: a.usual } });
  }

  /** Repeated spam or viruses from one account or PC: it is compromised or infected. */
  private noteHit(facts: SessionFacts, cls: string, summary: string, cfg: Config): void {
    const who = facts.login ?? facts.clientIp;
    const now = this.now();
    if (this.hits.size > 10_000) {
      for (const [k, list] of this.hits) if (list[list.length - 1]! <= now - DAY_MS) (this.hits.delete(k), this.hitAlerted.delete(k));
    }
    const list = (this.hits.get(who) ?? []).filter((t) => t > now - DAY_MS);
    list.push(now);
    this.hits.set(who, list);
    // Again after each alert period while it goes on (the alerter itself also de-duplicates).
    if (list.length < cfg.scan.alertAfterHits || now - (this.hitAlerted.get(who) ?? 0) < cfg.alerts.periodMinutes * 60_000) return;
    this.hitAlerted.set(who, now);
    this.deps.emit({
      kind: 'scan.compromised',
      severity: 'critical',
      account: facts.login ?? undefined,
      ip: facts.clientIp,
      text: `${list.length} messages from ${facts.login ? `account ${facts.login}` : `client ${facts.clientIp}`} were ${cls === 'virus' ? 'infected' : 'spam'} in 24 h (last: ${summary}); check the PC and change the password`,
      data: { hits: list.length, last: summary },
    });
  }
}
