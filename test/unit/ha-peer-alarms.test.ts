import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { cleanPeerText, parseAlarmSummary, summarizeAlarms, PeerAlarms, PEER_ALARM_TEXT_MAX, PEER_ALARMS_REMEMBERED, type AlarmSummary } from '../../src/ha/peer-alarms.js';
import type { EventInput, MlsdEvent } from '../../src/events/events.js';
import { Heartbeats } from '../../src/ha/heartbeats.js';
import { SerialReplayGuard } from '../../src/ha/serial-guard.js';
import { SavedHaState } from '../../src/ha/state.js';
import { deriveKey } from '../../src/ha/wire.js';
import type { NetLink } from '../../src/ha/netlink.js';
import type { SerialLine } from '../../src/hw/serial.js';
import type { Heartbeat } from '../../src/ha/roles.js';
import { openDb } from '../../src/store/db.js';
import { ManualClock } from '../helpers/clock.js';

const silent = pino({ level: 'silent' });
const ID = 'mk2abcdef0123abcd';
const ID2 = 'mk2abcdeg4567cdef';

/** Nothing a terminal, the LCD (0xFE is its command prefix) or a mail reader would act on. */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u00fe]/u;

test('parseAlarmSummary: a well-formed summary is taken; absent, malformed or out-of-range ones are "not known" (null)', () => {
  assert.deepEqual(parseAlarmSummary({ n: 2, latest: { id: ID, kind: 'disk.missing', text: 'the data disk is missing' } }), { n: 2, latest: { id: ID, kind: 'disk.missing', text: 'the data disk is missing' } });
  assert.deepEqual(parseAlarmSummary({ n: 0 }), { n: 0, latest: null });
  assert.deepEqual(parseAlarmSummary({ n: 0, latest: 'junk' }), { n: 0, latest: null }, 'no alarms: what latest says does not matter');
  assert.deepEqual(parseAlarmSummary({ n: 3, latest: null }), { n: 3, latest: null }, 'alarms the peer mailed itself');
  for (const bad of [undefined, null, 'x', 7, [], [1], { n: -1 }, { n: 1.5 }, { n: '3' }, { n: 2 ** 60 }, { n: Number.NaN }, { n: 1, latest: 'x' }, { n: 1, latest: [] }]) {
    assert.equal(parseAlarmSummary(bad), null, JSON.stringify(bad));
  }
  // The id de-duplicates: anything but an event id is refused, never cleaned into one.
  for (const id of [undefined, 5, '', '../../etc/passwd', `${ID}x`, ID.toUpperCase(), `${ID.slice(0, 16)}\u00fe`, 'mk2abcdef0123abc\n']) {
    assert.equal(parseAlarmSummary({ n: 1, latest: { id, kind: 'disk.missing', text: 't' } }), null, JSON.stringify(id));
  }
});

test('parseAlarmSummary: a hostile text is cleaned of control characters, escape sequences and 0xFE, and a huge one is cut; a hostile kind becomes "unknown"', () => {
  const hostile = 'disk\x1b[2J\x1b[1;1Hgone\x1b]0;pwned\x07 \x9b31m red \x00\x07\x08\r\n\x7f \xfeX\xfe\x01 \u202eevil\u2028 \ud800 ok 你好';
  const got = parseAlarmSummary({ n: 1, latest: { id: ID, kind: 'disk.\x1b[2Jmissing', text: hostile } });
  assert.ok(got?.latest);
  assert.doesNotMatch(got.latest.text, UNSAFE);
  assert.ok(!got.latest.text.includes('[2J') && !got.latest.text.includes('pwned') && !got.latest.text.includes('31m'), got.latest.text);
  assert.match(got.latest.text, /^diskgone .* red .* ok 你好$/);
  assert.equal(got.latest.kind, 'unknown');

  const huge = parseAlarmSummary({ n: 1, latest: { id: ID, kind: 'disk.missing', text: 'x'.repeat(1_000_000) } });
  assert.equal([...huge!.latest!.text].length, PEER_ALARM_TEXT_MAX);
  assert.ok(huge!.latest!.text.endsWith('...'));
  assert.equal(parseAlarmSummary({ n: 1, latest: { id: ID, kind: 'k', text: { toString: 'x' } } })!.latest!.text, '', 'a text that is no string is empty');
  assert.equal([...cleanPeerText('€'.repeat(500))].length, PEER_ALARM_TEXT_MAX, 'cut by characters, not bytes');
});

const ev = (id: string, kind: string, text = `${kind} text`): MlsdEvent => ({ id, time: '2026-01-05T10:00:00.000Z', kind, severity: 'critical', text });

test('summarizeAlarms: counts own alarms only, names the newest one this box did not mail itself, cleans its text', () => {
  const list = [ev('c', 'ha.peerAlarm'), ev('b', 'ha.failover'), ev('a', 'disk.failurePredicted', 'failing\x1b[5m\xfe')];
  assert.deepEqual(summarizeAlarms(list, (id) => id !== 'b'), { n: 2, latest: { id: 'a', kind: 'disk.failurePredicted', text: 'failing?' } });
  assert.deepEqual(summarizeAlarms(list, () => true).latest?.id, 'b');
  assert.deepEqual(summarizeAlarms([ev('c', 'ha.peerAlarm')], () => true), { n: 0, latest: null }, "the peer's alarms raised here are not sent back");
  assert.deepEqual(summarizeAlarms([], () => true), { n: 0, latest: null });
});

test('PeerAlarms: each peer alarm id is raised once as a critical ha.peerAlarm naming the peer; the remembered ids are bounded; nothing for no alarm', () => {
  let saved: string[] = [];
  const emitted: EventInput[] = [];
  const raiser = () => new PeerAlarms({ raised: () => saved, save: (r) => (saved = r), emit: (e) => emitted.push(e), log: silent });
  const p = raiser();
  const s = (id: string, text = 'SMART predicts failure'): AlarmSummary => ({ n: 1, latest: { id, kind: 'disk.failurePredicted', text } });
  p.heard('b', null);
  p.heard('b', { n: 2, latest: null });
  assert.equal(emitted.length, 0);
  for (let i = 0; i < 50; i++) p.heard('b', s(ID));
  assert.equal(emitted.length, 1);
  assert.deepEqual(emitted[0], { kind: 'ha.peerAlarm', severity: 'critical', text: 'standby box b: disk.failurePredicted: SMART predicts failure', data: { peer: 'b', id: ID, kind: 'disk.failurePredicted' } });
  // A new box (the saved state read again) remembers.
  raiser().heard('b', s(ID));
  assert.equal(emitted.length, 1);
  p.heard('b', s(ID2));
  assert.equal(emitted.length, 2);
  // A hostile node name is cleaned like the text.
  p.heard('b\x1b[2J\xfe', s('mk2abcdeh0000aaaa'));
  assert.doesNotMatch(emitted[2]!.text, UNSAFE);
  for (let i = 0; i < 100; i++) p.heard('b', s(`mk3abcdef${String(i).padStart(8, '0')}`));
  assert.equal(saved.length, PEER_ALARMS_REMEMBERED);
});

test('heartbeats: the alarm summary is inside the signed serial line; a line whose alarm text is changed on the cable is dropped', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-peeralarm-'));
  try {
    const clock = new ManualClock();
    const key = deriveKey('k', 'heartbeat');
    const link = { onHeard() {}, onFrame() {}, heartbeat() {} } as unknown as NetLink;
    // The cable: what a writes, b reads, through `tamper`.
    let tamper = (s: string) => s;
    const bRead: ((c: Buffer) => void)[] = [];
    const serial = (read: ((c: Buffer) => void)[], write: (s: string) => void): SerialLine => ({
      device: 'pty',
      isOpen: true,
      start() {},
      async write(data) {
        write(String(data));
      },
      onData: (fn) => void read.push(fn),
      onState() {},
      async stop() {},
    });
    const beats = async (name: string, read: ((c: Buffer) => void)[], write: (s: string) => void, alarms: AlarmSummary | null) => {
      const db = await openDb(join(dir, name));
      const state = new SavedHaState(db, silent);
      await state.load();
      const guard = new SerialReplayGuard(state, clock);
      await guard.begin();
      const heard: (Heartbeat & { gen?: number })[] = [];
      const hb = new Heartbeats({
        link,
        serial: serial(read, write),
        key,
        guard,
        nodeId: () => name,
        heartbeatMs: () => 200,
        heartbeat: () => ({ t: 'hb', node: name, role: 'standby', epoch: 1, priority: 1, current: true, standbyInSync: false, pos: 0, cfg: 'c', gen: 0, ...(alarms ? { alarms } : {}) }),
        onHeartbeat: (h) => heard.push(h),
        onTakeover() {},
        clock,
        log: silent,
      });
      hb.start();
      return { hb, heard, db };
    };
    const a = await beats('a', [], (s) => bRead.forEach((fn) => fn(Buffer.from(tamper(s), 'latin1'))), { n: 1, latest: { id: ID, kind: 'disk.missing', text: 'the data disk is missing' } });
    const b = await beats('b', bRead, () => undefined, null);
    a.hb.send();
    assert.equal(b.heard.length, 1);
    assert.deepEqual(parseAlarmSummary(b.heard[0]!.alarms), { n: 1, latest: { id: ID, kind: 'disk.missing', text: 'the data disk is missing' } });

    tamper = (s) => s.replace('the data disk is missing', 'the data disk is \x1b[2J fine');
    a.hb.send();
    tamper = (s) => s.replace('"n":1', '"n":0');
    a.hb.send();
    assert.equal(b.heard.length, 1, 'changed lines are not heard');
    tamper = (s) => s;
    a.hb.send();
    assert.equal(b.heard.length, 2);
    a.hb.stopSending();
    b.hb.stopSending();
    await Promise.all([a.db.close(), b.db.close()]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
