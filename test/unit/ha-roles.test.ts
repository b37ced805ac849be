import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, isCurrent, links, outranks, type Decision, type Heartbeat, type Role, type RoleInputs, type SelfState } from '../../src/ha/roles.js';

const DEAD = 3_000;
const INIT = 30_000;
const BOOT = Date.parse('2026-11-30T10:00:00Z');
const NOW = BOOT + 600_000; // long after boot unless a test says otherwise

const self = (s: Partial<SelfState> = {}): SelfState => ({ nodeId: 'mlsd-a', priority: 100, epoch: 4, lastRole: 'standby', inSync: true, ...s });

/** The heartbeat a box with this saved state and role sends, as the node would build it. */
const hbOf = (s: SelfState, role: Role, more: Partial<Heartbeat> = {}): Heartbeat => ({
  t: 'hb',
  node: s.nodeId,
  role,
  epoch: s.epoch,
  priority: s.priority,
  current: isCurrent(s),
  standbyInSync: false,
  pos: 0,
  cfg: 'c0ffee',
  ...more,
});

const PEER = self({ nodeId: 'mlsd-b', lastRole: 'active' });

/** A box that heard the peer 100 ms ago on both links, peer active, no gateway check. */
function inputs(i: Partial<RoleInputs> = {}): RoleInputs {
  return {
    now: NOW,
    bootAt: BOOT,
    role: 'standby',
    self: self(),
    heardSerial: NOW - 100,
    heardNet: NOW - 100,
    serialConfigured: true,
    peer: hbOf(PEER, 'active'),
    deadMs: DEAD,
    initDeadMs: INIT,
    gatewayOk: null,
    ...i,
  };
}

const kind = (d: Decision) => d.kind;

test('links: a link is alive until deadMs has passed since it last heard the peer, to the millisecond', () => {
  const l = (heardSerial: number | null, heardNet: number | null, serialConfigured = true) =>
    links({ now: NOW, heardSerial, heardNet, serialConfigured, deadMs: DEAD });
  assert.deepEqual(l(NOW - DEAD + 1, NOW - DEAD + 1), { serial: true, net: true, peerAlive: true, fault: 'none' });
  assert.deepEqual(l(NOW - DEAD, NOW - DEAD + 1), { serial: false, net: true, peerAlive: true, fault: 'serial' });
  assert.deepEqual(l(NOW - DEAD + 1, NOW - DEAD), { serial: true, net: false, peerAlive: true, fault: 'network' });
  assert.deepEqual(l(NOW - DEAD, null), { serial: false, net: false, peerAlive: false, fault: 'none' });
  assert.deepEqual(l(null, null), { serial: false, net: false, peerAlive: false, fault: 'none' });
  // Without a serial cable, a network link alone is no fault, and its silence is a dead peer.
  assert.deepEqual(l(null, NOW - 100, false), { serial: false, net: true, peerAlive: true, fault: 'none' });
  assert.deepEqual(l(null, NOW - DEAD, false), { serial: false, net: false, peerAlive: false, fault: 'none' });
});

test('isCurrent: was active, in sync, or no history; an out-of-sync standby is not', () => {
  assert.equal(isCurrent(self({ lastRole: 'active', inSync: false })), true);
  assert.equal(isCurrent(self({ lastRole: 'standby', inSync: true })), true);
  assert.equal(isCurrent(self({ lastRole: 'none', inSync: false })), true);
  assert.equal(isCurrent(self({ lastRole: 'standby', inSync: false })), false);
});

test('outranks: epoch, then current, then priority, then node id; never both ways', () => {
  const r = (epoch: number, current: boolean, priority: number, node: string) => ({ epoch, current, priority, node });
  const pairs: [ReturnType<typeof r>, ReturnType<typeof r>][] = [
    [r(5, false, 1, 'a'), r(4, true, 200, 'z')], // epoch beats everything after it
    [r(4, true, 1, 'a'), r(4, false, 200, 'z')], // then current over outdated
    [r(4, true, 200, 'a'), r(4, true, 100, 'z')], // then priority
    [r(4, true, 100, 'mlsd-b'), r(4, true, 100, 'mlsd-a')], // then node id
  ];
  for (const [hi, lo] of pairs) {
    assert.equal(outranks(hi, lo), true, JSON.stringify([hi, lo]));
    assert.equal(outranks(lo, hi), false, JSON.stringify([lo, hi]));
  }
  assert.equal(outranks(r(4, true, 100, 'a'), r(4, true, 100, 'a')), false);
});

test('in-sync standby: promotes when both links have been silent for deadMs, not when only one is', () => {
  const serialCut = inputs({ heardSerial: NOW - DEAD, heardNet: NOW - 100 });
  assert.equal(links(serialCut).fault, 'serial');
  assert.deepEqual(decide(serialCut), { kind: 'stay' });

  const netCut = inputs({ heardSerial: NOW - 100, heardNet: NOW - DEAD });
  assert.equal(links(netCut).fault, 'network');
  assert.deepEqual(decide(netCut), { kind: 'stay' });

  // One millisecond short of deadMs on one link: the peer is still alive.
  assert.deepEqual(decide(inputs({ heardSerial: NOW - DEAD + 1, heardNet: NOW - DEAD })), { kind: 'stay' });

  const bothDead = inputs({ heardSerial: NOW - DEAD, heardNet: NOW - DEAD });
  assert.equal(links(bothDead).peerAlive, false);
  assert.equal(links(bothDead).fault, 'none');
  assert.equal(kind(decide(bothDead)), 'promote');
  // The gateway being up does not change that; the last heartbeat saying "active" does not either.
  assert.equal(kind(decide({ ...bothDead, gatewayOk: true })), 'promote');
});

test('in-sync standby without a serial cable: the network link going silent is a dead peer', () => {
  const d = decide(inputs({ serialConfigured: false, heardSerial: null, heardNet: NOW - DEAD }));
  assert.equal(kind(d), 'promote');
  assert.deepEqual(decide(inputs({ serialConfigured: false, heardSerial: null, heardNet: NOW - 100 })), { kind: 'stay' });
});

test('standby with one link alive does not promote, even with its gateway down', () => {
  for (const [heardSerial, heardNet] of [[NOW - 100, null], [null, NOW - 100]] as const) {
    for (const gatewayOk of [null, true, false]) {
      assert.deepEqual(decide(inputs({ heardSerial, heardNet, gatewayOk })), { kind: 'stay' }, `${heardSerial} ${heardNet} ${gatewayOk}`);
    }
  }
});

test('out-of-sync standby: the peer dying makes it outdated, not active', () => {
  const dead = { heardSerial: NOW - DEAD, heardNet: NOW - DEAD - 5_000 };
  assert.equal(kind(decide(inputs({ ...dead, self: self({ inSync: false }) }))), 'outdated');
  // A box still syncing is not in sync either, whatever its flag says.
  assert.equal(kind(decide(inputs({ ...dead, role: 'syncing', self: self({ inSync: false }) }))), 'outdated');
  assert.equal(kind(decide(inputs({ ...dead, role: 'syncing', self: self({ inSync: true }) }))), 'outdated');
  // With the peer alive it just keeps following.
  assert.deepEqual(decide(inputs({ self: self({ inSync: false }) })), { kind: 'stay' });
});

test('standby whose peer died while its own gateway is down fences instead of promoting', () => {
  const d = decide(inputs({ heardSerial: NOW - DEAD, heardNet: NOW - DEAD, gatewayOk: false }));
  assert.equal(kind(d), 'fence');
});

test('starting box alone: waits initDeadMs, then promotes if current', () => {
  const alone = { role: 'starting' as const, heardSerial: null, heardNet: null, peer: null };
  for (const s of [self({ lastRole: 'standby', inSync: true }), self({ lastRole: 'active', inSync: false }), self({ lastRole: 'none', inSync: false })]) {
    assert.deepEqual(decide(inputs({ ...alone, self: s, now: BOOT })), { kind: 'stay' }, s.lastRole);
    assert.deepEqual(decide(inputs({ ...alone, self: s, now: BOOT + INIT - 1 })), { kind: 'stay' }, s.lastRole);
    assert.equal(kind(decide(inputs({ ...alone, self: s, now: BOOT + INIT }))), 'promote', s.lastRole);
  }
});

test('starting box alone that was an out-of-sync standby goes outdated after initDeadMs, never active', () => {
  const base = inputs({ role: 'starting', heardSerial: null, heardNet: null, peer: null, self: self({ lastRole: 'standby', inSync: false }) });
  assert.deepEqual(decide({ ...base, now: BOOT + INIT - 1 }), { kind: 'stay' });
  assert.equal(kind(decide({ ...base, now: BOOT + INIT })), 'outdated');
  // Once outdated, it waits for the peer (or an operator) however long the silence lasts.
  assert.deepEqual(decide({ ...base, role: 'outdated', now: BOOT + 10 * INIT }), { kind: 'stay' });
});

test('starting box alone with its gateway down fences instead of promoting', () => {
  const d = decide(inputs({ role: 'starting', heardSerial: null, heardNet: null, peer: null, gatewayOk: false, self: self({ lastRole: 'active' }) }));
  assert.equal(kind(d), 'fence');
});

test('starting box that hears an active peer joins it; merge only if it was active itself', () => {
  const now = BOOT + 1_000; // well before initDeadMs: hearing the peer needs no wait
  const join = (lastRole: SelfState['lastRole'], inSync: boolean) =>
    decide(inputs({ role: 'starting', now, heardSerial: now - 100, heardNet: null, self: self({ lastRole, inSync, epoch: 9 }) }));
  const a = join('active', true);
  assert.equal(a.kind, 'join');
  assert.equal(a.kind === 'join' && a.merge, true);
  for (const [lastRole, inSync] of [['standby', true], ['standby', false], ['none', false]] as const) {
    const d = join(lastRole, inSync);
    assert.equal(d.kind, 'join', lastRole);
    assert.equal(d.kind === 'join' && d.merge, false, lastRole);
  }
});

/** Both boxes' decisions when each hears the other in the given roles. */
function both(a: SelfState, aRole: Role, b: SelfState, bRole: Role, now = BOOT + 1_000): [Decision, Decision] {
  const heard = { now, heardSerial: now - 100, heardNet: now - 100 };
  return [
    decide(inputs({ ...heard, role: aRole, self: a, peer: hbOf(b, bRole) })),
    decide(inputs({ ...heard, role: bRole, self: b, peer: hbOf(a, aRole) })),
  ];
}

test('two boxes starting together: exactly one promotes, by epoch, then current, then priority, then node id', () => {
  const cases: { why: string; win: SelfState; lose: SelfState }[] = [
    {
      why: 'higher epoch, though lower priority and node id',
      win: self({ nodeId: 'mlsd-a', epoch: 5, priority: 10, lastRole: 'standby', inSync: true }),
      lose: self({ nodeId: 'mlsd-b', epoch: 4, priority: 200, lastRole: 'active' }),
    },
    {
      why: 'current over outdated at the same epoch, though lower priority',
      win: self({ nodeId: 'mlsd-a', epoch: 4, priority: 10, lastRole: 'standby', inSync: true }),
      lose: self({ nodeId: 'mlsd-b', epoch: 4, priority: 200, lastRole: 'standby', inSync: false }),
    },
    {
      why: 'higher priority when both are current',
      win: self({ nodeId: 'mlsd-a', epoch: 4, priority: 200, lastRole: 'standby', inSync: true }),
      lose: self({ nodeId: 'mlsd-b', epoch: 4, priority: 100, lastRole: 'active' }),
    },
    {
      why: 'node id when all else is equal',
      win: self({ nodeId: 'mlsd-b', epoch: 4, priority: 100, lastRole: 'active' }),
      lose: self({ nodeId: 'mlsd-a', epoch: 4, priority: 100, lastRole: 'active' }),
    },
  ];
  for (const { why, win, lose } of cases) {
    const [w, l] = both(win, 'starting', lose, 'starting');
    assert.equal(w.kind, 'promote', `${why}: winner`);
    assert.deepEqual(l, { kind: 'stay' }, `${why}: loser`);
    // The same pair seen the other way round (argument order must not matter).
    const [l2, w2] = both(lose, 'starting', win, 'starting');
    assert.equal(w2.kind, 'promote', `${why}: winner, swapped`);
    assert.deepEqual(l2, { kind: 'stay' }, `${why}: loser, swapped`);
  }
});

test('two out-of-sync boxes starting together: neither promotes', () => {
  const a = self({ nodeId: 'mlsd-a', lastRole: 'standby', inSync: false });
  const b = self({ nodeId: 'mlsd-b', lastRole: 'standby', inSync: false });
  assert.deepEqual(both(a, 'starting', b, 'starting', BOOT + 10 * INIT), [{ kind: 'stay' }, { kind: 'stay' }]);
});

test('two active boxes after a healed partition: the lower-ranked demotes with merge, the other stays', () => {
  const cases: { why: string; win: SelfState; lose: SelfState }[] = [
    {
      why: 'later epoch keeps the address',
      win: self({ nodeId: 'mlsd-a', epoch: 6, priority: 10, lastRole: 'active' }),
      lose: self({ nodeId: 'mlsd-b', epoch: 5, priority: 200, lastRole: 'active' }),
    },
    {
      why: 'same epoch: priority',
      win: self({ nodeId: 'mlsd-a', epoch: 5, priority: 200, lastRole: 'active' }),
      lose: self({ nodeId: 'mlsd-b', epoch: 5, priority: 100, lastRole: 'active' }),
    },
  ];
  for (const { why, win, lose } of cases) {
    for (const [w, l] of [both(win, 'active', lose, 'active'), both(lose, 'active', win, 'active').reverse() as [Decision, Decision]]) {
      assert.deepEqual(w, { kind: 'stay' }, `${why}: winner`);
      assert.equal(l.kind, 'demote', `${why}: loser`);
      assert.equal(l.kind === 'demote' && l.merge, true, `${why}: loser merges`);
    }
  }
});

test('active box with a standby following it stays', () => {
  const [a, s] = both(self({ lastRole: 'active', priority: 1 }), 'active', self({ nodeId: 'mlsd-b', priority: 500 }), 'standby');
  assert.deepEqual(a, { kind: 'stay' });
  assert.deepEqual(s, { kind: 'stay' });
});

test('active box with both links silent keeps serving unless its gateway is down, then fences', () => {
  const base = inputs({ role: 'active', self: self({ lastRole: 'active' }), heardSerial: NOW - DEAD, heardNet: NOW - DEAD, peer: hbOf(PEER, 'standby') });
  assert.deepEqual(decide({ ...base, gatewayOk: null }), { kind: 'stay' });
  assert.deepEqual(decide({ ...base, gatewayOk: true }), { kind: 'stay' });
  assert.equal(kind(decide({ ...base, gatewayOk: false })), 'fence');
  // With one link still up, a gateway failure is not the peer's business: no fence.
  assert.deepEqual(decide({ ...base, heardNet: NOW - 100, gatewayOk: false }), { kind: 'stay' });
});

test('fenced box: promotes again once the gateway is back and the peer is still silent', () => {
  const base = inputs({ role: 'fenced', self: self({ lastRole: 'active' }), heardSerial: NOW - DEAD, heardNet: null, peer: hbOf(PEER, 'standby') });
  assert.deepEqual(decide({ ...base, gatewayOk: false }), { kind: 'stay' });
  assert.equal(kind(decide({ ...base, gatewayOk: true })), 'promote');
  // If the peer took over meanwhile, the fenced box joins it instead, handing over its mail.
  const d = decide({ ...base, gatewayOk: true, heardNet: NOW - 100, peer: hbOf(PEER, 'active') });
  assert.equal(d.kind, 'join');
  assert.equal(d.kind === 'join' && d.merge, true);
});
