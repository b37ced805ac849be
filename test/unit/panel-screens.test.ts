// The status screens from sample `status --json` documents, hostile ones included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { panelFacts } from '../../src/panel/facts.js';
import { statusScreens } from '../../src/panel/screens.js';
import { wrap } from '../../src/panel/text.js';
import { SERVING, haPart } from '../helpers/panel-samples.js';

const NET = { interface: 'lan0', address: '192.168.1.10', netmask: '255.255.255.0', gateway: '192.168.1.1' };
const fits = (screens: string[][], cols: number, rows: number) => {
  for (const s of screens) {
    assert.ok(s.length <= rows, `at most ${rows} rows: ${JSON.stringify(s)}`);
    for (const r of s) {
      assert.ok(r.length <= cols, `at most ${cols} columns: ${JSON.stringify(r)}`);
      assert.match(r, /^[\x20-\x7e]*$/, 'printable ASCII only');
    }
  }
};

test('a serving box without HA: identity, HA off, queue, disk, backup not set up', () => {
  const screens = statusScreens(panelFacts(SERVING, NET, 'ignored'), 20, 4);
  assert.deepEqual(screens, [
    ['mail.example.test', 'IP 192.168.1.10'],
    ['HA: off', 'single box'],
    ['Queue: 3 msg', 'Deferred: 2', 'Held: 1'],
    ['Disk: healthy', 'Used: 42.5%'],
    ['Backup: not set up'],
  ]);
});

test('HA active with messages on one disk only; alarms, restore and a backup when the status has them', () => {
  const status = { ...SERVING, ha: haPart('active', 'standby out of sync'), alarms: { unacknowledged: 2, latest: 'the data disk is missing: not found' }, backup: { last: '2026-01-05T03:00Z' }, restore: { running: true, percent: 41.7 } };
  const screens = statusScreens(panelFacts(status, NET, 'x'), 20, 4);
  assert.deepEqual(screens[1], ['HA: active', 'Peer: standby', 'standby out of sync', 'One disk only: 4']);
  assert.deepEqual(screens[4], ['Last backup:', '2026-01-05T03:00Z']);
  assert.deepEqual(screens[5], ['Restore running', '41% done']);
  assert.deepEqual(screens[6], ['Alarms: 2 new', 'the data disk is', 'missing: not found', 'Enter: menu']);
});

test('an HA standby: the hostname from the config, the mail screens say where mail runs', () => {
  const screens = statusScreens(panelFacts({ ha: haPart('standby', 'in sync') }, null, 'mx2.example.test'), 20, 4);
  assert.deepEqual(screens[0], ['mx2.example.test', 'IP unknown']);
  assert.deepEqual(screens[1], ['HA: standby', 'Peer: active', 'in sync']);
  assert.deepEqual(screens[2], ['Queue: on the', 'active box']);
});

test('a long hostname wraps over the rows the address leaves; a hostile one shows no control byte', () => {
  const long = 'a-very-long-host-name-label.of-a-subdomain.example.test';
  const s1 = statusScreens(panelFacts({ ...SERVING, hostname: long }, NET, ''), 20, 4);
  assert.deepEqual(s1[0], ['a-very-long-host-nam', 'e-label.of-a-subdoma', 'in.example.test', 'IP 192.168.1.10'], 'the whole name over three rows');
  const longer = statusScreens(panelFacts({ ...SERVING, hostname: long + '.and-more' }, NET, ''), 20, 4);
  assert.equal(longer[0]![2], 'in.example.test.a...', 'cut where it does not fit');
  const hostile = 'mx\xfe\x58\x1b[2J\u6e2c\u8a66\x00\r\n.example.test';
  const s2 = statusScreens(panelFacts({ ...SERVING, hostname: hostile, alarms: { unacknowledged: 1, latest: '\xfeG\x01\x01 evil \u0007' } }, { address: '\xfe\x42' }, ''), 20, 4);
  fits(s2, 20, 4);
  assert.ok(!s2.flat().join('').includes('\xfe'));
  const huge = 'x'.repeat(100_000);
  fits(statusScreens(panelFacts({ ...SERVING, hostname: huge, alarms: { unacknowledged: 1e9, latest: huge } }, { address: huge }, huge), 20, 4), 20, 4);
});

test('a 16x2 display gets 16x2 screens', () => {
  const status = { ...SERVING, ha: haPart('active', 'in sync'), alarms: { unacknowledged: 1, latest: 'something went wrong somewhere' } };
  const screens = statusScreens(panelFacts(status, NET, ''), 16, 2);
  fits(screens, 16, 2);
  assert.deepEqual(screens[0], ['mail.example....', 'IP 192.168.1.10']);
  assert.deepEqual(screens[1], ['HA: active', 'Peer: standby']);
});

test('a document of the wrong shape is no crash: fields of the wrong type are unknown', () => {
  for (const junk of [null, 42, 'status', [], { queue: 'x', disk: [], ha: 5, alarms: { unacknowledged: 'many' } }]) {
    fits(statusScreens(panelFacts(junk, junk, 'h'), 20, 4), 20, 4);
  }
  const s = statusScreens(panelFacts(null, null, 'h', 'no answer from the daemon'), 20, 4);
  assert.deepEqual(s[0], ['Status unreadable', 'no answer from the', 'daemon']);
});

test('wrap: words kept whole where they fit, long words cut, the rest marked "..."', () => {
  assert.deepEqual(wrap('one two three four', 9, 2), ['one two', 'three...']);
  assert.deepEqual(wrap('abcdefghijkl', 5, 3), ['abcde', 'fghij', 'kl']);
  assert.deepEqual(wrap('  ', 5, 3), []);
});
