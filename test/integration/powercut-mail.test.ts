// Power cuts under a stream of mail: the data dir on the power-cut filesystem (what was not
// fsynced is gone), the daemon started again on what survived, every 250 checked each time.
// Daemon on 127.0.160.1, the sending PC 127.0.160.2. Needs root (FUSE). POWERCUT_CUTS sets the
// number of cuts (the soak, `make soak-powercut`, runs hundreds).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { figuresLine, MailStream, pause, PowerCutRig, tally, waitRouted, type Acked, MIXED_LOCAL, mixedRcpt, isMixedLocal, needsRoot } from '../helpers/powercut-mail.js';
import { destroyAllMounts } from '../helpers/powercut-fs.js';

const HOST = '127.0.160.1';
const PC = '127.0.160.2';
const CUTS = Number(process.env.POWERCUT_CUTS ?? 4);
const skip = needsRoot;
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await destroyAllMounts();
});

const LOCAL = MIXED_LOCAL;
const rcpt = mixedRcpt;
const isLocal = isMixedLocal;

test(`SMTP acceptance, spool and Maildir delivery: ${CUTS} power cuts under a stream of mail lose no 250`, { skip, timeout: 30 * 60_000 }, async () => {
  const rig = await PowerCutRig.create(HOST, { relay: { allowIps: [PC], allowRecipientDomains: [], allowAuthenticated: true } });
  cleanups.push(() => rig.cleanup());
  // A blank data disk: the daemon makes its folders on it, and the first cut comes seconds later.
  await rig.powerOn();
  for (const u of LOCAL) await rig.d.addUser(u, 'a-long-password-1');

  const acked: Acked[] = [];
  try {
    for (let cut = 1; cut <= CUTS; cut++) {
      const stream = new MailStream(HOST, rig.d.ports.mx, 'pc@example.test', PC, rcpt);
      stream.start(6, `c${cut}`);
      // Cut at a random moment once mail is flowing: some at once, some after a while.
      const want = 5 + Math.floor(Math.random() * 60);
      await stream.waitAcked(want);
      await pause(Math.random() * 300);
      await rig.cut();
      await stream.stop();
      acked.push(...stream.acked);

      // Power on again: the daemon must start on what survived, without repair, and hold
      // every message that got a 250, delivered or queued.
      await rig.powerOn();
      await waitRouted(rig.d);
      const lost = await tally(rig, acked, { local: isLocal });
      assert.deepEqual(lost, [], `after cut ${cut}: ${lost.length} of ${acked.length} acknowledged messages lost`);
      // Nothing needed repair: no store logged an error while it opened and recovered.
      assert.deepEqual(rig.errorLogs(), [], `after cut ${cut}`);
    }
  } finally {
    process.stdout.write(figuresLine('smtp-spool-maildir', rig.figures));
  }
  assert.equal(rig.figures.lost, 0);
  // The cuts did land on unsynced writes (otherwise they tested nothing).
  assert.ok(rig.figures.cutsThatDropped > 0, 'no cut dropped anything');
  await rig.shutdown();
});

// A new box per round: a blank data disk, the daemon making its folders (LevelDB's among them),
// and the power cut seconds later: during its start-up on odd rounds, under its first mail on
// even ones. Daemon on 127.0.160.3, the PC 127.0.160.4.
const BLANK_HOST = '127.0.160.3';
const BLANK_PC = '127.0.160.4';
const ROUNDS = Number(process.env.POWERCUT_BLANK_ROUNDS ?? 2);

test(`a blank data disk: ${ROUNDS} power cuts within seconds of the daemon making its folders`, { skip, timeout: 30 * 60_000 }, async () => {
  const total: Acked[] = [];
  const figures = { cuts: 0, acknowledged: 0, lost: 0, duplicated: 0, bytesDropped: 0, entriesDropped: 0, entriesRevived: 0, cutsThatDropped: 0 };
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const rig = await PowerCutRig.create(BLANK_HOST, { relay: { allowIps: [BLANK_PC], allowRecipientDomains: [], allowAuthenticated: true } });
      cleanups.push(() => rig.cleanup());
      await rig.mount();
      const spawned = Date.now();
      const started = rig.startDaemon();
      let acked: Acked[] = [];
      if (round % 2 === 1) {
        // During start-up: at a random one of the daemon's first operations on the disk (a
        // blank disk's start takes about 350 before the listeners are up).
        const target = 1 + Math.floor(Math.random() * 350);
        let ready = false;
        started.then(() => (ready = true), () => (ready = true));
        while (!ready && Number((await rig.fs!.stats()).ops) < target) await pause(2);
        await rig.cut();
      } else {
        await started;
        await rig.d.addUser('bob@example.test', 'a-long-password-1');
        const stream = new MailStream(BLANK_HOST, rig.d.ports.mx, 'pc@example.test', BLANK_PC, () => 'bob@example.test');
        stream.start(4, `blank${round}`);
        await pause(Math.random() * 1500);
        await rig.cut();
        await stream.stop();
        acked = stream.acked;
      }
      const cutAfter = Date.now() - spawned;

      // On what survived: the daemon starts, takes the disk for the one it had (a first start
      // cut short is not a swapped disk), holds every 250, and takes and delivers new mail.
      await rig.powerOn();
      const verdict = rig.d.logs.find((l) => l.evt === 'disk.marker');
      assert.ok(verdict?.verdict === 'known' || verdict?.verdict === 'first', `round ${round} (cut ${cutAfter} ms after the start): disk verdict ${String(verdict?.verdict)}`);
      assert.equal(verdict?.restorePending, false, `round ${round}: a restore is owed after a cut on a new box's first start`);
      await rig.d.addUser('bob@example.test', 'a-long-password-1').catch(() => undefined); // may have survived
      const after = new MailStream(BLANK_HOST, rig.d.ports.mx, 'pc@example.test', BLANK_PC, () => 'bob@example.test');
      after.start(1, `after${round}`);
      await after.waitAcked(3);
      await after.stop();
      await waitRouted(rig.d);
      const lost = await tally(rig, [...acked, ...after.acked], { local: () => true });
      assert.deepEqual(lost, [], `round ${round} (cut ${cutAfter} ms after the start): lost ${lost.join(', ')}`);
      assert.deepEqual(rig.errorLogs(), [], `round ${round}`);
      total.push(...acked);
      figures.cuts += rig.figures.cuts;
      figures.duplicated += rig.figures.duplicated;
      figures.bytesDropped += rig.figures.bytesDropped;
      figures.entriesDropped += rig.figures.entriesDropped;
      figures.entriesRevived += rig.figures.entriesRevived;
      figures.cutsThatDropped += rig.figures.cutsThatDropped;
      await rig.shutdown();
    }
  } finally {
    figures.acknowledged = total.length;
    process.stdout.write(figuresLine('blank-disk', figures));
  }
  assert.ok(figures.cutsThatDropped > 0, 'no cut dropped anything');
});
