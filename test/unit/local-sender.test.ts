import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLocalSenders, type LocalSenderJudge } from '../../src/policy/localSender.js';
import { replies } from '../../src/policy/reply.js';
import type { SessionFacts } from '../../src/policy/types.js';

// Local domains are stored as A-labels; a forger may write ours in any spelling a reader's
// IDNA would take for it.
const judge: LocalSenderJudge = {
  isLocalDomain: (d) => d === 'example.test' || d === 'xn--fsqu00a.xn--g6w251d',
  vouchesForSender: (f) => f.login !== null,
};
const outsider: SessionFacts = { clientIp: '192.0.2.7', listener: 'mx', login: null, tls: false };
const reply = replies.localHeaderFromOutside;

test('a local domain in any IDNA spelling is judged as ours', () => {
  for (const a of ['ceo@example.test', 'ceo@example.test.', 'ceo@例子.測試', 'ceo@例子.測試。', 'ceo@例子。測試', 'ceo@xn--fsqu00a.xn--g6w251d', 'ceo@例子．測試']) {
    assert.equal(checkLocalSenders('reject', outsider, [a], judge, reply).ok, false, a);
  }
  for (const a of ['ceo@例子.other', 'ceo@example.test.evil', 'no-at-sign']) {
    assert.equal(checkLocalSenders('reject', outsider, [a], judge, reply).ok, true, a);
  }
  assert.equal(checkLocalSenders('reject', { ...outsider, login: 'bob@example.test' }, ['ceo@例子.測試'], judge, reply).ok, true);
  assert.equal(checkLocalSenders('allow', outsider, ['ceo@例子.測試'], judge, reply).ok, true);
});
