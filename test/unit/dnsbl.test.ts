import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { DnsblMonitor, type DnsblSettings } from '../../src/reputation/dnsbl.js';
import { dnsblQueryName, queryDnsbl, type DnsblLookup } from '../../src/reputation/dnsbl-query.js';
import { HOUR_MS } from '../../src/core/clock.js';
import { ManualClock } from '../helpers/clock.js';
import { Alerter } from '../../src/alerts/alerts.js';
import type { EventInput, MlsdEvent } from '../../src/events/events.js';

const OWN = '192.0.2.10';
const SMART = '203.0.113.5';
const ZEN = 'zen.spamhaus.org';
const COP = 'bl.spamcop.net';

type Answer = string[] | { code: string };

/** Fails like node's resolver: an Error whose `code` is the c-ares name (ENOTFOUND for NXDOMAIN). */
function dnsError(code: string, syscall: string, name: string): Error {
  return Object.assign(new Error(`${syscall} ${code} ${name}`), { code, syscall, hostname: name });
}

/** An in-memory DNS: a name not in `a` is NXDOMAIN. `hold` parks every look-up until released. */
class FakeDns implements DnsblLookup {
  readonly a = new Map<string, Answer>();
  readonly txt = new Map<string, Answer | string[][]>();
  readonly calls: string[] = [];
  active = 0;
  maxActive = 0;
  private held: (() => void)[] = [];
  private activeWaiters: { n: number; resolve: () => void }[] = [];
  holding = false;

  set(ip: string, zone: string, answer: Answer, txt?: string[][] | { code: string }): void {
    const name = dnsblQueryName(ip, zone);
    this.a.set(name, answer);
    if (txt) this.txt.set(name, txt);
    else this.txt.delete(name);
  }

  clear(ip: string, zone: string): void {
    this.a.delete(dnsblQueryName(ip, zone));
  }

  /** Resolves once `n` look-ups are in progress at the same time. */
  whenActive(n: number): Promise<void> {
    if (this.active >= n) return Promise.resolve();
    return new Promise((resolve) => this.activeWaiters.push({ n, resolve }));
  }

  release(): void {
    this.holding = false;
    for (const r of this.held.splice(0)) r();
  }

  async resolve4(name: string): Promise<string[]> {
    this.calls.push(name);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    for (const w of this.activeWaiters.filter((w) => w.n <= this.active)) {
      this.activeWaiters.splice(this.activeWaiters.indexOf(w), 1);
      w.resolve();
    }
    try {
      if (this.holding) await new Promise<void>((r) => this.held.push(r));
      else await new Promise((r) => setImmediate(r));
      const v = this.a.get(name);
      if (v === undefined) throw dnsError('ENOTFOUND', 'queryA', name);
      if (!Array.isArray(v)) throw dnsError(v.code, 'queryA', name);
      return [...v];
    } finally {
      this.active--;
    }
  }

  async resolveTxt(name: string): Promise<string[][]> {
    await new Promise((r) => setImmediate(r));
    const v = this.txt.get(name);
    if (v === undefined) throw dnsError('ENODATA', 'queryTxt', name);
    if (!Array.isArray(v)) throw dnsError(v.code, 'queryTxt', name);
    return v as string[][];
  }
}

function setup(over: Partial<DnsblSettings> = {}, extras?: () => Promise<{ ip: string; label: string }[]>) {
  const settings: DnsblSettings = { checkIps: [OWN], zones: [ZEN, COP], intervalMinutes: 30, ...over };
  const dns = new FakeDns();
  const events: EventInput[] = [];
  const changes: [string, boolean, string][] = [];
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const mon = new DnsblMonitor({
    settings: () => settings,
    ...(extras ? { extraIps: extras } : {}),
    lookup: dns,
    emit: (ev) => void events.push(ev),
    log,
    clock: new ManualClock(Date.parse('2025-03-01T02:00:00.000Z')),
  });
  mon.onChange((ip, listed, label) => changes.push([ip, listed, label]));
  return { settings, dns, events, changes, lines, mon };
}

const kinds = (evs: EventInput[]) => evs.map((e) => `${e.kind} ${e.ip} ${String(e.data?.zone)}`);

test('query name: reversed octets, then the zone', () => {
  assert.equal(dnsblQueryName('192.0.2.10', 'zen.spamhaus.org'), '10.2.0.192.zen.spamhaus.org');
  assert.equal(dnsblQueryName('1.2.3.4', 'bl.spamcop.net'), '4.3.2.1.bl.spamcop.net');
  assert.throws(() => dnsblQueryName('2001:db8::1', 'zen.spamhaus.org'));
});

test('the monitor asks each list about each address by that name', async () => {
  const { dns, mon } = setup({ checkIps: [OWN, '198.51.100.7'] });
  await mon.checkNow();
  assert.deepEqual(new Set(dns.calls), new Set([
    '10.2.0.192.zen.spamhaus.org', '10.2.0.192.bl.spamcop.net',
    '7.100.51.198.zen.spamhaus.org', '7.100.51.198.bl.spamcop.net',
  ]));
  assert.equal(dns.calls.length, 4);
});

test('classification: listed, clear, and error (including the 127.255.255.x refusals)', async () => {
  const dns = new FakeDns();
  dns.set(OWN, ZEN, ['127.0.0.2'], [['Listed by SBL, see ', 'https://check.spamhaus.org/sbl/query/SBL1']]);
  assert.deepEqual(await queryDnsbl(dns, OWN, ZEN), { state: 'listed', answer: '127.0.0.2', reason: 'Listed by SBL, see https://check.spamhaus.org/sbl/query/SBL1' });

  // A failed TXT look-up does not matter; several codes are all reported.
  dns.set(OWN, ZEN, ['127.0.0.4', '127.0.0.2'], { code: 'ETIMEOUT' });
  assert.deepEqual(await queryDnsbl(dns, OWN, ZEN), { state: 'listed', answer: '127.0.0.4, 127.0.0.2' });

  // TXT text cannot inject lines into logs or alert mail.
  dns.set(OWN, ZEN, ['127.0.0.2'], [['bad\r\nSubject: x']]);
  assert.equal((await queryDnsbl(dns, OWN, ZEN)).reason, 'bad Subject: x');

  dns.clear(OWN, ZEN);
  assert.deepEqual(await queryDnsbl(dns, OWN, ZEN), { state: 'clear' }); // NXDOMAIN
  dns.set(OWN, ZEN, { code: 'ENODATA' });
  assert.deepEqual(await queryDnsbl(dns, OWN, ZEN), { state: 'clear' });

  for (const code of ['ETIMEOUT', 'ESERVFAIL', 'EREFUSED', 'ECONNREFUSED']) {
    dns.set(OWN, ZEN, { code });
    assert.deepEqual(await queryDnsbl(dns, OWN, ZEN), { state: 'error', error: code });
  }
  for (const refusal of ['127.255.255.252', '127.255.255.254', '127.255.255.255']) {
    dns.set(OWN, ZEN, [refusal], [['should not be fetched']]);
    const r = await queryDnsbl(dns, OWN, ZEN);
    assert.equal(r.state, 'error', refusal);
    assert.match(r.error!, /refused/);
  }
  assert.match((await queryDnsbl(dns, OWN, ZEN)).error!, /over its free query limit/);
  dns.set(OWN, ZEN, ['127.255.255.254']);
  assert.match((await queryDnsbl(dns, OWN, ZEN)).error!, /public\/open resolver/);
  // Not a list's answer at all (an ISP resolver rewriting NXDOMAIN to its search page).
  dns.set(OWN, ZEN, ['198.51.100.80']);
  assert.deepEqual(await queryDnsbl(dns, OWN, ZEN), { state: 'error', error: 'unexpected answer 198.51.100.80' });
});

test('a 127.255.255.254 answer is an error in the monitor too: no event, not listed', async () => {
  const { dns, mon, events, changes } = setup();
  dns.set(OWN, ZEN, ['127.255.255.254']);
  const st = await mon.checkNow();
  assert.deepEqual(events, []);
  assert.deepEqual(changes, []);
  assert.equal(mon.isListed(OWN), false);
  const zen = st.ips[0]!.zones.find((z) => z.zone === ZEN)!;
  assert.equal(zen.state, 'error');
  assert.equal(st.ips[0]!.zones.find((z) => z.zone === COP)!.state, 'clear');
});

test('a listing is one event per (ip, zone), not repeated while it lasts; a delisting is reported', async () => {
  const { dns, mon, events } = setup();
  dns.set(OWN, ZEN, ['127.0.0.2'], [['Listed by SBL']]);
  await mon.checkNow();
  assert.deepEqual(events, [
    {
      kind: 'dnsbl.listed',
      severity: 'critical',
      ip: OWN,
      text: '192.0.2.10 is listed on zen.spamhaus.org (127.0.0.2: Listed by SBL)',
      data: { zone: ZEN, answer: '127.0.0.2', reason: 'Listed by SBL', label: 'own' },
    },
  ]);
  assert.equal(mon.isListed(OWN), true);
  assert.equal(mon.ownListed(), true);

  await mon.checkNow();
  assert.equal(events.length, 1, 'no repeat while still listed');

  // A second list is a second event; the first is not repeated.
  dns.set(OWN, COP, ['127.0.0.2']);
  await mon.checkNow();
  assert.deepEqual(kinds(events.slice(1)), [`dnsbl.listed ${OWN} ${COP}`]);
  assert.equal(events[1]!.text, '192.0.2.10 is listed on bl.spamcop.net (127.0.0.2)');
  assert.equal('reason' in events[1]!.data!, false);

  dns.clear(OWN, ZEN);
  await mon.checkNow();
  assert.deepEqual(events.slice(2), [
    {
      kind: 'dnsbl.delisted',
      severity: 'info',
      ip: OWN,
      text: '192.0.2.10 is no longer listed on zen.spamhaus.org (still listed on bl.spamcop.net)',
      data: { zone: ZEN, label: 'own', stillListedOn: [COP] },
    },
  ]);
  assert.equal(mon.ownListed(), true);

  dns.clear(OWN, COP);
  await mon.checkNow();
  assert.equal(events[3]!.text, '192.0.2.10 is no longer listed on bl.spamcop.net (not listed on any list checked)');
  assert.equal(mon.ownListed(), false);
  await mon.checkNow();
  assert.equal(events.length, 4);
});

test('listings on two lists in one round are two events', async () => {
  const { dns, mon, events } = setup();
  dns.set(OWN, ZEN, ['127.0.0.2']);
  dns.set(OWN, COP, ['127.0.0.2']);
  await mon.checkNow();
  assert.deepEqual(kinds(events), [`dnsbl.listed ${OWN} ${ZEN}`, `dnsbl.listed ${OWN} ${COP}`]);
});

test('the first round reports a listing but not a clear result', async () => {
  const a = setup();
  await a.mon.checkNow();
  assert.deepEqual(a.events, []);
  assert.deepEqual(a.changes, []);
  const st = a.mon.status();
  assert.equal(st.checkedAt, '2025-03-01T02:00:00.000Z');
  assert.deepEqual(st.ips, [
    {
      ip: OWN,
      label: 'own',
      listed: false,
      zones: [
        { zone: ZEN, state: 'clear', checkedAt: '2025-03-01T02:00:00.000Z' },
        { zone: COP, state: 'clear', checkedAt: '2025-03-01T02:00:00.000Z' },
      ],
    },
  ]);
});

test('an error round between changes nothing and emits nothing', async () => {
  const { dns, mon, events, changes } = setup();
  dns.set(OWN, ZEN, ['127.0.0.2'], [['Listed by SBL']]);
  await mon.checkNow();
  assert.equal(events.length, 1);

  for (const code of ['ETIMEOUT', 'ESERVFAIL', 'EREFUSED']) {
    dns.set(OWN, ZEN, { code });
    dns.set(OWN, COP, { code });
    const st = await mon.checkNow();
    assert.equal(events.length, 1, code);
    assert.equal(mon.isListed(OWN), true, 'still known listed');
    const ip = st.ips[0]!;
    assert.equal(ip.listed, true);
    // The error entry keeps the listing it still stands for.
    assert.deepEqual(ip.zones[0], { zone: ZEN, state: 'error', answer: '127.0.0.2', reason: 'Listed by SBL', error: code, checkedAt: '2025-03-01T02:00:00.000Z' });
    assert.deepEqual(ip.zones[1], { zone: COP, state: 'error', error: code, checkedAt: '2025-03-01T02:00:00.000Z' });
  }
  dns.set(OWN, ZEN, ['127.255.255.254']);
  await mon.checkNow();
  assert.equal(events.length, 1);

  // Back to listed: not a new listing.
  dns.set(OWN, ZEN, ['127.0.0.2']);
  dns.clear(OWN, COP);
  await mon.checkNow();
  assert.equal(events.length, 1);

  // Error, then clear: the delisting is reported when the clear answer comes.
  dns.set(OWN, ZEN, { code: 'ETIMEOUT' });
  await mon.checkNow();
  assert.equal(events.length, 1);
  dns.clear(OWN, ZEN);
  await mon.checkNow();
  assert.deepEqual(kinds(events.slice(1)), [`dnsbl.delisted ${OWN} ${ZEN}`]);
  assert.deepEqual(changes, [[OWN, true, 'own'], [OWN, false, 'own']]);
});

test('errors before any answer establish nothing: a later listing is reported, a later clear is not', async () => {
  const { dns, mon, events, changes } = setup({ zones: [ZEN] });
  dns.set(OWN, ZEN, { code: 'ESERVFAIL' });
  await mon.checkNow();
  dns.clear(OWN, ZEN);
  await mon.checkNow();
  assert.deepEqual(events, []);
  dns.set(OWN, ZEN, { code: 'ESERVFAIL' });
  await mon.checkNow();
  dns.set(OWN, ZEN, ['127.0.0.3']);
  await mon.checkNow();
  assert.deepEqual(kinds(events), [`dnsbl.listed ${OWN} ${ZEN}`]);
  assert.deepEqual(changes, [[OWN, true, 'own']]);
});

test('onChange fires on ip-level transitions only', async () => {
  const { dns, mon, changes } = setup();
  dns.set(OWN, ZEN, ['127.0.0.2']);
  await mon.checkNow();
  assert.deepEqual(changes, [[OWN, true, 'own']]);
  dns.set(OWN, COP, ['127.0.0.2']); // listed on a second list: still just "listed"
  await mon.checkNow();
  dns.clear(OWN, ZEN); // off one list, still on the other
  await mon.checkNow();
  assert.deepEqual(changes, [[OWN, true, 'own']]);
  dns.clear(OWN, COP);
  await mon.checkNow();
  assert.deepEqual(changes, [[OWN, true, 'own'], [OWN, false, 'own']]);
  await mon.checkNow();
  assert.equal(changes.length, 2);
});

test('extra addresses are checked and labelled, but ownListed ignores them', async () => {
  const { dns, mon, events, changes } = setup({}, async () => [{ ip: SMART, label: 'smarthost' }]);
  dns.set(SMART, ZEN, ['127.0.0.2']);
  const st = await mon.checkNow();
  assert.equal(mon.isListed(SMART), true);
  assert.equal(mon.ownListed(), false);
  assert.deepEqual(events[0]!.data, { zone: ZEN, answer: '127.0.0.2', label: 'smarthost' });
  assert.equal(events[0]!.text, '203.0.113.5 (smarthost) is listed on zen.spamhaus.org (127.0.0.2)');
  assert.deepEqual(changes, [[SMART, true, 'smarthost']]);
  assert.deepEqual(st.ips.map((i) => [i.ip, i.label, i.listed]), [[OWN, 'own', false], [SMART, 'smarthost', true]]);
  dns.set(OWN, COP, ['127.0.0.2']);
  await mon.checkNow();
  assert.equal(mon.ownListed(), true);
});

test('an address both own and extra counts as own; a failing extraIps keeps the previous extras', async () => {
  let fail = false;
  const { dns, mon, events } = setup({}, async () => {
    if (fail) throw new Error('smarthost name does not resolve');
    return [{ ip: OWN, label: 'smarthost' }, { ip: SMART, label: 'smarthost' }];
  });
  dns.set(SMART, ZEN, ['127.0.0.2']);
  let st = await mon.checkNow();
  assert.deepEqual(st.ips.map((i) => [i.ip, i.label]), [[OWN, 'own'], [SMART, 'smarthost']]);
  fail = true;
  st = await mon.checkNow();
  assert.deepEqual(st.ips.map((i) => [i.ip, i.label, i.listed]), [[OWN, 'own', false], [SMART, 'smarthost', true]]);
  assert.equal(events.length, 1);
});

test('an address removed from checkIps is dropped from status, and a listener hears it no longer counts', async () => {
  const { dns, mon, settings, events, changes } = setup({ checkIps: [OWN, '198.51.100.7'] });
  dns.set(OWN, ZEN, ['127.0.0.2']);
  await mon.checkNow();
  settings.checkIps = ['198.51.100.7'];
  const st = await mon.checkNow();
  assert.deepEqual(st.ips.map((i) => i.ip), ['198.51.100.7']);
  assert.equal(mon.isListed(OWN), false);
  assert.equal(mon.ownListed(), false);
  assert.deepEqual(changes, [[OWN, true, 'own'], [OWN, false, 'own']]);
  assert.equal(events.length, 1, 'no delisting: the list was not asked');
  assert.equal(dns.calls.filter((n) => n.startsWith('10.2.0.192.')).length, 2, 'not asked again');
});

test('a list removed from dnsbl.zones leaves the status', async () => {
  const { dns, mon, settings, changes } = setup();
  dns.set(OWN, COP, ['127.0.0.2']);
  await mon.checkNow();
  settings.zones = [ZEN];
  const st = await mon.checkNow();
  assert.deepEqual(st.ips[0]!.zones.map((z) => z.zone), [ZEN]);
  assert.equal(st.ips[0]!.listed, false);
  assert.deepEqual(changes, [[OWN, true, 'own'], [OWN, false, 'own']]);
});

// A concurrency under 8 would leave whenActive(8) waiting: the timeout makes that a failure.
test('rounds never overlap, and look-ups run at most 8 at once', { timeout: 10_000 }, async () => {
  const ips = Array.from({ length: 10 }, (_, i) => `198.51.100.${i + 1}`);
  const { dns, mon } = setup({ checkIps: ips, zones: [ZEN, COP, 'psbl.surriel.com'] });
  dns.holding = true;
  const first = mon.checkNow();
  const second = mon.checkNow();
  assert.equal(first, second, 'a second call joins the running round');
  await dns.whenActive(8);
  assert.equal(dns.active, 8);
  dns.release();
  // Look-ups started after the release are not held.
  await first;
  assert.equal(dns.calls.length, 30, 'each name asked once');
  assert.equal(dns.maxActive, 8);
  await mon.checkNow();
  assert.equal(dns.calls.length, 60, 'a call after the round ends starts a new one');
});

test('a look-up that never answers is an error after the deadline, and checking goes on', async () => {
  const events: EventInput[] = [];
  let hang = true;
  const lookup: DnsblLookup = {
    resolve4: (name) => (hang ? new Promise<string[]>(() => undefined) : Promise.resolve(name.startsWith('10.2.0.192.') ? ['127.0.0.2'] : [])),
    resolveTxt: () => Promise.reject(dnsError('ENODATA', 'queryTxt', 'x')),
  };
  const clock = new ManualClock();
  const mon = new DnsblMonitor({
    settings: () => ({ checkIps: [OWN], zones: [ZEN], intervalMinutes: 30 }),
    lookup,
    emit: (ev) => void events.push(ev),
    log: pino({ level: 'silent' }),
    lookupDeadlineMs: 30,
    clock,
  });
  const round = mon.checkNow();
  await clock.advance(30);
  const st = await round;
  assert.equal(st.ips[0]!.zones[0]!.state, 'error');
  assert.match(st.ips[0]!.zones[0]!.error!, /no answer in 30 ms/);
  hang = false;
  await mon.checkNow();
  assert.deepEqual(kinds(events), [`dnsbl.listed ${OWN} ${ZEN}`]);
});

test('each round logs one dnsbl.check summary line', async () => {
  const { dns, mon, lines } = setup();
  dns.set(OWN, ZEN, ['127.0.0.2']);
  dns.set(OWN, COP, { code: 'ETIMEOUT' });
  await mon.checkNow();
  const checks = lines.filter((l) => l.evt === 'dnsbl.check');
  assert.equal(checks.length, 1);
  const c = checks[0]!;
  assert.equal(c.ips, 1);
  assert.equal(c.zones, 2);
  assert.equal(c.listed, 1);
  assert.equal(c.errors, 1);
  assert.equal(c.firstError, 'ETIMEOUT');
  assert.equal(typeof c.ms, 'number');
});

test('a failing emit or listener does not stop the round or other listeners', async () => {
  const { dns, settings } = setup();
  const heard: string[] = [];
  const mon = new DnsblMonitor({
    settings: () => settings,
    lookup: dns,
    emit: () => Promise.reject(new Error('event log closed')),
    log: pino({ level: 'silent' }),
  });
  mon.onChange(() => {
    throw new Error('boom');
  });
  mon.onChange((ip, listed) => heard.push(`${ip} ${listed}`));
  dns.set(OWN, ZEN, ['127.0.0.2']);
  await mon.checkNow();
  assert.deepEqual(heard, [`${OWN} true`]);
  assert.equal(mon.ownListed(), true);
});

// A round that never comes leaves nextScheduledRound() waiting: the timeout makes that a failure.
test('start() checks soon after start and then every intervalMinutes; stop() ends it', { timeout: 10_000 }, async () => {
  const dns = new FakeDns();
  const settings = { checkIps: [OWN], zones: [ZEN], intervalMinutes: 0.01 }; // 600 ms, the schema's least
  const clock = new ManualClock();
  const mon = new DnsblMonitor({
    settings: () => settings,
    lookup: dns,
    emit: () => undefined,
    log: pino({ level: 'silent' }),
    startDelayMs: 20,
    clock,
  });
  mon.start();
  mon.start(); // a second start does not arm a second timer chain
  assert.equal(clock.pending, 1);
  await clock.advance(5);
  assert.equal(dns.calls.length, 0);
  let round = mon.nextScheduledRound();
  await clock.advance(80);
  await round;
  assert.equal(dns.calls.length, 1, 'first round soon after start');
  // Read at each tick: the round at ~600 ms schedules the next one 30 minutes later.
  settings.intervalMinutes = 30;
  round = mon.nextScheduledRound();
  await clock.advance(650);
  await round;
  assert.equal(dns.calls.length, 2, 'second round one interval later');
  mon.stop();
  mon.start();
  round = mon.nextScheduledRound();
  await clock.advance(80);
  await round;
  assert.equal(dns.calls.length, 3, 'a restart checks soon again');
  mon.stop();
  // Past the 30-minute interval the last round armed before stop() cleared it.
  await clock.advance(2 * HOUR_MS);
  assert.equal(dns.calls.length, 3, 'no rounds after stop');
  assert.equal(clock.pending, 0, 'no timer left armed');
});

// --- the alert mail these events become ---

function bodyOf(msg: Buffer): { subject: string; body: string } {
  const s = msg.toString('latin1');
  const split = s.indexOf('\r\n\r\n');
  const head = s.slice(0, split).replace(/\r\n[ \t]/g, ' ');
  const subjectRaw = /^subject: (.*)$/im.exec(head)![1]!;
  const subject = subjectRaw
    .replace(/(=\?[^?]+\?[BbQq]\?[^?]*\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?[^?]+\?([BbQq])\?([^?]*)\?=/g, (_m, enc: string, data: string) =>
      enc.toUpperCase() === 'B'
        ? Buffer.from(data, 'base64').toString('utf8')
        : Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8'),
    );
  const cte = /^content-transfer-encoding: (.*)$/im.exec(head)?.[1]?.toLowerCase() ?? '7bit';
  const raw = s.slice(split + 4);
  const bytes =
    cte === 'base64'
      ? Buffer.from(raw.replace(/\s+/g, ''), 'base64')
      : cte === 'quoted-printable'
        ? Buffer.from(raw.replace(/=\r\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1')
        : Buffer.from(raw, 'latin1');
  return { subject, body: bytes.toString('utf8') };
}

test('listing and delisting events are mailed, each one, with the list named and what to do', async () => {
  const mails: Buffer[] = [];
  const alerter = new Alerter({
    settings: () => ({ enabled: true, adminEmails: ['admin@example.test'], periodMinutes: 60 }),
    hostname: () => 'mail.example.test',
    sink: async (_f, _t, m) => void mails.push(m),
    log: pino({ level: 'silent' }),
    now: () => new Date('2025-03-01T02:00:00.000Z'),
  });
  const { dns, mon, events } = setup();
  let n = 0;
  const send = async () => {
    for (const ev of events.splice(0)) {
      const full: MlsdEvent = { id: `e${++n}`, time: '2025-03-01T02:00:00.000Z', ...ev };
      assert.equal((await alerter.handle(full)).sent, true, ev.kind);
    }
  };
  dns.set(OWN, ZEN, ['127.0.0.10'], [['https://check.spamhaus.org/query/ip/192.0.2.10']]);
  await mon.checkNow();
  await send();
  dns.clear(OWN, ZEN);
  await mon.checkNow();
  await send();
  // Listed again within the alert period: still mailed, or the admin would believe "it is over".
  dns.set(OWN, ZEN, ['127.0.0.2']);
  await mon.checkNow();
  await send();
  assert.equal(mails.length, 3);

  const listed = bodyOf(mails[0]!);
  assert.equal(listed.subject, '[mlsd] ALERT: address listed on a DNS blacklist / 警示：IP 位址被列入 DNS 黑名單 (192.0.2.10, zen.spamhaus.org)');
  assert.match(listed.body, /What happened: 192\.0\.2\.10 is listed on zen\.spamhaus\.org \(127\.0\.0\.10: https:\/\/check\.spamhaus\.org/);
  assert.match(listed.body, /Details:\r\n  zone: zen\.spamhaus\.org/);
  assert.match(listed.body, /compromised account[\s\S]*infected PC[\s\S]*open relay[\s\S]*request delisting/);
  assert.match(listed.body, /PBL/);
  assert.match(listed.body, /dnsbl\.autoReroute/);
  assert.match(listed.body, /帳號遭盜用[\s\S]*中毒的電腦[\s\S]*開放轉寄[\s\S]*申請移除[\s\S]*dnsbl\.autoReroute/);
  assert.doesNotMatch(bodyOf(mails[2]!).body, /PBL/);

  const delisted = bodyOf(mails[1]!);
  assert.equal(delisted.subject, '[mlsd] NOTICE: address no longer on a DNS blacklist / 通知：IP 位址已自 DNS 黑名單移除 (192.0.2.10, zen.spamhaus.org)');
  assert.match(delisted.body, /not listed on any list checked/);
  assert.match(delisted.body, /Nothing to do for this list[\s\S]*此黑名單無需再處理/);
});

test('routing kinds are mailed bilingually', async () => {
  const mails: Buffer[] = [];
  const alerter = new Alerter({
    settings: () => ({ enabled: true, adminEmails: ['admin@example.test'], periodMinutes: 60 }),
    hostname: () => 'mail.example.test',
    sink: async (_f, _t, m) => void mails.push(m),
    log: pino({ level: 'silent' }),
  });
  const base = { id: 'r', time: '2025-03-01T02:00:00.000Z', ip: OWN };
  await alerter.handle({ ...base, kind: 'routing.rerouted', severity: 'warning', text: 'outbound mail goes through the smarthost: 192.0.2.10 is listed' });
  await alerter.handle({ ...base, kind: 'routing.restored', severity: 'info', text: 'outbound mail goes directly again' });
  await alerter.handle({ ...base, kind: 'routing.rerouted', severity: 'warning', text: 'again' });
  assert.equal(mails.length, 3);
  const [a, b] = [bodyOf(mails[0]!), bodyOf(mails[1]!)];
  assert.match(a.subject, /^\[mlsd\] WARNING: outbound mail switched to the smarthost \/ 注意：外寄郵件已改經轉寄主機/);
  assert.match(a.body, /routing\.smarthost[\s\S]*maxPerHour[\s\S]*改經 routing\.smarthost/);
  assert.match(b.subject, /^\[mlsd\] NOTICE: outbound mail sent directly again \/ 通知：外寄郵件已恢復直接寄送/);
});
