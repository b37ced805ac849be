import type { Config } from '../config/schema.js';
import { replies } from '../policy/reply.js';
import type { ContentDecision } from '../policy/types.js';
import { builtinScan } from './builtin.js';
import { clamdScan, rspamdCheck, spamdCheck } from './engines.js';

export type ScanSettings = Config['scan'];

export interface Finding {
  engine: 'builtin' | 'spamassassin' | 'rspamd' | 'clamav';
  class: 'spam' | 'virus';
  rule: string;
  detail?: string;
}

export interface ScanResult {
  class: 'clean' | 'spam' | 'virus';
  findings: Finding[];
  /** Engines that could not give a verdict ("clamav: connect ECONNREFUSED 127.0.0.1:3310"). */
  errors: string[];
  /** Per-engine scores for the X-Spam-Status header. */
  scores: string[];
  ms: number;
}

/**
 * Runs the layers on one message: the built-in one first (it needs no engine and finds the
 * test patterns and executables), then every enabled engine at once, each within the
 * timeout. The verdict combines them: any virus makes it a virus, else any spam makes it
 * spam (an engine says spam at its own threshold).
 */
export async function scanMessage(message: Buffer, s: ScanSettings): Promise<ScanResult> {
  const started = Date.now();
  const findings: Finding[] = [];
  const errors: string[] = [];
  const scores: string[] = [];
  for (const f of await builtinScan(message, { executables: s.executables })) {
    if (f.kind === 'executable' && !s.executables) continue;
    findings.push({ engine: 'builtin', class: f.kind === 'spam' ? 'spam' : 'virus', rule: f.rule, detail: f.detail });
  }
  // A virus found already is the verdict: the message is never delivered, whatever else is in it.
  if (!findings.some((f) => f.class === 'virus')) {
    const timeoutMs = s.timeoutSeconds * 1000;
    const jobs: Promise<void>[] = [];
    if (s.spamassassin.enabled)
      jobs.push(
        spamdCheck({ host: s.spamassassin.host, port: s.spamassassin.port, timeoutMs }, message).then((r) => {
          scores.push(`spamassassin=${r.score}/${r.threshold}`);
          if (r.spam) findings.push({ engine: 'spamassassin', class: 'spam', rule: r.symbols.slice(0, 8).join(',') || 'SPAM', detail: `score ${r.score}/${r.threshold}` });
        }),
      );
    if (s.rspamd.enabled)
      jobs.push(
        rspamdCheck({ url: s.rspamd.url, timeoutMs }, message).then((r) => {
          scores.push(`rspamd=${r.score}/${r.threshold}`);
          if (r.spam) findings.push({ engine: 'rspamd', class: 'spam', rule: r.symbols.slice(0, 8).join(',') || r.action, detail: `${r.action}, score ${r.score}/${r.threshold}` });
        }),
      );
    if (s.clamav.enabled)
      jobs.push(
        clamdScan({ host: s.clamav.host, port: s.clamav.port, timeoutMs }, message).then((r) => {
          if (r.infected) findings.push({ engine: 'clamav', class: 'virus', rule: r.signature ?? 'FOUND' });
        }),
      );
    for (const r of await Promise.allSettled(jobs)) if (r.status === 'rejected') errors.push((r.reason as Error).message);
  }
  const cls = findings.some((f) => f.class === 'virus') ? 'virus' : findings.some((f) => f.class === 'spam') ? 'spam' : 'clean';
  return { class: cls, findings, errors, scores, ms: Date.now() - started };
}

export const summarize = (r: ScanResult) => r.findings.map((f) => `${f.engine}:${f.rule}${f.detail ? ` (${f.detail})` : ''}`).join('; ');

export type ScanDecision = ContentDecision;

/** What to do with a scanned message: pure, from the result and the settings. */
export function decide(r: ScanResult, direction: 'outbound' | 'inbound', s: ScanSettings): ScanDecision {
  const summary = summarize(r);
  if (r.class === 'virus') {
    return s.virusAction === 'reject' ? { kind: 'refuse', reply: replies.virusFound } : { kind: 'commit', scan: { class: 'virus', action: 'quarantine', summary } };
  }
  if (r.class === 'spam') {
    const action = s[direction].action;
    const addHeaders = action === 'deliver' ? spamHeaders(r, summary) : undefined;
    return { kind: 'commit', scan: { class: 'spam', action, summary }, addHeaders };
  }
  if (r.errors.length) {
    // No engine said spam, but one could not look: the message is not known to be clean.
    if (s.onEngineFailure === 'defer') return { kind: 'refuse', reply: replies.scanUnavailable };
    // The engines' own errors (internal addresses) stay in our log, not in mail that leaves.
    return { kind: 'accept', addHeaders: `X-Mlsd-Scan: incomplete (${r.errors.length} engine(s) did not answer)\r\n` };
  }
  return { kind: 'accept' };
}

function spamHeaders(r: ScanResult, summary: string): string {
  return `X-Spam-Flag: YES\r\nX-Spam-Status: Yes${r.scores.length ? `, ${r.scores.join(' ')}` : ''}\r\nX-Spam-Report: ${headerSafe(summary)}\r\n`;
}

/** One header line: no CR/LF (no header injection from an engine's text), bounded length. */
function headerSafe(s: string): string {
  return s.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').slice(0, 900);
}
