import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, type ScanResult } from '../../src/scan/scanner.js';
import { configSchema } from '../../src/config/schema.js';

const settings = (scan: Record<string, unknown> = {}) => configSchema.parse({ scan }).scan;
const result = (r: Partial<ScanResult>): ScanResult => ({ class: 'clean', findings: [], errors: [], scores: [], ms: 1, ...r });
const virus = result({ class: 'virus', findings: [{ engine: 'clamav', class: 'virus', rule: 'Eicar-Test-Signature' }] });
const spam = result({ class: 'spam', findings: [{ engine: 'spamassassin', class: 'spam', rule: 'GTUBE', detail: 'score 1000/5' }], scores: ['spamassassin=1000/5'] });

test('a virus is refused with 554 5.7.1 by default, or quarantined; never delivered', () => {
  const d = decide(virus, 'outbound', settings());
  assert.equal(d.kind, 'refuse');
  assert.equal(d.kind === 'refuse' && `${d.reply.code} ${d.reply.enhanced}`, '554 5.7.1');
  assert.deepEqual(decide(virus, 'outbound', settings({ virusAction: 'quarantine' })), {
    kind: 'commit',
    scan: { class: 'virus', action: 'quarantine', summary: 'clamav:Eicar-Test-Signature' },
  });
  // Even with spam set to be delivered, a virus is not.
  assert.equal(decide(virus, 'outbound', settings({ outbound: { action: 'deliver' } })).kind, 'refuse');
});

test('outbound spam follows scan.outbound.action: quarantine (default), deliver with X-Spam headers, delete', () => {
  const q = decide(spam, 'outbound', settings());
  assert.equal(q.kind === 'commit' && q.scan.action, 'quarantine');
  const d = decide(spam, 'outbound', settings({ outbound: { action: 'deliver' } }));
  assert.equal(d.kind, 'commit');
  assert.equal(d.kind === 'commit' && d.scan.action, 'deliver');
  assert.equal(d.kind === 'commit' && d.addHeaders, 'X-Spam-Flag: YES\r\nX-Spam-Status: Yes, spamassassin=1000/5\r\nX-Spam-Report: spamassassin:GTUBE (score 1000/5)\r\n');
  const x = decide(spam, 'outbound', settings({ outbound: { action: 'delete' } }));
  assert.equal(x.kind === 'commit' && x.scan.action, 'delete');
  // Inbound has its own action.
  const i = decide(spam, 'inbound', settings({ outbound: { action: 'delete' }, inbound: { action: 'deliver' } }));
  assert.equal(i.kind === 'commit' && i.scan.action, 'deliver');
});

test('an engine failure with no positive verdict defers (451 4.7.1) or passes with a header, per scan.onEngineFailure', () => {
  const failed = result({ errors: ['clamav 127.0.0.1:3310: connect ECONNREFUSED'] });
  const d = decide(failed, 'outbound', settings());
  assert.equal(d.kind === 'refuse' && `${d.reply.code} ${d.reply.enhanced}`, '451 4.7.1');
  // The engine's own error (an internal address) is not written into mail that leaves.
  assert.deepEqual(decide(failed, 'outbound', settings({ onEngineFailure: 'pass' })), { kind: 'accept', addHeaders: 'X-Mlsd-Scan: incomplete (1 engine(s) did not answer)\r\n' });
  // A positive verdict from another engine still counts when one engine failed.
  assert.equal(decide({ ...spam, errors: failed.errors }, 'outbound', settings()).kind, 'commit');
});

test('engine text cannot inject header lines', () => {
  const evil = result({ class: 'spam', findings: [{ engine: 'rspamd', class: 'spam', rule: 'X\r\nBcc: victim@example.test' }] });
  const d = decide(evil, 'outbound', settings({ outbound: { action: 'deliver' } }));
  const headers = d.kind === 'commit' ? d.addHeaders ?? '' : '';
  assert.equal(headers.split('\r\n').filter(Boolean).length, 3);
  assert.doesNotMatch(headers, /\r\nBcc:/);
});

test('a clean message is accepted as it is', () => {
  assert.deepEqual(decide(result({}), 'outbound', settings()), { kind: 'accept' });
});
