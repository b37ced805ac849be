import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig, ConfigStore, ConfigError, getKey } from '../../src/config/config.js';
import { needsRestart } from '../../src/config/restart.js';

const problems = (doc: unknown): string[] => {
  try {
    validateConfig(doc);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  return [];
};

test('defaults follow the keys of record', () => {
  const c = validateConfig({});
  assert.equal(c.senderLoginMismatch, 'reject');
  assert.equal(c.smtp.maxMessageBytes, 52428800);
  assert.deepEqual(c.relay, { allowIps: [], allowRecipientDomains: [], allowAuthenticated: true, localSenderFromOutside: 'reject' });
  assert.deepEqual(c.smtp.listeners.map((l) => [l.name, l.port]), [['mx', 25], ['submission', 587], ['smtps', 465]]);
  assert.equal(c.thresholds.perIpMessagesPerMinute, 0);
  assert.equal(c.routing.mode, 'mx');
});

test('every bad value is named by its key, all in one pass', () => {
  assert.deepEqual(
    problems({ relay: { allowIps: ['10.0.0.0/8', '10.0.0.300'] }, smtp: { listeners: [{ name: 'mx', host: 'h', port: 70000 }] }, bogus: 1 }),
    [
      'smtp.listeners.0.port: Too big: expected number to be <=65535',
      'relay.allowIps.1: expected an IPv4/IPv6 address or CIDR range such as 192.168.1.0/24',
      'bogus: unknown key',
    ],
  );
  assert.deepEqual(problems({ senderLoginMismatch: 'maybe' }), ['senderLoginMismatch: Invalid option: expected one of "reject"|"allow"']);
  assert.deepEqual(problems({ relay: { localSenderFromOutside: 'sometimes' } }), ['relay.localSenderFromOutside: Invalid option: expected one of "reject"|"allow"']);
  assert.deepEqual(problems({ relay: { allowRecipientDomains: ['partner..test', '夥伴。test'] } }), [
    'relay.allowRecipientDomains.0: partner..test: expected a domain name such as example.test or 例子.測試 (labels of 1-63 letters, digits or hyphens, at least two labels)',
    'relay.allowRecipientDomains.1: 夥伴。test: contains a full stop other than "." (such as 。); write the domain with "."',
  ]);
  assert.deepEqual(problems({ smtp: { listeners: [{ name: 'x', host: 'h', port: 1, starttls: true, implicitTls: true }] } }), [
    'smtp.listeners.0.starttls: starttls and implicitTls exclude each other',
  ]);
  assert.deepEqual(problems({ relay: { allowIps: ['2001:db8::/129'] } }), [
    'relay.allowIps.0: expected an IPv4/IPv6 address or CIDR range such as 192.168.1.0/24',
  ]);
});

test('domains are stored in one form: lower-case A-labels, whichever spelling was given', () => {
  const c = validateConfig({
    domains: ['Example.TEST', '例子.測試', 'XN--KPRY57D.xn--kpry57d'],
    relay: { allowRecipientDomains: ['夥伴.test'] },
    routing: { domains: { '夥伴.Test': { host: 'mx.partner.test' } } },
  });
  assert.deepEqual(c.domains, ['example.test', 'xn--fsqu00a.xn--g6w251d', 'xn--kpry57d.xn--kpry57d']);
  assert.deepEqual(c.relay.allowRecipientDomains, ['xn--xpq25v.test']);
  assert.deepEqual(Object.keys(c.routing.domains), ['xn--xpq25v.test']);
  const a = validateConfig({ alerts: { adminEmails: ['Admin@例子.測試'] }, thresholds: { exemptAccounts: ['News@XN--KPRY57D.xn--kpry57d'] } });
  assert.deepEqual(a.alerts.adminEmails, ['admin@xn--fsqu00a.xn--g6w251d']);
  assert.deepEqual(a.thresholds.exemptAccounts, ['news@xn--kpry57d.xn--kpry57d']);
  assert.deepEqual(problems({ alerts: { adminEmails: ['x@xn--zz.test'] } }), ['alerts.adminEmails.0: expected an address such as admin@example.test or admin@例子.測試']);
});

test('config set validates, saves atomically and notifies; a refused value changes nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-cfg-'));
  const { store, created } = await ConfigStore.open(dir, { domains: ['example.test'] });
  assert.equal(created, true);
  const seen: string[] = [];
  store.onChange((_c, key) => seen.push(key));
  await store.set('relay.allowIps', ['192.0.2.0/24']);
  assert.deepEqual(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')).relay.allowIps, ['192.0.2.0/24']);
  await assert.rejects(store.set('relay.allowIps', ['nope']), /relay\.allowIps\.0: expected an IPv4/);
  await assert.rejects(store.set('relay.nothing', 1), /relay\.nothing: unknown key/);
  assert.deepEqual(getKey(store.current, 'relay.allowIps'), ['192.0.2.0/24']);
  assert.deepEqual(seen, ['relay.allowIps']);
  const reopened = await ConfigStore.open(dir, {});
  assert.equal(reopened.created, false);
  assert.deepEqual(reopened.store.current.relay.allowIps, ['192.0.2.0/24']);
});

test('a config file that is not JSON is refused with its path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-cfg-'));
  await writeFile(join(dir, 'config.json'), '{ "domains": [');
  await assert.rejects(ConfigStore.open(dir, {}), /config\.json: not valid JSON/);
});

test('keys read only at start-up are marked in the schema; a parent covers its marked children', () => {
  const golden: [string, boolean][] = [
    ['ha', true],
    ['ha.enabled', true],
    ['ha.peer.host', true],
    ['smtp.listeners', true],
    ['smtp.listeners.0.port', true],
    ['smtp', true],
    ['scan.anomaly', true],
    ['scan.anomaly.factor', true],
    ['scan', true],
    ['smtp.maxMessageBytes', false],
    ['scan.outbound.action', false],
    ['relay.allowIps', false],
    ['routing.domains.partner.test.host', false],
    ['hostname', false],
    ['thresholds', false],
    ['nosuch.key', false],
  ];
  for (const [key, restart] of golden) assert.equal(needsRestart(key), restart, key);
});
