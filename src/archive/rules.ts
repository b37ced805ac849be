import type { Config } from '../config/schema.js';
import type { Direction, Verdict } from './types.js';

export type ArchiveRule = Config['archive']['rules'][number];

/** The rules in force when a message was committed (stored once per change, named by hash). */
export interface RuleSet {
  rules: ArchiveRule[];
  retentionYears: number;
}

/** What a rule can look at: the envelope, the box's decisions, and a few header facts. */
export interface RuleFacts {
  direction: Direction;
  from: string;
  rcpt: string[];
  subject: string;
  size: number;
  hasAttachments: boolean;
  verdict: Verdict;
}

export type RuleDecision = { action: 'archive'; retentionYears: number; rule: number | 'default' } | { action: 'skip'; rule: number | 'default' };

/** A condition entry (address or domain) against one address. */
function addressMatches(entry: string, address: string): boolean {
  const a = address.toLowerCase();
  if (entry.includes('@')) return a === entry;
  return a.slice(a.lastIndexOf('@') + 1) === entry;
}

function ruleMatches(r: ArchiveRule, f: RuleFacts): boolean {
  if (r.direction && !r.direction.includes(f.direction)) return false;
  if (r.from && !r.from.some((e) => addressMatches(e, f.from))) return false;
  if (r.to && !f.rcpt.some((a) => r.to!.some((e) => addressMatches(e, a)))) return false;
  if (r.subject !== undefined && !f.subject.toLowerCase().includes(r.subject.toLowerCase())) return false;
  if (r.minBytes !== undefined && f.size < r.minBytes) return false;
  if (r.maxBytes !== undefined && f.size > r.maxBytes) return false;
  if (r.attachments !== undefined && r.attachments !== f.hasAttachments) return false;
  if (r.verdict && !r.verdict.includes(f.verdict)) return false;
  return true;
}

/**
 * First match wins. With no match, spam and viruses are skipped (an archive that keeps
 * everything keeps the spam too, the complaint about backup servers) and the rest is kept
 * for the default retention. A rule that names a verdict overrides that default.
 */
export function decide(set: RuleSet, f: RuleFacts): RuleDecision {
  for (const [i, r] of set.rules.entries()) {
    if (!ruleMatches(r, f)) continue;
    return r.action === 'skip' ? { action: 'skip', rule: i } : { action: 'archive', retentionYears: r.retentionYears ?? set.retentionYears, rule: i };
  }
  if (f.verdict !== 'clean') return { action: 'skip', rule: 'default' };
  return { action: 'archive', retentionYears: set.retentionYears, rule: 'default' };
}

const YEAR_MS = 365.2425 * 24 * 3600 * 1000;

/** The end of retention, stamped at intake: whole years by the calendar (a law's "7 years"), then any fraction. */
export function retainUntil(archivedMs: number, years: number): string {
  const whole = Math.floor(years);
  const d = new Date(archivedMs);
  d.setUTCFullYear(d.getUTCFullYear() + whole);
  return new Date(d.getTime() + Math.round((years - whole) * YEAR_MS)).toISOString();
}
