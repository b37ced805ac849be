import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientKey } from '../../src/policy/clientKey.js';

const table: [string, number, string][] = [
  ['192.0.2.7', 64, '192.0.2.7'],
  ['::ffff:192.0.2.7', 64, '192.0.2.7'], // IPv4-mapped: the IPv4 client
  ['2001:db8:1:2:3:4:5:6', 64, '2001:db8:1:2::/64'],
  ['2001:0DB8:0001:0002:ffff:ffff:ffff:ffff', 64, '2001:db8:1:2::/64'], // case and leading zeros
  ['2001:db8:1:2::', 64, '2001:db8:1:2::/64'],
  ['2001:db8::192.0.2.1', 64, '2001:db8::/64'], // embedded IPv4 tail
  ['2001:db8:1:2::1', 56, '2001:db8:1::/56'],
  ['2001:db8:1:2ff::1', 56, '2001:db8:1:200::/56'], // a prefix that is not a group boundary
  ['2001:db8:1:2::1', 128, '2001:db8:1:2::1/128'],
  ['::1', 64, '::/64'],
  ['::', 64, '::/64'],
  ['fe80::1%lo', 64, 'fe80::/64'], // a zone id does not make another client
  ['not-an-address', 64, 'not-an-address'],
];

for (const [ip, prefix, want] of table) {
  test(`clientKey(${ip}, /${prefix}) = ${want}`, () => assert.equal(clientKey(ip, prefix), want));
}
