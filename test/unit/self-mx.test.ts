import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../../src/config/schema.js';
import { isSelf, selfView, withoutSelf } from '../../src/delivery/self-mx.js';
import type { MxHost } from '../../src/delivery/dns.js';

const cfg = (listenerHost: string, extra: Record<string, unknown> = {}) =>
  configSchema.parse({ hostname: 'mail.example.test', smtp: { listeners: [{ name: 'mx', host: listenerHost, port: 25 }] }, ...extra });
const host = (name: string, addresses: string[], pref = 10): MxHost => ({ name, pref, addresses });
const ifaces = () => ['127.0.0.1', '::1', '192.0.2.10', 'fe80::1'];

// Golden table: where the box listens, the MX host, whether it is this box.
const table: [string, string, MxHost, boolean][] = [
  ['specific public address', '192.0.2.10', host('mx.remote.test', ['192.0.2.10']), true],
  ['specific public address', '192.0.2.10', host('mx.remote.test', ['198.51.100.7']), false],
  ['specific public address', '192.0.2.10', host('MAIL.EXAMPLE.TEST.', ['198.51.100.7']), true],
  ['specific public address', '192.0.2.10', host('mx.remote.test', ['127.0.0.1']), true],
  ['specific public address', '192.0.2.10', host('mx.remote.test', ['::1']), true],
  ['specific public address', '192.0.2.10', host('mx.remote.test', ['::ffff:192.0.2.10']), true],
  ['wildcard', '0.0.0.0', host('mx.remote.test', ['192.0.2.10']), true],
  ['wildcard', '0.0.0.0', host('mx.remote.test', ['127.0.0.53']), true],
  ['wildcard', '0.0.0.0', host('mx.remote.test', ['198.51.100.7']), false],
  ['wildcard', '::', host('mx.remote.test', ['0:0:0:0:0:0:0:1']), true],
  ['specific IPv6 address', '2001:db8::10', host('mx.remote.test', ['2001:DB8:0:0:0:0:0:10']), true],
  ['specific IPv6 address', '2001:db8::10', host('mx.remote.test', ['2001:db8::11']), false],
  ['loopback test bench', '127.0.21.1', host('mx.remote.test', ['127.0.21.31']), false],
  ['loopback test bench', '127.0.21.1', host('mx.remote.test', ['127.0.21.1']), true],
];

for (const [where, listen, mx, self] of table) {
  test(`${where} (${listen}): ${mx.name} ${mx.addresses.join(',')} is ${self ? '' : 'not '}this box`, () => {
    assert.equal(isSelf(mx, selfView(cfg(listen), ifaces)), self);
  });
}

test('routing.sourceAddress and the HA service address are this box too', () => {
  assert.equal(isSelf(host('mx.remote.test', ['192.0.2.99']), selfView(cfg('192.0.2.10', { routing: { sourceAddress: '192.0.2.99' } }), ifaces)), true);
  const ha = cfg('0.0.0.0', { ha: { enabled: true, peer: { host: '192.0.2.2' }, sharedKey: 'k'.repeat(16), serviceAddress: '192.0.2.50' } });
  const view = selfView(ha, ifaces);
  assert.equal(view.wildcard, false, 'under HA the listeners bind the service address');
  assert.equal(isSelf(host('mx.remote.test', ['192.0.2.50']), view), true);
});

test('RFC 5321 5.1: this box and every MX of equal or worse preference are dropped; nothing left means a loop', () => {
  const view = selfView(cfg('192.0.2.10'), ifaces);
  const primary = host('mx1.remote.test', ['198.51.100.1'], 5);
  const us = host('mx2.remote.test', ['192.0.2.10'], 10);
  const peerOfUs = host('mx3.remote.test', ['198.51.100.3'], 10);
  const backup = host('mx4.remote.test', ['198.51.100.4'], 20);
  assert.deepEqual(withoutSelf([primary, us, peerOfUs, backup], view), { hosts: [primary], dropped: ['mx2.remote.test', 'mx3.remote.test', 'mx4.remote.test'] });
  assert.deepEqual(withoutSelf([us, backup], view), { hosts: [], dropped: ['mx2.remote.test', 'mx4.remote.test'] });
  assert.deepEqual(withoutSelf([primary, backup], view), { hosts: [primary, backup], dropped: [] });
});
