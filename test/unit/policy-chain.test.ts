import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AccountStore } from '../../src/accounts/accounts.js';
import { validateConfig } from '../../src/config/config.js';
import type { EventInput } from '../../src/events/events.js';
import { AuthPolicy } from '../../src/policy/auth.js';
import { buildChain, escalate, failureReply, POLICY_ORDER, type Outcome, type PolicyChain, type PolicyUnit } from '../../src/policy/chain.js';
import { formatReply, replies } from '../../src/policy/reply.js';
import { RelayPolicy } from '../../src/policy/relay.js';
import { ThresholdPolicy } from '../../src/policy/thresholds.js';
import type { SessionFacts } from '../../src/policy/types.js';
import * as units from '../../src/policy/units.js';
import { ContentPolicy } from '../../src/scan/policy.js';
import { GroupCommitter, openDb, sublevel, type Db } from '../../src/store/db.js';
import { ThresholdStore } from '../../src/store/counters.js';

/**
 * Golden tables for the whole policy chain, stage by stage, in the manner of Postfix's
 * access-rule tests: the facts of a session (client, login, TLS, config, accounts, free
 * disk, threshold state), what the client says, then the exact reply (or accept).
 * Built from the real units, a real AccountStore, real config and a real LevelDB.
 */

const T0 = Date.parse('2026-03-02T10:00:00Z');
const OUTSIDE = '203.0.113.9';
const OFFICE = '192.0.2.10'; // relay.allowIps
const EXEMPT = '198.51.100.5'; // thresholds.exemptIps
const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*' + 'GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$' + 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

let dir: string;
let accounts: AccountStore;
let db: Db;
let group: GroupCommitter;
const stores: ThresholdStore[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mlsd-chain-'));
  accounts = await AccountStore.open(dir);
  const domains = ['example.test'];
  await accounts.addUser('bob@example.test', 'bob-secret-1', domains);
  await accounts.addUser('carol@example.test', 'carol-secret-1', domains);
  await accounts.addUser('mallory@example.test', 'mallory-secret-1', domains);
  await accounts.addAlias('sales@example.test', ['bob@example.test'], ['bob@example.test'], domains);
  await accounts.suspend('mallory@example.test', 'test');
  db = await openDb(join(dir, 'db'));
  group = new GroupCommitter(db);
});

after(async () => {
  for (const s of stores) await s.close();
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

type Disk = 'room' | 'full' | 'unreadable';

interface World {
  chain: PolicyChain;
  thresholds: ThresholdPolicy;
  sent: ThresholdStore;
}

/** A fresh chain (fresh lockout and threshold state) over the shared accounts. */
async function world(config: Record<string, unknown> = {}, disk: Disk = 'room'): Promise<World> {
  const cfg = validateConfig({
    domains: ['example.test'],
    relay: { allowIps: [OFFICE], allowRecipientDomains: ['partner.test'], allowAuthenticated: true },
    ...config,
    thresholds: { exemptIps: [EXEMPT], ...(config.thresholds as object) },
  });
  const current = () => cfg;
  const log = pino({ level: 'silent' });
  const events: EventInput[] = [];
  const relay = new RelayPolicy(cfg);
  await sublevel(db, 'seen').clear();
  const sent = new ThresholdStore(db, group, (err) => assert.fail(err));
  stores.push(sent);
  const thresholds = new ThresholdPolicy(current, (e) => events.push(e), sent, () => T0);
  const auth = new AuthPolicy(current, accounts, async (e) => events.push(e), log, () => T0);
  const content = new ContentPolicy({ config: current, isTrustedClient: (ip) => relay.isTrustedClient(ip), emit: (e) => events.push(e), log, now: () => T0 });
  const hasRoom = async () => {
    if (disk === 'unreadable') throw new Error('statfs: EIO');
    return disk === 'room';
  };
  const chain = buildChain(
    [
      units.connectionThresholdUnit(thresholds),
      units.tlsRequiredUnit(),
      units.credentialsUnit(auth),
      units.loginStampUnit(accounts),
      units.loginValidUnit(accounts),
      units.diskReserveUnit(hasRoom, log),
      // The disk capability's usage level (tested in disk-health): room here.
      { name: 'disk.usageReserve', stage: 'mail', check: () => 'continue' },
      units.senderNotSuspendedUnit(accounts),
      units.senderSyntaxUnit(),
      units.envelopeSenderUnit(current, accounts),
      units.localEnvelopeSenderUnit(() => relay, current),
      units.messageThresholdUnit(thresholds),
      units.relayUnit(() => relay, current),
      units.localRecipientUnit(() => relay, accounts),
      units.recipientThresholdUnit(thresholds),
      units.newRecipientThresholdUnit(current, thresholds, sent),
      units.headerFromUnit(current, accounts),
      units.localHeaderFromUnit(() => relay, current),
      units.contentUnit(content),
    ],
    [(f) => thresholds.disconnect(f)],
  );
  return { chain, thresholds, sent };
}

const session = (clientIp: string, login: string | null = null, tls = false, listener = 'mx'): SessionFacts => ({ clientIp, listener, login, tls });
const show = (o: Outcome, accepted = 'accept') => (o.ok ? accepted : formatReply(o.reply));
const OK = 'accept';

// ---- connect: [client, thresholds config, connections opened before, of which closed, expected]

const connectTable: [string, Record<string, number>, number, number, string][] = [
  [OUTSIDE, {}, 0, 0, OK],
  [OUTSIDE, { perIpConcurrentConnections: 2 }, 1, 0, OK],
  [OUTSIDE, { perIpConcurrentConnections: 2 }, 2, 0, '421 4.7.0 Error: too many open connections from 203.0.113.9 (limit thresholds.perIpConcurrentConnections = 2), try again later'],
  [OUTSIDE, { perIpConcurrentConnections: 2 }, 2, 1, OK], // the disconnect notification released one
  [EXEMPT, { perIpConcurrentConnections: 2 }, 2, 0, OK],
  [OUTSIDE, { perIpConnectionsPerMinute: 3 }, 3, 3, '421 4.7.0 Error: too many connections from 203.0.113.9 in the last minute (limit thresholds.perIpConnectionsPerMinute = 3), try again later'],
  ['::ffff:203.0.113.9', { perIpConcurrentConnections: 2 }, 1, 0, OK],
];

for (const [ip, th, opened, closed, expected] of connectTable) {
  test(`connect from ${ip} ${JSON.stringify(th)} after ${opened} opened, ${closed} closed -> ${expected}`, async () => {
    const w = await world({ thresholds: th });
    for (let i = 0; i < opened; i++) assert.equal((await w.chain.connect(session(ip))).ok, true);
    for (let i = 0; i < closed; i++) w.chain.disconnect(session(ip));
    assert.equal(show(await w.chain.connect(session(ip))), expected);
  });
}

// ---- auth: [client, TLS, user, password, failed logins from this client before, expected]

const authTable: [string, boolean, string, string, number, string][] = [
  [OUTSIDE, false, 'bob@example.test', 'bob-secret-1', 0, '538 5.7.11 Encryption required for requested authentication mechanism'],
  [OUTSIDE, false, 'mallory@example.test', 'mallory-secret-1', 0, '538 5.7.11 Encryption required for requested authentication mechanism'],
  [OUTSIDE, true, 'bob@example.test', 'bob-secret-1', 0, 'accept as bob@example.test'],
  [OUTSIDE, true, 'BOB@Example.TEST', 'bob-secret-1', 0, 'accept as bob@example.test'],
  [OUTSIDE, true, 'bob@example.test', 'wrong-password', 0, '535 5.7.8 Error: authentication failed'],
  [OUTSIDE, true, 'nobody@example.test', 'bob-secret-1', 0, '535 5.7.8 Error: authentication failed'],
  [OUTSIDE, true, 'sales@example.test', 'bob-secret-1', 0, '535 5.7.8 Error: authentication failed'], // an alias has no password
  // A suspended account's right password gets the reply of a wrong one: no password oracle.
  [OUTSIDE, true, 'mallory@example.test', 'mallory-secret-1', 0, '535 5.7.8 Error: authentication failed'],
  [OUTSIDE, true, 'mallory@example.test', 'wrong-password', 0, '535 5.7.8 Error: authentication failed'],
  // auth.lockout.maxFailures (5 by default): the lock comes before the password check.
  [OUTSIDE, true, 'bob@example.test', 'bob-secret-1', 4, 'accept as bob@example.test'],
  [OUTSIDE, true, 'bob@example.test', 'bob-secret-1', 5, '454 4.7.0 Too many failed logins, try again later'],
  [OUTSIDE, true, 'mallory@example.test', 'mallory-secret-1', 5, '454 4.7.0 Too many failed logins, try again later'],
];

for (const [ip, tls, user, password, failures, expected] of authTable) {
  test(`AUTH ${user} ${password === 'wrong-password' ? 'wrong' : 'right'} password, ${tls ? 'TLS' : 'clear'}, ${failures} failures before -> ${expected}`, async () => {
    const w = await world();
    for (let i = 0; i < failures; i++) await w.chain.auth(session(ip, null, true), `guess${i}@example.test`, 'wrong-password');
    const o = await w.chain.auth(session(ip, null, tls, 'submission'), user, password);
    assert.equal(show(o, o.ok ? `accept as ${o.login}` : ''), expected);
  });
}

test('a login keeps its authority only while its credentials are those of the AUTH', async () => {
  const w = await world();
  await accounts.addUser('dave@example.test', 'dave-secret-1', ['example.test']);
  const o = await w.chain.auth(session(OUTSIDE, null, true, 'submission'), 'dave@example.test', 'dave-secret-1');
  assert.ok(o.ok && o.loginStamp);
  const facts = { ...session(OUTSIDE, 'dave@example.test', true), loginStamp: o.loginStamp };
  assert.equal(show(await w.chain.mail(facts, 'dave@example.test')), OK);
  await accounts.setPassword('dave@example.test', 'dave-secret-1'); // the same password: a new salt, a new stamp
  const gone = '421 4.7.0 Error: authentication no longer valid (password changed or account removed), log in again';
  assert.equal(show(await w.chain.mail(facts, 'dave@example.test')), gone);
  const again = await w.chain.auth(session(OUTSIDE, null, true, 'submission'), 'dave@example.test', 'dave-secret-1');
  assert.ok(again.ok && again.loginStamp && again.loginStamp !== o.loginStamp);
  assert.equal(show(await w.chain.mail({ ...facts, loginStamp: again.loginStamp }, 'dave@example.test')), OK);
  await accounts.deleteUser('dave@example.test');
  assert.equal(show(await w.chain.mail({ ...facts, loginStamp: again.loginStamp }, 'dave@example.test')), gone);
});

// ---- MAIL FROM: [client, login, sender, config, free disk, messages committed before, expected]

const rate = (what: string, limit: string, n: number) => `450 4.7.1 Error: too many messages from ${what} (limit thresholds.${limit} = ${n}), try again later`;
const mailTable: [string, string | null, string, Record<string, unknown>, Disk, number, string][] = [
  [OUTSIDE, null, 'someone@remote.test', {}, 'room', 0, OK],
  [OUTSIDE, null, '', {}, 'room', 0, OK], // the null sender
  [OUTSIDE, null, 'someone@remote.test', {}, 'full', 0, '452 4.3.1 Insufficient system storage'],
  [OUTSIDE, null, 'someone@remote.test', {}, 'unreadable', 0, '451 4.3.0 Error: internal error, try again later'],
  [OUTSIDE, 'mallory@example.test', 'mallory@example.test', {}, 'full', 0, '452 4.3.1 Insufficient system storage'], // disk before the suspension
  [OUTSIDE, 'gone@example.test', 'gone@example.test', {}, 'full', 0, '421 4.7.0 Error: authentication no longer valid (password changed or account removed), log in again'], // a login no user has
  [OUTSIDE, 'mallory@example.test', 'mallory@example.test', {}, 'room', 0, '550 5.7.1 Error: account suspended from sending; contact the administrator'],
  [OUTSIDE, 'mallory@example.test', 'bad..address@example.test', {}, 'room', 0, '550 5.7.1 Error: account suspended from sending; contact the administrator'],
  // syntax
  [OUTSIDE, null, 'x@[192.0.2.1]', {}, 'room', 0, '501 5.1.7 Bad sender address syntax'],
  [OUTSIDE, null, '"x"@remote.test', {}, 'room', 0, '501 5.1.7 Bad sender address syntax'],
  [OUTSIDE, 'bob@example.test', 'bad..address@example.test', {}, 'room', 0, '501 5.1.7 Bad sender address syntax'], // before sender-login
  // sender-login match
  [OUTSIDE, 'bob@example.test', 'bob@example.test', {}, 'room', 0, OK],
  [OUTSIDE, 'bob@example.test', 'BOB@Example.Test', {}, 'room', 0, OK],
  [OUTSIDE, 'bob@example.test', 'sales@example.test', {}, 'room', 0, OK], // an alias that lists bob as sender
  [OUTSIDE, 'carol@example.test', 'sales@example.test', {}, 'room', 0, '553 5.7.1 Sender address rejected: not owned by user'],
  [OUTSIDE, 'bob@example.test', 'ceo@example.test', {}, 'room', 0, '553 5.7.1 Sender address rejected: not owned by user'],
  [OUTSIDE, 'bob@example.test', '', {}, 'room', 0, '553 5.7.1 Sender address rejected: not owned by user'],
  [OUTSIDE, 'bob@example.test', '', { senderLoginMismatch: 'allow' }, 'room', 0, OK],
  [OUTSIDE, 'bob@example.test', 'ceo@example.test', { senderLoginMismatch: 'allow' }, 'room', 0, OK],
  // a local domain from a client nobody vouches for (relay.localSenderFromOutside)
  [OUTSIDE, null, 'ceo@example.test', {}, 'room', 0, '550 5.7.1 Sender address rejected: a local domain sender needs authentication'],
  [OUTSIDE, null, 'Ceo@EXAMPLE.test', {}, 'room', 0, '550 5.7.1 Sender address rejected: a local domain sender needs authentication'],
  [OUTSIDE, null, 'ceo@example.test', { relay: { localSenderFromOutside: 'allow' } }, 'room', 0, OK],
  [OUTSIDE, null, 'ceo@sub.example.test', {}, 'room', 0, OK], // not a local domain
  [OFFICE, null, 'ceo@example.test', {}, 'room', 0, OK],
  // thresholds
  [OUTSIDE, null, 'someone@remote.test', { thresholds: { perIpMessagesPerMinute: 2 } }, 'room', 1, OK],
  [OUTSIDE, null, 'someone@remote.test', { thresholds: { perIpMessagesPerMinute: 2 } }, 'room', 2, rate('203.0.113.9 in the last minute', 'perIpMessagesPerMinute', 2)],
  [OUTSIDE, null, '', { thresholds: { perIpMessagesPerMinute: 2 } }, 'room', 2, OK], // a bounce is not held at MAIL
  [EXEMPT, null, 'someone@remote.test', { thresholds: { perIpMessagesPerMinute: 2 } }, 'room', 2, OK],
  [OUTSIDE, null, 'someone@remote.test', { thresholds: { perIpMessagesPerDay: 2 } }, 'room', 2, rate('203.0.113.9 today', 'perIpMessagesPerDay', 2)],
  [OUTSIDE, 'bob@example.test', 'bob@example.test', { thresholds: { perAccountMessagesPerDay: 1 } }, 'room', 1, rate('bob@example.test today', 'perAccountMessagesPerDay', 1)],
  [OUTSIDE, 'bob@example.test', 'ceo@example.test', { thresholds: { perAccountMessagesPerDay: 1 } }, 'room', 1, '553 5.7.1 Sender address rejected: not owned by user'], // sender-login first
  [OUTSIDE, null, 'someone@remote.test', { thresholds: { perIpMessagesPerMinute: 2 } }, 'full', 2, '452 4.3.1 Insufficient system storage'],
];

for (const [ip, login, sender, config, disk, before, expected] of mailTable) {
  test(`MAIL FROM:<${sender}> from ${ip}${login ? ` as ${login}` : ''} ${JSON.stringify(config)}, disk ${disk}, ${before} before -> ${expected}`, async () => {
    const w = await world(config, disk);
    for (let i = 0; i < before; i++) w.thresholds.committed(session(ip, login));
    assert.equal(show(await w.chain.mail(session(ip, login, !!login), sender)), expected);
  });
}

// ---- RCPT TO: [client, login, recipient, config, recipients accepted before, expected]

const tooMany = (what: string, limit: string, n: number) => `452 4.5.3 Error: too many ${what} (limit thresholds.${limit} = ${n}), try again later`;
const NEW_LIMIT = { thresholds: { perAccountNewRecipientsPerDay: 2 } };
const rcptTable: [string, string | null, string, Record<string, unknown>, string[], string][] = [
  [OUTSIDE, null, 'bob@example.test', {}, [], 'accept bob@example.test'],
  [OUTSIDE, null, 'Bob@EXAMPLE.test', {}, [], 'accept bob@example.test'],
  [OUTSIDE, null, 'postmaster', {}, [], 'accept postmaster@example.test'],
  [OUTSIDE, null, 'sales@example.test', {}, [], 'accept sales@example.test'],
  [OUTSIDE, null, 'nobody@example.test', {}, [], '550 5.1.1 Recipient address rejected: User unknown in local recipient table'],
  [OUTSIDE, null, 'x@remote.test', {}, [], '554 5.7.1 Relay access denied'],
  [OUTSIDE, null, 'x@partner.test', {}, [], 'accept x@partner.test'],
  [OFFICE, null, 'x@remote.test', {}, [], 'accept x@remote.test'],
  [OUTSIDE, 'bob@example.test', 'x@remote.test', {}, [], 'accept x@remote.test'],
  [OUTSIDE, 'bob@example.test', 'x@remote.test', { relay: { allowAuthenticated: false } }, [], '554 5.7.1 Relay access denied'],
  [OUTSIDE, null, 'x@[192.0.2.1]', {}, [], '501 5.1.3 Bad recipient address syntax'],
  [OUTSIDE, null, '', {}, [], '501 5.1.3 Bad recipient address syntax'],
  // per-IP recipients per minute (counted when accepted)
  [OUTSIDE, null, 'bob@example.test', { thresholds: { perIpRecipientsPerMinute: 2 } }, ['carol@example.test'], 'accept bob@example.test'],
  [OUTSIDE, null, 'bob@example.test', { thresholds: { perIpRecipientsPerMinute: 2 } }, ['carol@example.test', 'sales@example.test'], tooMany('recipients from 203.0.113.9 in the last minute', 'perIpRecipientsPerMinute', 2)],
  [OUTSIDE, null, 'x@remote.test', { thresholds: { perIpRecipientsPerMinute: 2 } }, ['carol@example.test', 'sales@example.test'], '554 5.7.1 Relay access denied'], // relay first
  [OUTSIDE, null, 'nobody@example.test', { thresholds: { perIpRecipientsPerMinute: 1 } }, ['carol@example.test'], '550 5.1.1 Recipient address rejected: User unknown in local recipient table'],
  [EXEMPT, null, 'bob@example.test', { thresholds: { perIpRecipientsPerMinute: 2 } }, ['carol@example.test', 'sales@example.test'], 'accept bob@example.test'],
  // first-time recipients of a login per day
  ['192.0.2.77', 'bob@example.test', 'c@remote.test', NEW_LIMIT, ['a@remote.test', 'b@remote.test'], tooMany('new recipients from bob@example.test today', 'perAccountNewRecipientsPerDay', 2)],
  ['192.0.2.77', 'bob@example.test', 'A@remote.test', NEW_LIMIT, ['a@remote.test', 'b@remote.test'], 'accept a@remote.test'], // written to before
  ['192.0.2.77', 'bob@example.test', 'c@remote.test', NEW_LIMIT, ['a@remote.test'], 'accept c@remote.test'],
  ['192.0.2.77', null, 'c@partner.test', NEW_LIMIT, ['a@partner.test', 'b@partner.test'], 'accept c@partner.test'], // no login, not counted
];

for (const [ip, login, rcpt, config, before, expected] of rcptTable) {
  test(`RCPT TO:<${rcpt}> from ${ip}${login ? ` as ${login}` : ''} ${JSON.stringify(config)} after ${before.length} -> ${expected}`, async () => {
    const w = await world(config);
    for (const r of before) assert.equal(show(await w.chain.rcpt(session(ip, login), r), OK), OK);
    const o = await w.chain.rcpt(session(ip, login), rcpt);
    assert.equal(show(o, o.ok ? `accept ${o.address}` : ''), expected);
  });
}

// ---- end of DATA: [client, login, header From, body, config, expected]

const dataTable: [string, string | null, string[], string, Record<string, unknown>, string][] = [
  [OUTSIDE, 'bob@example.test', ['bob@example.test'], 'hello', {}, OK],
  [OUTSIDE, 'bob@example.test', ['sales@example.test'], 'hello', {}, OK],
  [OUTSIDE, 'bob@example.test', ['bob@example.test', 'ceo@example.test'], 'hello', {}, '550 5.7.1 From header address rejected: not owned by user'],
  [OUTSIDE, 'bob@example.test', [], 'hello', {}, '550 5.7.1 From header address rejected: not owned by user'],
  [OUTSIDE, 'bob@example.test', ['ceo@example.test'], 'hello', { senderLoginMismatch: 'allow' }, OK],
  [OUTSIDE, null, ['ceo@example.test'], 'hello', {}, '550 5.7.1 From header address rejected: a local domain sender needs authentication'],
  [OUTSIDE, null, ['someone@remote.test', 'ceo@example.test.'], 'hello', {}, '550 5.7.1 From header address rejected: a local domain sender needs authentication'],
  [OUTSIDE, null, ['ceo@example.test'], 'hello', { relay: { localSenderFromOutside: 'allow' } }, OK],
  [OUTSIDE, null, ['someone@remote.test'], 'hello', {}, OK],
  [OFFICE, null, ['ceo@example.test'], 'hello', {}, OK],
  // outbound scanning (a login or an office client): the built-in layer needs no engine
  [OUTSIDE, 'bob@example.test', ['bob@example.test'], EICAR, {}, '554 5.7.1 Message content rejected: virus or executable content found'],
  [OFFICE, null, ['anyone@example.test'], EICAR, {}, '554 5.7.1 Message content rejected: virus or executable content found'],
  [OUTSIDE, 'bob@example.test', ['ceo@example.test'], EICAR, {}, '550 5.7.1 From header address rejected: not owned by user'], // header From first
  [OUTSIDE, 'bob@example.test', ['bob@example.test'], EICAR, { scan: { virusAction: 'quarantine' } }, 'accept [virus quarantine]'],
  [OUTSIDE, 'bob@example.test', ['bob@example.test'], GTUBE, {}, 'accept [spam quarantine]'],
  [OUTSIDE, 'bob@example.test', ['bob@example.test'], GTUBE, { scan: { outbound: { action: 'deliver' } } }, 'accept [spam deliver] +headers'],
  [OUTSIDE, 'bob@example.test', ['bob@example.test'], EICAR, { scan: { outbound: { enabled: false } } }, OK],
  // inbound mail is scanned only when scan.inbound.enabled
  [OUTSIDE, null, ['x@remote.test'], EICAR, {}, OK],
  [OUTSIDE, null, ['x@remote.test'], EICAR, { scan: { inbound: { enabled: true } } }, '554 5.7.1 Message content rejected: virus or executable content found'],
];

for (const [ip, login, headerFrom, body, config, expected] of dataTable) {
  const what = body === EICAR ? 'EICAR' : body === GTUBE ? 'GTUBE' : 'clean';
  test(`DATA from ${ip}${login ? ` as ${login}` : ''}, From: ${headerFrom.join(', ') || '(none)'}, ${what} body ${JSON.stringify(config)} -> ${expected}`, async () => {
    const w = await world(config);
    const message = Buffer.from(`From: ${headerFrom.join(', ')}\r\nSubject: test\r\n\r\n${body}\r\n`);
    const o = await w.chain.data(session(ip, login, !!login), headerFrom, {
      from: login ?? 'x@remote.test',
      rcpt: ['friend@remote.test'],
      size: message.length,
      subject: 'test',
      contents: async () => message,
    });
    const accepted = o.ok ? `accept${o.scan ? ` [${o.scan.class} ${o.scan.action}]` : ''}${o.addHeaders ? ' +headers' : ''}` : '';
    assert.equal(show(o, accepted), expected);
  });
}

// ---- the chain itself

const unit = (name: string, stage: PolicyUnit['stage'] = 'connect'): PolicyUnit => ({ name, stage, check: () => 'continue' }) as PolicyUnit;
const allListed = (): PolicyUnit[] => Object.entries(POLICY_ORDER).flatMap(([stage, names]) => names.map((n) => unit(n, stage as PolicyUnit['stage'])));

test('buildChain accepts exactly the listed units', () => {
  assert.doesNotThrow(() => buildChain(allListed()));
});

test('buildChain refuses a unit that is not in the order, naming it', () => {
  assert.throws(() => buildChain([...allListed(), unit('dnsbl.client', 'connect')]), /policy unit dnsbl\.client \(connect\) is not in the policy order/);
  // Listed, but under another stage.
  assert.throws(() => buildChain([...allListed().filter((u) => u.name !== 'relay'), unit('relay', 'mail')]), /policy unit relay \(mail\) is not in the policy order.*policy unit relay \(rcpt\) is listed in the policy order but not supplied/);
});

test('buildChain refuses a listed unit that is missing or supplied twice', () => {
  assert.throws(() => buildChain(allListed().filter((u) => u.name !== 'scan.content')), /policy unit scan\.content \(data\) is listed in the policy order but not supplied/);
  assert.throws(() => buildChain([...allListed(), unit('thresholds.connections')]), /policy unit thresholds\.connections \(connect\) is supplied twice/);
});

test('the first unit that does not say "continue" ends the stage, and it is named', async () => {
  const ran: string[] = [];
  const units = allListed().map((u): PolicyUnit =>
    u.stage === 'mail'
      ? { name: u.name, stage: 'mail', check: async () => (ran.push(u.name), u.name === 'address.senderSyntax' ? { refuse: replies.badSenderSyntax } : 'continue') }
      : u,
  );
  const o = await buildChain(units).mail(session(OUTSIDE), 'x');
  assert.deepEqual(ran, ['accounts.loginValid', 'spool.diskReserve', 'disk.usageReserve', 'accounts.senderNotSuspended', 'address.senderSyntax']);
  assert.deepEqual(o, { ok: false, reply: replies.badSenderSyntax, unit: 'address.senderSyntax' });
});

test('escalation: the refusal that reaches smtp.maxBadCommands becomes 421 if permanent', () => {
  const table: [number, string, string][] = [
    [2, formatReply(replies.relayDenied), '554 5.7.1 Relay access denied'],
    [3, formatReply(replies.relayDenied), '421 4.7.0 Error: too many errors, closing connection'],
    [4, formatReply(replies.unknownUser), '421 4.7.0 Error: too many errors, closing connection'],
    [3, formatReply(replies.rate), '450 4.7.1 Error: rate limit exceeded'], // a temporary one never
  ];
  const byText = new Map(Object.values(replies).map((r) => [formatReply(r), r]));
  for (const [errors, reply, expected] of table) assert.equal(formatReply(escalate(byText.get(reply)!, errors, 3)), expected);
});

test('an internal failure is a temporary reply, never a 5xx', () => {
  const full = Object.assign(new Error('disk full'), { kind: 'full' });
  const lost = Object.assign(new Error('standby lost'), { kind: 'peerLost' });
  const table: [Parameters<typeof failureReply>[0], unknown, string][] = [
    ['auth', new Error('x'), '454 4.7.0 Temporary authentication failure'],
    ['connect', new Error('x'), '451 4.3.0 Error: internal error, try again later'],
    ['rcpt', full, '451 4.3.0 Error: internal error, try again later'],
    ['data', new Error('x'), '451 4.3.0 Error: internal error, try again later'],
    ['data', full, '452 4.3.1 Insufficient system storage'],
    ['data', lost, '451 4.3.0 Error: the standby mail server is not in sync, try again later'],
  ];
  for (const [stage, err, expected] of table) assert.equal(formatReply(failureReply(stage, err).reply), expected);
});
