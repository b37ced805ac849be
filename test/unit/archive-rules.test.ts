import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, retainUntil, type RuleFacts, type RuleSet } from '../../src/archive/rules.js';
import { splitTrace } from '../../src/archive/extract.js';
import { configSchema } from '../../src/config/schema.js';

const facts = (o: Partial<RuleFacts> = {}): RuleFacts => ({ direction: 'in', from: 'a@outside.test', rcpt: ['bob@example.test'], subject: 'Hello', size: 1000, hasAttachments: false, verdict: 'clean', ...o });
const set = (rules: RuleSet['rules'], retentionYears = 7): RuleSet => ({ rules, retentionYears });

test('no rule: clean mail is kept for the default retention, spam and viruses are skipped', () => {
  assert.deepEqual(decide(set([]), facts()), { action: 'archive', retentionYears: 7, rule: 'default' });
  assert.deepEqual(decide(set([]), facts({ verdict: 'spam' })), { action: 'skip', rule: 'default' });
  assert.deepEqual(decide(set([]), facts({ verdict: 'virus' })), { action: 'skip', rule: 'default' });
});

test('first match wins, each condition must hold, and a rule may keep spam on purpose', () => {
  const rules = set([
    { action: 'skip', from: ['news.test'] },
    { action: 'archive', to: ['legal@example.test'], retentionYears: 10 },
    { action: 'archive', verdict: ['spam'], direction: ['out'], retentionYears: 1 },
    { action: 'skip', subject: 'UNSUBSCRIBE', maxBytes: 5000 },
    { action: 'archive', attachments: true, minBytes: 100000, retentionYears: 5 },
  ]);
  assert.deepEqual(decide(rules, facts({ from: 'x@news.test', rcpt: ['legal@example.test'] })), { action: 'skip', rule: 0 });
  assert.deepEqual(decide(rules, facts({ from: 'x@sub.news.test' })).rule, 'default', 'a domain matches itself, not its sub-domains');
  assert.deepEqual(decide(rules, facts({ rcpt: ['bob@example.test', 'LEGAL@example.test'] })), { action: 'archive', retentionYears: 10, rule: 1 });
  assert.deepEqual(decide(rules, facts({ verdict: 'spam', direction: 'out' })), { action: 'archive', retentionYears: 1, rule: 2 });
  assert.deepEqual(decide(rules, facts({ verdict: 'spam', direction: 'in' })), { action: 'skip', rule: 'default' });
  assert.deepEqual(decide(rules, facts({ subject: 'please unsubscribe me' })), { action: 'skip', rule: 3 });
  assert.deepEqual(decide(rules, facts({ subject: 'please unsubscribe me', size: 6000 })).rule, 'default');
  assert.deepEqual(decide(rules, facts({ hasAttachments: true, size: 200000 })), { action: 'archive', retentionYears: 5, rule: 4 });
  assert.deepEqual(decide(rules, facts({ hasAttachments: false, size: 200000 })).rule, 'default');
});

test('the retention end is stamped from the intake time', () => {
  const t = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(retainUntil(t, 7).slice(0, 10), '2033-01-01');
});

test('archive.rules in the config: bad conditions are refused naming the key', () => {
  const parse = (archive: unknown) => configSchema.safeParse({ hostname: 'mail.example.test', domains: ['example.test'], archive });
  assert.equal(parse({ rules: [{ action: 'archive', to: ['Legal@例子.測試'] }] }).success, true);
  const good = parse({ rules: [{ action: 'archive', to: ['Legal@例子.測試', '@Example.TEST'] }] });
  assert.ok(good.success);
  assert.deepEqual(good.data.archive.rules[0]!.to, ['legal@xn--fsqu00a.xn--g6w251d', 'example.test']);
  for (const [bad, path] of [
    [{ rules: [{ action: 'delete' }] }, 'archive.rules.0.action'],
    [{ rules: [{ action: 'skip', retentionYears: 3 }] }, 'archive.rules.0.retentionYears'],
    [{ rules: [{ action: 'archive', from: ['not an address'] }] }, 'archive.rules.0.from.0'],
    [{ rules: [{ action: 'archive', direction: ['sideways'] }] }, 'archive.rules.0.direction.0'],
    [{ rules: [{ action: 'archive', colour: 'red' }] }, 'archive.rules.0'],
    [{ retentionYears: -1 }, 'archive.retentionYears'],
  ] as const) {
    const r = parse(bad);
    assert.equal(r.success, false, JSON.stringify(bad));
    assert.ok(r.error!.issues.some((i) => i.path.join('.').startsWith(path)), `${JSON.stringify(bad)}: ${JSON.stringify(r.error!.issues.map((i) => i.path.join('.')))}`);
  }
});

test('our own Received line is split off only when it is ours and names this message', () => {
  const ours = 'Received: from pc (pc.test [127.0.0.2])\r\n\tby mail.example.test (mlsd) with ESMTP id ABC123;\r\n\tThu, 03 Dec 2026 10:00:00 +0000\r\n';
  const body = 'From: a@b.test\r\nSubject: x\r\n\r\nhi\r\n';
  const s = splitTrace(Buffer.from(ours + body), 'ABC123');
  assert.equal(s.trace, ours);
  assert.equal(s.content.toString(), body);
  // Someone else's id, or a forged line from the client: kept as part of the content.
  assert.equal(splitTrace(Buffer.from(ours + body), 'OTHER').trace, '');
  const forged = 'Received: from x by evil.test with SMTP id ABC123;\r\n Thu\r\n' + body;
  assert.equal(splitTrace(Buffer.from(forged), 'ABC123').content.toString(), forged);
  assert.equal(splitTrace(Buffer.from(''), 'ABC123').content.length, 0);
});
