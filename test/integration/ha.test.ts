import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { eventually, type TestDaemon } from '../helpers/daemon.js';
import { startHaPair, startedInSync, type HaPair } from '../helpers/ha-pair.js';
import { sendOnce } from '../helpers/smtp-client.js';

const pairs: HaPair[] = [];
after(async () => {
  for (const p of pairs) await p.cleanup();
});

test('a pair comes up with the higher priority active and the other in sync; a message is on both disks', async () => {
  const p = await startHaPair({ net: '127.0.50' });
  pairs.push(p);
  const { active, standby } = await startedInSync(p);
  assert.equal(active, p.a);
  await active.addUser('alice@example.test', 'password-1234');
  const reply = await sendOnce(p.service, p.ports.mx, 'alice@example.test', 'first', '127.0.50.20');
  assert.match(reply, /^250 /);
  await eventually('the message in both mailboxes', async () => (await active.mailbox('alice')).length === 1 && (await standby.mailbox('alice')).length === 1);
  // The standby lets go of the spool file when the active does: nothing piles up there.
  await eventually('no spool files left on the standby', async () => (await readdir(join(standby.dataDir, 'spool'))).filter((n) => n.endsWith('.eml')).length === 0);
  const st = await p.status(standby);
  assert.equal((st.peer as unknown as { configMatches: boolean }).configMatches, true);
});

/**
 * Clients sending to the service address until stopped; records every message that got 250.
 * A client that cannot reach the address tries again once `serving()` says a box serves it;
 * if that never comes (it rejects), the client gives up.
 */
function streamClients(p: HaPair, n: number, prefix: string, serving: () => Promise<unknown>) {
  const acked: string[] = [];
  const afterKill: { at: number }[] = [];
  let stop = false;
  let seq = 0;
  const loops = Array.from({ length: n }, (_, i) =>
    (async () => {
      while (!stop) {
        const subject = `${prefix}-${i}-${seq++}`;
        try {
          const r = await sendOnce(p.service, p.ports.mx, 'alice@example.test', subject, `127.0.50.${30 + i}`);
          if (/^250 /.test(r)) {
            acked.push(subject);
            afterKill.push({ at: Date.now() });
          }
        } catch {
          if (!(await serving().then(() => true, () => false))) return;
        }
      }
    })(),
  );
  return {
    acked,
    ackTimes: afterKill,
    async stop() {
      stop = true;
      await Promise.all(loops);
    },
  };
}

const subjects = async (d: TestDaemon) =>
  new Set((await d.mailbox('alice')).map((m) => /^Subject: (.*)$/m.exec(m)?.[1]?.trim() ?? ''));

/** Resolves once `d` has taken over: its promotion to an epoch later than `epoch` (rejects after 20 s). */
function promotedAfter(d: TestDaemon, epoch: number): Promise<unknown> {
  const promoted = d.waitFor((l) => l.evt === 'ha.promoted' && Number(l.epoch) > epoch);
  promoted.catch(() => undefined); // a failed takeover fails the test by its own wait, not as an unhandled rejection
  return promoted;
}

test('kill -9 of the active mid-stream, three times over: the survivor serves within deadMs + 1 s and holds every acknowledged message; the killed box rejoins and catches up', async () => {
  const p = await startHaPair({ net: '127.0.51' });
  pairs.push(p);
  let { active, standby } = await startedInSync(p);
  await active.addUser('alice@example.test', 'password-1234');
  const allAcked: string[] = [];
  for (let round = 1; round <= 3; round++) {
    const epoch = (await p.status(active)).epoch;
    // Until the kill the active serves; after it, the survivor once it has taken over.
    let serving: Promise<unknown> = Promise.resolve();
    const s = streamClients(p, 4, `r${round}`, () => serving);
    await eventually('some messages accepted', async () => s.acked.length >= 20);
    const before = s.acked.length;
    serving = promotedAfter(standby, epoch);
    const killedAt = Date.now();
    await active.kill9();
    await eventually('a message accepted by the survivor', async () => s.ackTimes.some((t) => t.at > killedAt + 1) && s.acked.length > before);
    const firstAfter = s.ackTimes.find((t) => t.at > killedAt)!.at;
    await s.stop();
    allAcked.push(...s.acked);
    const failoverMs = firstAfter - killedAt;
    assert.ok(failoverMs < 1500 + 1000, `round ${round}: service back after ${failoverMs} ms`);
    const st = await p.status(standby);
    assert.equal(st.role, 'active');
    await eventually(`round ${round}: every acknowledged message in the survivor's mailbox`, async () => {
      const have = await subjects(standby);
      return allAcked.every((x) => have.has(x));
    });
    // The killed box comes back as the standby and catches up.
    await active.start();
    [active, standby] = [standby, active];
    await eventually(`round ${round}: the old active back in sync as standby`, async () => {
      const [sa, sb] = await Promise.all([p.status(active), p.status(standby)]);
      return sa.role === 'active' && sa.replication === 'in sync' && sb.role === 'standby' && sb.replication === 'in sync';
    }, 30000);
    const have = await subjects(standby);
    assert.deepEqual(allAcked.filter((x) => !have.has(x)), [], `round ${round}: the rejoined standby lacks messages`);
  }
});

/** The box's decision as `role` once it has recognised a fault of `link` (logged when first made). */
const decided = (d: TestDaemon, role: string, link: string) => d.waitFor((l) => l.evt === 'ha.decision' && l.role === role && l.linkFault === link);

const events = async (d: TestDaemon, kind: string) => {
  const r = await d.cli(['events', 'list', '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { kind: string; text: string; data?: { link?: string; taken?: number } }[]).filter((e) => e.kind === kind);
};

test('network cut with the serial cable alive: no takeover, a link-fault alert on both boxes, mail held on one disk is counted and caught up after', async () => {
  const p = await startHaPair({ net: '127.0.52', config: { alerts: { adminEmails: ['admin@example.test'] } } });
  pairs.push(p);
  const { active, standby } = await startedInSync(p);
  await active.addUser('alice@example.test', 'password-1234');
  await active.addUser('admin@example.test', 'password-1234');
  await eventually('accounts on the standby', async () => /admin@example.test/.test(await readFile(join(standby.configDir, 'accounts.json'), 'utf8').catch(() => '')));
  p.cutNetwork();
  for (const d of [active, standby]) {
    await eventually(`link fault event on ${d === active ? 'active' : 'standby'}`, async () => (await events(d, 'ha.linkFault')).some((e) => e.data?.link === 'network'));
  }
  // The peer is alive on the cable: each box, having recognised the fault (deadMs after the
  // network fell silent, so a takeover would have been decided by then), decides to stay.
  const [da, ds] = await Promise.all([decided(active, 'active', 'network'), decided(standby, 'syncing', 'network')]);
  assert.equal(da.decision, 'stay');
  assert.equal(ds.decision, 'stay');
  const [sa, ss] = await Promise.all([p.status(active), p.status(standby)]);
  assert.equal(sa.role, 'active');
  assert.equal(ss.role, 'syncing', 'the standby knows it is behind');
  assert.equal(sa.linkFault, 'network');
  assert.equal(sa.peer.links.serial, 'up');
  assert.equal(sa.peer.links.network, 'down');
  assert.equal(sa.replication, 'standby out of sync');
  // onPeerLost accept (default): mail is taken, on one disk, and counted (the alert mails too).
  const held = (await p.status(active)).oneDiskOnly;
  for (let i = 0; i < 3; i++) assert.match(await sendOnce(p.service, p.ports.mx, 'alice@example.test', `cut-${i}`, '127.0.52.20'), /^250 /);
  assert.ok((await p.status(active)).oneDiskOnly >= held + 3);
  await eventually('the alert mail to the admin', async () => (await active.mailbox('admin')).some((m) => /HA link fault/.test(m)));
  p.restoreNetwork();
  await eventually('back in sync', async () => (await p.status(active)).replication === 'in sync' && (await p.status(standby)).role === 'standby', 20000);
  assert.equal((await p.status(active)).oneDiskOnly, 0);
  const have = await subjects(standby);
  for (let i = 0; i < 3; i++) assert.ok(have.has(`cut-${i}`), `cut-${i} caught up on the standby`);
});

test('serial cable cut with the network alive: no takeover, a link-fault alert, replication stays in sync; the cable comes back by itself', async () => {
  const p = await startHaPair({ net: '127.0.53' });
  pairs.push(p);
  const { active, standby } = await startedInSync(p);
  await p.serial!.cut();
  for (const d of [active, standby]) {
    await eventually('serial link fault event', async () => (await events(d, 'ha.linkFault')).some((e) => e.data?.link === 'serial'));
  }
  const [da, ds] = await Promise.all([decided(active, 'active', 'serial'), decided(standby, 'standby', 'serial')]);
  assert.equal(da.decision, 'stay');
  assert.equal(ds.decision, 'stay');
  const [sa, ss] = await Promise.all([p.status(active), p.status(standby)]);
  assert.equal(sa.role, 'active');
  assert.equal(ss.role, 'standby');
  assert.equal(sa.replication, 'in sync');
  assert.equal(ss.peer.links.serial, 'down');
  await p.serial!.restore();
  await eventually('serial link restored', async () => (await events(active, 'ha.linkRestored')).length > 0 && (await p.status(active)).peer.links.serial === 'up');
});

test('a standby that is not in sync does not take over when the active dies; promote --force makes it serve', async () => {
  const p = await startHaPair({ net: '127.0.54' });
  pairs.push(p);
  const { active, standby } = await startedInSync(p);
  await active.addUser('alice@example.test', 'password-1234');
  p.cutNetwork();
  await eventually('standby knows it is behind', async () => (await p.status(standby)).role === 'syncing');
  assert.match(await sendOnce(p.service, p.ports.mx, 'alice@example.test', 'one-disk', '127.0.54.20'), /^250 /);
  await active.kill9();
  await eventually('standby outdated', async () => (await p.status(standby)).role === 'outdated', 10000);
  // Its first decision as an outdated box with the peer dead: it stays outdated.
  const d = await standby.waitFor((l) => l.evt === 'ha.decision' && l.role === 'outdated');
  assert.equal(d.decision, 'stay');
  assert.equal(d.peerAlive, false);
  assert.equal((await p.status(standby)).role, 'outdated', 'an outdated box must not promote itself');
  const r = await standby.cli(['ha', 'promote']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--force/);
  const f = await standby.cli(['ha', 'promote', '--force']);
  assert.equal(f.code, 0, f.stderr);
  assert.equal((await p.status(standby)).role, 'active');
  assert.match(await sendOnce(p.service, p.ports.mx, 'alice@example.test', 'after-force', '127.0.54.20'), /^250 /);
});

test('both links cut: the standby takes over while the active keeps serving; when they heal, the older epoch steps down and the mail each accepted alone ends up on both', async () => {
  const p = await startHaPair({ net: '127.0.55', config: { alerts: { adminEmails: ['admin@example.test'] } } });
  pairs.push(p);
  const { active: a, standby: b } = await startedInSync(p);
  await a.addUser('alice@example.test', 'password-1234');
  await a.addUser('admin@example.test', 'password-1234');
  await eventually('accounts on the standby', async () => /admin@example.test/.test(await readFile(join(b.configDir, 'accounts.json'), 'utf8').catch(() => '')));
  p.cutNetwork();
  await p.serial!.cut();
  await eventually('the standby takes over', async () => (await p.status(b)).role === 'active', 10000);
  assert.equal((await p.status(a)).role, 'active', 'a box that loses both links keeps serving');
  // a still holds the service address: what it takes now, b has never seen.
  for (let i = 0; i < 3; i++) assert.match(await sendOnce(p.service, p.ports.mx, 'alice@example.test', `split-${i}`, '127.0.55.20'), /^250 /);
  // b accepted mail alone too: its own failover alert to the admin.
  await eventually('b alerted the admin of its takeover', async () => (await b.mailbox('admin')).some((m) => /is now active/.test(m)));
  p.restoreNetwork();
  await p.serial!.restore();
  await eventually('b active, a its standby in sync', async () => {
    const [sa, sb] = await Promise.all([p.status(a), p.status(b)]);
    return sb.role === 'active' && sb.replication === 'in sync' && sa.role === 'standby';
  }, 30000);
  const onB = await subjects(b);
  for (let i = 0; i < 3; i++) assert.ok(onB.has(`split-${i}`), `split-${i} merged into the new active`);
  assert.ok((await a.mailbox('admin')).some((m) => /is now active/.test(m)), "b's alert is on a after the resync");
  assert.ok((await events(a, 'ha.demoted')).length > 0);
  const merged = await events(b, 'ha.merged');
  assert.equal(merged.length, 1);
  assert.ok(((merged[0]!.data as { taken?: number }).taken ?? 0) >= 3, JSON.stringify(merged[0]));
  // Nothing was merged twice: one copy of each.
  const copies = (await b.mailbox('alice')).filter((m) => /Subject: split-0/.test(m)).length;
  assert.equal(copies, 1);
  // And b serves the address now (as soon as a has let go of it).
  await eventually('b serves the address', async () => /^250 /.test(await sendOnce(p.service, p.ports.mx, 'alice@example.test', 'after-heal', '127.0.55.20').catch(() => '')), 5000);
  await eventually('after-heal on both', async () => (await subjects(a)).has('after-heal') && (await subjects(b)).has('after-heal'));
});

test('switchover hands the service to the in-sync standby without losing anything; the old active follows as standby', async () => {
  const p = await startHaPair({ net: '127.0.56' });
  pairs.push(p);
  const { active, standby } = await startedInSync(p);
  await active.addUser('alice@example.test', 'password-1234');
  assert.match(await sendOnce(p.service, p.ports.mx, 'alice@example.test', 'before-switch', '127.0.56.20'), /^250 /);
  const r = await standby.cli(['ha', 'switchover']);
  assert.notEqual(r.code, 0, 'switchover runs on the active box');
  const s = await active.cli(['ha', 'switchover']);
  assert.equal(s.code, 0, s.stderr);
  await eventually('roles swapped and in sync', async () => {
    const [sa, sb] = await Promise.all([p.status(active), p.status(standby)]);
    return sb.role === 'active' && sb.replication === 'in sync' && sa.role === 'standby';
  }, 20000);
  assert.equal((await p.status(standby)).lastFailover?.reason.includes('switchover'), true);
  assert.match(await sendOnce(p.service, p.ports.mx, 'alice@example.test', 'after-switch', '127.0.56.20'), /^250 /);
  await eventually('both messages on both boxes', async () => {
    const [x, y] = await Promise.all([subjects(active), subjects(standby)]);
    return ['before-switch', 'after-switch'].every((m) => x.has(m) && y.has(m));
  });
});

test('onPeerLost tempfail: with the standby out of sync new mail gets 451 4.3.0 and nothing is kept; once back in sync it is accepted', async () => {
  const p = await startHaPair({ net: '127.0.57', ha: { onPeerLost: 'tempfail' } });
  pairs.push(p);
  const { active, standby } = await startedInSync(p);
  await active.addUser('alice@example.test', 'password-1234');
  p.cutNetwork();
  await eventually('standby out of sync', async () => (await p.status(active)).replication === 'standby out of sync');
  assert.match(await sendOnce(p.service, p.ports.mx, 'alice@example.test', 'refused', '127.0.57.20'), /^451 4\.3\.0 /);
  assert.equal((await active.cli(['status', '--json'])).code, 0);
  assert.equal((await subjects(active)).has('refused'), false, 'a refused message is not delivered');
  p.restoreNetwork();
  await eventually('in sync again', async () => (await p.status(active)).replication === 'in sync', 20000);
  assert.match(await sendOnce(p.service, p.ports.mx, 'alice@example.test', 'accepted', '127.0.57.20'), /^250 /);
  await eventually('on both', async () => (await subjects(active)).has('accepted') && (await subjects(standby)).has('accepted'));
});

test('a box that loses both links and its own gateway stops serving (fenced); the box that still sees its gateway takes over, and the fenced one rejoins as standby', async () => {
  const gwA = createServer((s) => s.destroy());
  const gwB = createServer((s) => s.destroy());
  await new Promise<void>((r) => gwA.listen(0, '127.0.58.8', () => r()));
  await new Promise<void>((r) => gwB.listen(0, '127.0.58.9', () => r()));
  const gw = (s: import('node:net').Server, host: string) => `${host}:${(s.address() as { port: number }).port}`;
  const p = await startHaPair({ net: '127.0.58', haA: { gateway: gw(gwA, '127.0.58.8') }, haB: { gateway: gw(gwB, '127.0.58.9') } });
  pairs.push(p);
  try {
    const { active: a, standby: b } = await startedInSync(p);
    await a.addUser('alice@example.test', 'password-1234');
    const portA = (gwA.address() as { port: number }).port;
    // a's own network is the one that failed: both links and its gateway go at once.
    await new Promise<void>((r) => gwA.close(() => r()));
    p.cutNetwork();
    await p.serial!.cut();
    await eventually('a fences itself', async () => (await p.status(a)).role === 'fenced', 10000);
    await eventually('b takes over', async () => (await p.status(b)).role === 'active', 10000);
    await eventually('b serves the address', async () => /^250 /.test(await sendOnce(p.service, p.ports.mx, 'alice@example.test', 'fenced', '127.0.58.20').catch(() => '')));
    assert.ok((await events(a, 'ha.fenced')).length > 0);
    gwA.listen(portA, '127.0.58.8');
    p.restoreNetwork();
    await p.serial!.restore();
    await eventually('a back as standby in sync', async () => {
      const [sa, sb] = await Promise.all([p.status(a), p.status(b)]);
      return sa.role === 'standby' && sb.replication === 'in sync';
    }, 30000);
    assert.ok((await subjects(a)).has('fenced'));
  } finally {
    gwA.close();
    gwB.close();
  }
});

test('a graceful stop (SIGTERM) of the active hands the service to the in-sync standby at once, with nothing left behind', async () => {
  // deadMs 15 s: a takeover well before that can only be the handover, even on a loaded machine.
  const p = await startHaPair({ net: '127.0.59', ha: { deadMs: 15000, initDeadMs: 15000 } });
  pairs.push(p);
  const { active, standby } = await startedInSync(p);
  await active.addUser('alice@example.test', 'password-1234');
  assert.match(await sendOnce(p.service, p.ports.mx, 'alice@example.test', 'before-stop', '127.0.59.20'), /^250 /);
  const t0 = Date.now();
  await active.stop();
  await eventually('the standby active', async () => (await p.status(standby)).role === 'active', 12000);
  assert.ok(Date.now() - t0 < 15000, `took ${Date.now() - t0} ms: as long as the dead-peer timer, not a handover`);
  await eventually('it serves', async () => /^250 /.test(await sendOnce(p.service, p.ports.mx, 'alice@example.test', 'after-stop', '127.0.59.20').catch(() => '')), 5000);
  assert.ok((await subjects(standby)).has('before-stop'));
});
