// Power cuts under a stream of mail: the data dir on the power-cut filesystem (what was not
// fsynced is gone), the daemon started again on what survived, every 250 checked each time.
// Daemon on 127.0.160.1, the sending PC 127.0.160.2. Needs root (FUSE). POWERCUT_CUTS sets the
// number of cuts (the soak, `make soak-powercut`, runs hundreds).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { figuresLine, MailStream, pause, PowerCutRig, tally, waitRouted, type Acked } from '../helpers/powercut-mail.js';

const HOST = '127.0.160.1';
const PC = '127.0.160.2';
const CUTS = Number(process.env.POWERCUT_CUTS ?? 6);
const skip = process.getuid?.() !== 0 ? 'FUSE mounts need root' : false;
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const LOCAL = ['bob@example.test', 'carol@example.test', 'dave@example2.test'];
const rcpt = (i: number): string => (i % 4 === 3 ? `partner${i % 7}@remote.test` : LOCAL[i % LOCAL.length]!);
const isLocal = (a: Acked): boolean => !a.to.endsWith('@remote.test');

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
      while (stream.acked.length < want) await pause(5);
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
    }
  } finally {
    process.stdout.write(figuresLine('smtp-spool-maildir', rig.figures));
  }
  assert.equal(rig.figures.lost, 0);
  // The cuts did land on unsynced writes (otherwise they tested nothing).
  assert.ok(rig.figures.cutsThatDropped > 0, 'no cut dropped anything');
  await rig.shutdown();
});
