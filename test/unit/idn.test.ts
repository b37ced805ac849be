import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDomain } from '../../src/core/names.js';
import { displayAddress, needsSmtpUtf8, normalizeAddress, splitAddress } from '../../src/policy/address.js';

// [given, stored form or null when refused]
const domains: [string, string | null][] = [
  ['example.test', 'example.test'],
  ['Example.TEST', 'example.test'],
  ['台灣.台灣', 'xn--kpry57d.xn--kpry57d'],
  ['xn--kpry57d.xn--kpry57d', 'xn--kpry57d.xn--kpry57d'],
  ['XN--KPRY57D.TW', 'xn--kpry57d.tw'],
  ['例子.測試', 'xn--fsqu00a.xn--g6w251d'],
  ['Bücher.example', 'xn--bcher-kva.example'],
  ['ß.test', 'xn--zca.test'], // UTS-46 non-transitional: ß stays ß
  ['exаmple.test', 'xn--exmple-4nf.test'], // Cyrillic а: valid, and another domain
  // Hostile and mapped forms.
  ['xn--zz.test', null],
  ['xn--a.test', null],
  ['xn--.test', null],
  ['例子。測試', null],
  ['例子．測試', null],
  ['例子｡測試', null],
  ['ｅｘａｍｐｌｅ.test', null],
  ['a\u030a.test', null], // decomposed: IDNA would map it to å
  ['\u05d0a.test', null], // bidi rule
  ['a\u200db.test', null],
  ['\u0301a.test', null],
  [`${'a'.repeat(64)}.test`, null],
  [`${'台'.repeat(60)}.test`, null],
  [`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.test`, null], // over 253
  ['example.test.', null],
  ['x..test', null],
  ['localhost', null],
  ['[192.0.2.1]', null],
  ['a b.test', null],
  ['', null],
];
for (const [given, stored] of domains) {
  test(`checkDomain(${JSON.stringify(given)}) -> ${stored ?? 'refused'}`, () => {
    const c = checkDomain(given);
    assert.equal(c.ok ? c.domain : null, stored, c.ok ? '' : c.reason);
    if (!c.ok) assert.ok(c.reason.startsWith(`${given}: `), c.reason);
  });
}

test('a mapped form is refused with the form to write instead', () => {
  const c = checkDomain('ｅｘａｍｐｌｅ.test');
  assert.equal(c.ok, false);
  assert.match((c as { reason: string }).reason, /did you mean example\.test\?/);
});

// [given, normalized, split ok, needs SMTPUTF8]
const addresses: [string, string | null, boolean, boolean][] = [
  ['Bob@Example.TEST', 'bob@example.test', true, false],
  ['bob@例子.測試', 'bob@xn--fsqu00a.xn--g6w251d', true, false],
  ['用戶@例子.測試', '用戶@xn--fsqu00a.xn--g6w251d', true, true],
  ['Üser@example.test', 'üser@example.test', true, true],
  ['u\u0308ser@example.test', 'üser@example.test', true, true], // NFC: one mailbox for both spellings
  ['a\u202eb@example.test', 'a\u202eb@example.test', false, true], // bidi override
  ['a\u200bb@example.test', 'a\u200bb@example.test', false, true], // zero-width space
  ['a\ufffdb@example.test', 'a\ufffdb@example.test', false, true], // a byte that was not UTF-8
  ['a\u0085b@example.test', 'a\u0085b@example.test', false, true], // C1 control
  [`${'用'.repeat(21)}@example.test`, `${'用'.repeat(21)}@example.test`, true, true], // 63 octets
  [`${'用'.repeat(22)}@example.test`, `${'用'.repeat(22)}@example.test`, false, true], // 66 octets
  ['x@ｅｘａｍｐｌｅ.test', 'x@ｅｘａｍｐｌｅ.test', false, true],
  ['x@xn--zz.test', 'x@xn--zz.test', false, false],
  ['', null, false, false],
];
for (const [given, norm, ok, utf8] of addresses) {
  test(`address ${JSON.stringify(given)}`, () => {
    const n = normalizeAddress(given);
    assert.equal(n, norm);
    assert.equal(!!(n && splitAddress(n)), ok);
    assert.equal(n !== null && needsSmtpUtf8(n), utf8);
  });
}

test('displayAddress shows the domain in U-labels', () => {
  assert.equal(displayAddress('用戶@xn--fsqu00a.xn--g6w251d'), '用戶@例子.測試');
  assert.equal(displayAddress('bob@example.test'), 'bob@example.test');
});
