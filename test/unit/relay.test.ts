import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayPolicy } from '../../src/policy/relay.js';
import { checkRecipient } from '../../src/policy/recipient.js';
import { formatReply } from '../../src/policy/reply.js';
import { validateConfig } from '../../src/config/config.js';
import type { SessionFacts } from '../../src/policy/types.js';

const cfg = validateConfig({
  domains: ['example.test', 'example2.test'],
  relay: {
    allowIps: ['192.0.2.10', '198.51.100.0/24', '2001:db8::/32', '10.1.2.3'],
    allowRecipientDomains: ['partner.test'],
    allowAuthenticated: true,
  },
});
const relay = new RelayPolicy(cfg);
const users = new Set(['bob@example.test', 'sales@example2.test']);
const dir = { exists: (a: string) => users.has(a) };

const facts = (clientIp: string, login: string | null = null): SessionFacts => ({ clientIp, listener: 'mx', login, tls: false });
const OK = 'accept';

/**
 * Golden table in the Postfix style: client, login, RCPT address -> exact reply.
 * Every row is an attempt to get mail relayed or mis-routed.
 */
const table: [string, string | null, string, string][] = [
  // local recipients
  ['203.0.113.9', null, 'bob@example.test', OK],
  ['203.0.113.9', null, 'BOB@Example.TEST', OK],
  ['203.0.113.9', null, 'postmaster', OK],
  ['203.0.113.9', null, 'postmaster@example2.test', OK], // RFC 5321 4.5.1, with no account
  ['203.0.113.9', null, 'PostMaster@Example.test', OK],
  ['203.0.113.9', null, 'postmaster@remote.test', '554 5.7.1 Relay access denied'],
  ['203.0.113.9', null, 'nobody@example.test', '550 5.1.1 Recipient address rejected: User unknown in local recipient table'],
  ['203.0.113.9', null, 'sales@example2.test', OK],
  // remote recipients from an unlisted client
  ['203.0.113.9', null, 'x@remote.test', '554 5.7.1 Relay access denied'],
  ['10.1.2.30', null, 'x@remote.test', '554 5.7.1 Relay access denied'], // 10.1.2.3 listed, not 10.1.2.30
  ['10.1.2.', null, 'x@remote.test', '554 5.7.1 Relay access denied'],
  ['198.51.101.1', null, 'x@remote.test', '554 5.7.1 Relay access denied'],
  ['2001:db9::1', null, 'x@remote.test', '554 5.7.1 Relay access denied'],
  // listed clients, CIDR ranges, IPv6, IPv4-mapped
  ['192.0.2.10', null, 'x@remote.test', OK],
  ['10.1.2.3', null, 'x@remote.test', OK],
  ['198.51.100.77', null, 'x@remote.test', OK],
  ['::ffff:198.51.100.77', null, 'x@remote.test', OK],
  ['2001:db8:0:0::1', null, 'x@remote.test', OK],
  ['2001:DB8::abcd', null, 'x@remote.test', OK],
  // allowed recipient domains: exact, case-insensitive, no look-alikes
  ['203.0.113.9', null, 'x@partner.test', OK],
  ['203.0.113.9', null, 'x@PARTNER.Test', OK],
  ['203.0.113.9', null, 'x@sub.partner.test', '554 5.7.1 Relay access denied'],
  ['203.0.113.9', null, 'x@partner.test.evil.test', '554 5.7.1 Relay access denied'],
  ['203.0.113.9', null, 'x@evilpartner.test', '554 5.7.1 Relay access denied'],
  ['203.0.113.9', null, 'x@example.test.evil.test', '554 5.7.1 Relay access denied'],
  ['203.0.113.9', null, 'x@xn--exmple-cua.test', '554 5.7.1 Relay access denied'],
  // authenticated sessions relay
  ['203.0.113.9', 'bob@example.test', 'x@remote.test', OK],
  // address tricks: never relayed
  ['203.0.113.9', null, 'x%remote.test@example.test', '550 5.1.1 Recipient address rejected: User unknown in local recipient table'],
  ['203.0.113.9', null, 'remote.test!x@example.test', '550 5.1.1 Recipient address rejected: User unknown in local recipient table'],
  ['203.0.113.9', null, 'x%example.test@remote.test', '554 5.7.1 Relay access denied'],
  ['203.0.113.9', null, '"x@remote.test"@example.test', '501 5.1.3 Bad recipient address syntax'],
  ['203.0.113.9', null, '"x"@example.test', '501 5.1.3 Bad recipient address syntax'],
  ['203.0.113.9', null, 'x@[192.0.2.1]', '501 5.1.3 Bad recipient address syntax'],
  ['203.0.113.9', null, 'x@[IPv6:2001:db8::1]', '501 5.1.3 Bad recipient address syntax'],
  ['203.0.113.9', null, 'bob@example.test.', '501 5.1.3 Bad recipient address syntax'],
  ['203.0.113.9', null, 'x@remote.test.', '501 5.1.3 Bad recipient address syntax'],
  ['203.0.113.9', null, 'x@remote.test@example.test', '501 5.1.3 Bad recipient address syntax'],
  ['203.0.113.9', null, '@example.test:x@remote.test', '501 5.1.3 Bad recipient address syntax'],
  // Cyrillic a: a valid IDN (xn--exmple-4nf.test), another domain than the local one, so relaying is refused.
  ['203.0.113.9', null, 'x@exаmple.test', '554 5.7.1 Relay access denied'],
  ['203.0.113.9', null, 'x@EXAMPLE.test', '550 5.1.1 Recipient address rejected: User unknown in local recipient table'],
  ['203.0.113.9', null, 'x@ｅｘａｍｐｌｅ.test', '501 5.1.3 Bad recipient address syntax'], // full-width: a mapped form, refused
  ['203.0.113.9', null, 'x@xn--zz.test', '501 5.1.3 Bad recipient address syntax'],
  ['203.0.113.9', null, 'üser@example.test', '553 5.6.7 Non-ASCII address not permitted without SMTPUTF8 on MAIL FROM'],
  ['203.0.113.9', null, 'x@', '501 5.1.3 Bad recipient address syntax'],
  ['203.0.113.9', null, '', '501 5.1.3 Bad recipient address syntax'],
  ['203.0.113.9', null, '.x@remote.test', '501 5.1.3 Bad recipient address syntax'],
  ['203.0.113.9', null, 'x..y@example.test', '501 5.1.3 Bad recipient address syntax'],
];

for (const [ip, login, rcpt, expected] of table) {
  test(`RCPT ${JSON.stringify(rcpt)} from ${ip}${login ? ` as ${login}` : ''} -> ${expected}`, () => {
    const { verdict } = checkRecipient(facts(ip, login), rcpt, relay, dir, 'example.test');
    assert.equal(verdict.ok ? OK : formatReply(verdict.reply), expected);
  });
}

test('relay by authentication can be switched off', () => {
  const strict = new RelayPolicy(validateConfig({ relay: { allowAuthenticated: false } }));
  const v = strict.check(facts('203.0.113.9', 'bob@example.test'), 'remote.test');
  assert.equal(v.ok ? OK : formatReply(v.reply), '554 5.7.1 Relay access denied');
});

test('an empty allow list relays for nobody', () => {
  const none = new RelayPolicy(validateConfig({}));
  for (const ip of ['127.0.0.1', '::1', '0.0.0.0']) assert.equal(none.check(facts(ip), 'remote.test').ok, false);
});
