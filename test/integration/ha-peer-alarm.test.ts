// A standby's alarms reach the administrator through the active box: the heartbeat carries
// them, the active raises ha.peerAlarm, its alerts mail it. Loopback: 127.0.70.x (the pair;
// no SMTP client connects, the alert goes into the active's own spool).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually, type TestDaemon } from '../helpers/daemon.js';
import { startHaPair, startedInSync, type HaPair } from '../helpers/ha-pair.js';
import { tempSimDisk } from '../helpers/sim-disk.js';

let p: HaPair | null = null;
const disk = await tempSimDisk();
const put = disk.put;
after(async () => {
  await p?.cleanup();
  await disk.remove();
});

interface Ev {
  id: string;
  kind: string;
  severity: string;
  text: string;
  data?: { peer?: string; id?: string; kind?: string };
}
interface PeerAlarms {
  unacknowledged: number;
  latest: { id: string; kind: string; text: string } | null;
}

async function cli(d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args);
  assert.equal(r.code, 0, `mlsd ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const events = async (d: TestDaemon, kind: string) => (JSON.parse(await cli(d, ['events', 'list', '--json'])) as Ev[]).filter((e) => e.kind === kind);
const peerAlarms = async (d: TestDaemon) => (JSON.parse(await cli(d, ['ha', 'status', '--json'])) as { peer: { alarms: PeerAlarms | null } }).peer.alarms;

test("a standby's failing disk is raised once on the active box as ha.peerAlarm and mailed; acknowledged on the standby it shows 0; a restart and two switchovers raise it no second time", async () => {
  // The config document is shared by the pair, so both boxes read this one fixture folder;
  // with a long poll period each reads it only at start and when told (`disk poll`).
  await put('healthy');
  p = await startHaPair({
    net: '127.0.70',
    config: { disk: { pollMinutes: 600, simFixtures: disk.folder }, thresholds: { alert: true }, alerts: { adminEmails: ['admin@example.test'], periodMinutes: 60 } },
  });
  const { active, standby } = await startedInSync(p);
  await active.addUser('admin@example.test', 'admin-secret-1');
  const standbyNode = (await p.status(standby)).nodeId;
  assert.deepEqual(await peerAlarms(active), { unacknowledged: 0, latest: null }, 'a quiet standby reports no alarms');

  // The standby's disk starts to fail: its own event, and its own alarm.
  await put('failing');
  await cli(standby, ['disk', 'poll']);
  const [failing] = await events(standby, 'disk.failurePredicted');
  assert.ok(failing, 'the standby raised disk.failurePredicted');

  // The active raises it as its own critical event, naming the standby and the disk event.
  const [raised, ...more] = await eventually('ha.peerAlarm on the active box', async () => {
    const evs = await events(active, 'ha.peerAlarm');
    return evs.length ? evs : false;
  });
  assert.deepEqual(more, []);
  assert.equal(raised!.severity, 'critical');
  assert.match(raised!.text, new RegExp(`^standby box ${standbyNode}: disk\\.failurePredicted: `));
  assert.deepEqual(raised!.data, { peer: standbyNode, id: failing.id, kind: 'disk.failurePredicted' });
  assert.ok((JSON.parse(await cli(active, ['alarm', 'list', '--json'])) as Ev[]).some((e) => e.id === raised!.id), 'an alarm on the active box');
  const mail = await eventually('the ha.peerAlarm alert mail', async () => (await active.mailbox('admin')).find((m) => /^X-Mlsd-Event: ha\.peerAlarm/m.test(m)) ?? false);
  assert.match(mail, /What happened: standby box \S+: disk\.failurePredicted: /);
  assert.match(mail, /mlsd alarm ack/);

  const seen = await peerAlarms(active);
  assert.ok(seen && seen.unacknowledged >= 1, 'ha status shows the standby alarms');
  assert.deepEqual({ ...seen.latest, text: undefined }, { id: failing.id, kind: 'disk.failurePredicted', text: undefined });
  assert.match(await cli(active, ['ha', 'status']), new RegExp(`^peer alarms: ${seen.unacknowledged} unacknowledged on ${standbyNode}, latest: disk\\.failurePredicted: `, 'm'));

  // Swapped and back, with the (now standby) first active restarted in between: the standby's
  // alarm is still unacknowledged but was raised already. The fixture is healthy again so the
  // restarted box finds its own disk as it left it.
  await put('healthy');
  assert.equal((await active.cli(['ha', 'switchover'])).code, 0);
  await eventually('roles swapped, in sync', async () => {
    const [sa, sb] = await Promise.all([p!.status(active), p!.status(standby)]);
    return sb.role === 'active' && sb.replication === 'in sync' && sa.role === 'standby';
  }, 30000);
  await active.stop();
  await active.start();
  await eventually('the restarted box back as standby, in sync', async () => {
    const [sa, sb] = await Promise.all([p!.status(active), p!.status(standby)]);
    return sa.role === 'standby' && sa.replication === 'in sync' && sb.replication === 'in sync';
  }, 30000);
  // The other box's own alarm is not echoed back to it from the raised ha.peerAlarm.
  assert.equal((await events(standby, 'ha.peerAlarm')).filter((e) => e.data?.id === failing.id).length, 0);
  assert.equal((await standby.cli(['ha', 'switchover'])).code, 0);
  await eventually('the first active active again, in sync', async () => {
    const [sa, sb] = await Promise.all([p!.status(active), p!.status(standby)]);
    return sa.role === 'active' && sa.replication === 'in sync' && sb.role === 'standby';
  }, 30000);
  await eventually('the standby alarm heard again', async () => ((await peerAlarms(active))?.latest?.id === failing.id ? true : false));
  await sleep(2000); // ten heartbeats at the default 200 ms
  assert.equal((await events(active, 'ha.peerAlarm')).filter((e) => e.data?.id === failing.id).length, 1, 'raised once, across a restart and two switchovers');

  // Acknowledged on the standby: the active's view goes to 0, and nothing new is raised.
  await cli(standby, ['alarm', 'ack']);
  await eventually('the active box shows no standby alarm', async () => (await peerAlarms(active))?.unacknowledged === 0);
  assert.doesNotMatch(await cli(active, ['ha', 'status']), /^peer alarms:/m);
  assert.equal((await events(active, 'ha.peerAlarm')).length, 1);
});
