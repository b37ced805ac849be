// Power cuts of the stores mail moves into after the spool: the archive (intake, hash chain,
// search index), the quarantine (moves in, releases and deletes out) and the backup state.
// The data dir on the power-cut filesystem (what was not fsynced is gone), the daemon started
// again on what survived, every acknowledged message looked for where a user would look.
// Daemons on 127.0.163.x, the sending PCs on 127.0.164.x. Needs root (FUSE). POWERCUT_CUTS
// sets the number of cuts per store.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { figuresLine, MailStream, maildirTokens, pause, PowerCutRig, tally, waitRouted, type Acked, type PowerCutFigures, needsRoot } from '../helpers/powercut-mail.js';
import type { TestDaemon } from '../helpers/daemon.js';
import type { QuarantineRecord } from '../../src/scan/quarantine.js';
import { destroyAllMounts } from '../helpers/powercut-fs.js';

const CUTS = Number(process.env.POWERCUT_CUTS ?? 3);
const skip = needsRoot;
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await destroyAllMounts();
});

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const LOCAL = ['bob@example.test', 'carol@example.test'];
const rcpt = (i: number): string => LOCAL[i % LOCAL.length]!;

async function cliJson<T>(d: TestDaemon, args: string[]): Promise<T> {
  const r = await d.cli([...args, '--json']);
  assert.equal(r.code, 0, `mlsd ${args.join(' ')}: ${r.stdout} ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Mail streams for a while, then the power goes at a random moment; returns what got a 250. */
async function streamAndCut(
  rig: PowerCutRig,
  pc: string,
  cut: number,
  o: { body?: (token: string) => string; during?: () => Promise<void>; ready?: () => boolean; connections?: number; why?: () => string; jitter?: boolean; want?: number } = {},
): Promise<Acked[]> {
  const stream = new MailStream(rig.d.host, rig.d.ports.mx, 'pc@example.test', pc, rcpt, o.body);
  stream.start(o.connections ?? 6, `c${cut}`);
  let ended = 0;
  const busy = o.during?.().finally(() => (ended = Date.now()));
  const want = o.want ?? 5 + Math.floor(Math.random() * 60);
  const until = Date.now() + 300_000;
  while (stream.acked.length < want || !(o.ready?.() ?? true)) {
    if (Date.now() > until) throw new Error(`cut ${cut}: the moment to cut did not come in 5 minutes ${o.why?.() ?? ''}`);
    // What the cut waits for can no longer come (the administrator's loop or the backup run ended early).
    if (ended && Date.now() - ended > 10_000) throw new Error(`cut ${cut}: the moment to cut never came ${o.why?.() ?? ''}`);
    await pause(5);
  }
  // A cut timed into a command of its own comes at once; the others a random while later.
  if (o.jitter !== false) await pause(Math.random() * 300);
  await rig.cut();
  await stream.stop();
  await busy;
  return stream.acked;
}

interface ArchiveStatus {
  halted: string | null;
  setAside: number;
  records: number;
  intake: number;
  indexedUpTo: number;
}

/** Waits until the intake is empty and the search index has caught up with the chain. */
async function archiveSettled(d: TestDaemon, timeoutMs = 60_000): Promise<ArchiveStatus> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const a = (await cliJson<{ archive: ArchiveStatus }>(d, ['status'])).archive;
    if (a.halted) throw new Error(`the archive is halted: ${a.halted}`);
    if (a.intake === 0 && a.indexedUpTo === a.records) return a;
    if (Date.now() > until) throw new Error(`the archive never settled: ${JSON.stringify(a)}`);
    await pause(200);
  }
}

/**
 * The Subjects of the archive's records above `aboveSeq`, as its search shows them (newest
 * first, page by page), counted into `into`.
 */
async function archivedSubjects(d: TestDaemon, aboveSeq: number, into: Map<string, number>): Promise<void> {
  let before: number | null = null;
  for (;;) {
    const page: { hits: { subject: string; seq: number }[]; next: number | null } = await cliJson(d, ['archive', 'search', ...(before === null ? [] : ['--before', String(before)])]);
    for (const h of page.hits) {
      if (h.seq <= aboveSeq) return;
      into.set(h.subject, (into.get(h.subject) ?? 0) + 1);
    }
    if (page.next === null) return;
    before = page.next;
  }
}

test(`archive intake, hash chain and search index: ${CUTS} power cuts under a stream of mail lose no 250 from the archive`, { skip, timeout: 30 * 60_000 }, async () => {
  const PC = '127.0.164.1';
  const rig = await PowerCutRig.create('127.0.163.1', {
    relay: { allowIps: [PC], allowRecipientDomains: [], allowAuthenticated: true },
    archive: { rules: [{ name: 'everything', action: 'archive' }] },
  });
  cleanups.push(() => rig.cleanup());
  await rig.powerOn();
  for (const u of LOCAL) await rig.d.addUser(u, 'a-long-password-1');

  const acked: Acked[] = [];
  const archive: PowerCutFigures = { ...rig.figures };
  // What the cuts left for the restart: messages still in the intake, and archived messages
  // the search index had not taken (or lost the tail of: SQLite WAL with synchronous NORMAL).
  let leftInIntake = 0;
  let indexCaughtUp = 0;
  const found = new Map<string, number>();
  let shownUpTo = 0;
  try {
    for (let cut = 1; cut <= CUTS; cut++) {
      acked.push(...(await streamAndCut(rig, PC, cut)));

      // Power on again: the archive opens on what survived (not halted: the chain ends at its
      // head), its intake drains, the index catches up, verify finds no broken link, and every
      // acknowledged message is both delivered and found by an archive search.
      await rig.powerOn();
      await waitRouted(rig.d);
      const lostDelivered = await tally(rig, acked, { local: () => true });
      assert.deepEqual(lostDelivered, [], `after cut ${cut}: ${lostDelivered.length} of ${acked.length} acknowledged messages not delivered`);
      const status = await archiveSettled(rig.d);
      assert.equal(status.setAside, 0, 'no message set aside by the intake');
      // No mail arrives after the restart: what the intake and the index did, they owed the cut.
      const sum = (evt: string, field: string) => rig.d.logs.filter((l) => l.evt === evt).reduce((n, l) => n + Number(l[field] ?? 0), 0);
      leftInIntake += sum('archive.intake', 'messages');
      indexCaughtUp += sum('archive.index.catchup', 'messages');
      const verify = await rig.d.cli(['archive', 'verify', '--json']);
      assert.equal(verify.code, 0, `after cut ${cut}: archive verify: ${verify.stdout} ${verify.stderr}`);
      assert.deepEqual((JSON.parse(verify.stdout) as { problems: unknown[] }).problems, []);
      // The records a search has shown before are looked for again only at the last cut (a walk
      // of every page after each cut would cost the square of the mail); verify has checked the
      // whole chain each time, and the count of records shown must match the chain's.
      if (cut === CUTS) found.clear();
      await archivedSubjects(rig.d, cut === CUTS ? 0 : shownUpTo, found);
      shownUpTo = status.records;
      const lost = acked.filter((a) => !found.has(a.token)).map((a) => `${a.token} (${a.id})`);
      Object.assign(archive, rig.figures, { lost: lost.length, duplicated: acked.filter((a) => (found.get(a.token) ?? 0) > 1).length });
      assert.deepEqual(lost, [], `after cut ${cut}: ${lost.length} of ${acked.length} acknowledged messages missing from the archive`);
      assert.equal(status.records, [...found.values()].reduce((s, n) => s + n, 0), 'search shows every chain record');
    }
  } finally {
    process.stdout.write(figuresLine('archive-delivered', rig.figures));
    process.stdout.write(figuresLine('archive-intake-chain-index', archive));
    process.stdout.write(`# powercut archive: taken in after a restart ${leftInIntake} messages, indexed after a restart ${indexCaughtUp}\n`);
  }
  assert.equal(rig.figures.lost, 0);
  assert.equal(archive.lost, 0);
  assert.ok(rig.figures.cutsThatDropped > 0, 'no cut dropped anything');
  await rig.shutdown();
});

/** Every third message of a sender carries GTUBE: the outbound scan quarantines it. */
const infected = (token: string): boolean => Number(token.split('-')[3]) % 3 === 0;
const quarantineBody = (token: string): string =>
  `Subject: ${token}\r\nFrom: <pc@example.test>\r\nMessage-ID: <${token}@pc.example.test>\r\n\r\n${'a line of the message body\r\n'.repeat(20)}${infected(token) ? `${GTUBE}\r\n` : ''}`;

/** What the administrator did to quarantined messages: answered (done) or cut off mid-way (in flight). */
interface AdminMoves {
  released: Set<string>;
  deleted: Set<string>;
  releaseInFlight: Set<string>;
  deleteInFlight: Set<string>;
  /** When the command of the move under way started (0: none under way). */
  since: number;
  /** How long the last answered move's command took. */
  lastMs: number;
  /** The command that failed and ended the administrator's loop (the daemon dying, or not). */
  failed: string;
}

async function quarantineList(d: TestDaemon): Promise<QuarantineRecord[]> {
  return cliJson<QuarantineRecord[]>(d, ['quarantine', 'list']);
}

/** Releases and deletes quarantined messages one by one until the daemon dies under it. */
async function administrate(d: TestDaemon, moves: AdminMoves): Promise<void> {
  for (;;) {
    const r = await d.cli(['quarantine', 'list', '--json']);
    if (r.code !== 0) return void (moves.failed = `quarantine list: ${r.stdout} ${r.stderr}`);
    const held = (JSON.parse(r.stdout) as QuarantineRecord[]).filter((q) => !moves.releaseInFlight.has(q.id) && !moves.deleteInFlight.has(q.id));
    const q = held[Math.floor(Math.random() * held.length)];
    if (!q) {
      await pause(50);
      continue;
    }
    // Counted over the whole run, not this cut's loop: every third answered move is a delete,
    // so a short run has both.
    const release = (moves.released.size + moves.deleted.size) % 3 !== 2;
    const [inFlight, done] = release ? [moves.releaseInFlight, moves.released] : [moves.deleteInFlight, moves.deleted];
    inFlight.add(q.id);
    moves.since = Date.now();
    const a = await d.cli(['quarantine', release ? 'release' : 'delete', q.id]);
    // The daemon died: the move stays "in flight".
    if (a.code !== 0) return void (moves.failed = `quarantine ${release ? 'release' : 'delete'} ${q.id}: ${a.stdout} ${a.stderr}`);
    moves.lastMs = Date.now() - moves.since;
    moves.since = 0;
    inFlight.delete(q.id);
    done.add(q.id);
  }
}

test(`quarantine moves in, releases and deletes out: ${CUTS} power cuts lose no acknowledged message`, { skip, timeout: 30 * 60_000 }, async () => {
  const PC = '127.0.164.2';
  const rig = await PowerCutRig.create('127.0.163.2', {
    relay: { allowIps: [PC], allowRecipientDomains: [], allowAuthenticated: true },
    // The PC is a local sender: its mail is scanned, and spam (GTUBE, the built-in layer) quarantined.
    scan: { outbound: { enabled: true, action: 'quarantine' }, alertAfterHits: 1000 },
    archive: { enabled: false },
  });
  cleanups.push(() => rig.cleanup());
  await rig.powerOn();
  for (const u of LOCAL) await rig.d.addUser(u, 'a-long-password-1');

  const acked: Acked[] = [];
  const moves: AdminMoves = { released: new Set(), deleted: new Set(), releaseInFlight: new Set(), deleteInFlight: new Set(), since: 0, lastMs: 0, failed: '' };
  let leaked = 0;
  let interrupted = 0;
  try {
    for (let cut = 1; cut <= CUTS; cut++) {
      // The cut comes once the administrator has answered a few moves (a command takes a
      // while), at a random moment: a move may be under way.
      // Every other cut comes a random while into a move's command (the CLI's start takes most
      // of it; the move itself, a link and a synced batch, the end).
      const answered = moves.released.size + moves.deleted.size + 1 + Math.floor(Math.random() * 3);
      // The moment is a share of how long the last command took, so it comes on a fast
      // machine as on a slow one.
      const intoMove = cut % 2 === 0 ? 0.3 + Math.random() * 0.6 : -1;
      const ready = () => moves.released.size + moves.deleted.size >= answered && (intoMove < 0 || (moves.since > 0 && Date.now() - moves.since >= intoMove * moves.lastMs));
      acked.push(...(await streamAndCut(rig, PC, cut, { body: quarantineBody, during: () => administrate(rig.d, moves), ready, why: () => moves.failed, jitter: intoMove < 0 })));

      await rig.powerOn();
      await waitRouted(rig.d);
      const held = new Set((await quarantineList(rig.d)).map((q) => q.id));
      const boxes = new Map<string, Map<string, number>>();
      for (const u of LOCAL) boxes.set(u, await maildirTokens(rig.mnt, u));
      const delivered = (a: Acked): number => boxes.get(a.to)!.get(a.token) ?? 0;
      const lost: string[] = [];
      let duplicated = 0;
      leaked = 0;
      for (const a of acked) {
        const copies = delivered(a) + (held.has(a.id) ? 1 : 0);
        if (!infected(a.token)) {
          // Clean mail: delivered.
          if (!delivered(a)) lost.push(`clean ${a.token} (${a.id})`);
        } else if (moves.deleted.has(a.id)) {
          // Deleted by the administrator, and the delete was answered: it stays gone.
          assert.equal(copies, 0, `${a.id} came back after its delete was acknowledged`);
          continue;
        } else if (moves.released.has(a.id)) {
          // Released, and the release was answered: delivered (never gone).
          if (!delivered(a)) lost.push(`released ${a.token} (${a.id}${held.has(a.id) ? ', still quarantined' : ''})`);
        } else if (moves.releaseInFlight.has(a.id)) {
          // A release the cut interrupted: delivered or still quarantined, never gone.
          if (!copies) lost.push(`released in flight ${a.token} (${a.id})`);
        } else if (moves.deleteInFlight.has(a.id)) {
          // A delete the cut interrupted: gone or still quarantined, either is right.
          assert.equal(delivered(a), 0, `${a.id} was delivered, its delete interrupted`);
          continue;
        } else {
          // Spam nobody touched: in the quarantine, and never delivered.
          if (!held.has(a.id)) lost.push(`quarantined ${a.token} (${a.id})`);
          if (delivered(a)) leaked++;
        }
        if (copies > 1) duplicated++;
      }
      Object.assign(rig.figures, { acknowledged: acked.length, lost: lost.length, duplicated });
      assert.deepEqual(lost, [], `after cut ${cut}: ${lost.length} of ${acked.length} acknowledged messages lost`);
      assert.equal(leaked, 0, 'spam nobody released was delivered');
      interrupted += moves.releaseInFlight.size + moves.deleteInFlight.size;
      // What the cut interrupted is settled now: a move in flight is judged once, after its cut.
      // (a release that did not happen leaves untouched spam: it must stay quarantined).
      for (const a of acked) if (moves.releaseInFlight.has(a.id) && delivered(a)) moves.released.add(a.id);
      moves.releaseInFlight.clear();
      for (const id of moves.deleteInFlight) if (!held.has(id)) moves.deleted.add(id);
      moves.deleteInFlight.clear();
      moves.since = 0;
    }
  } finally {
    process.stdout.write(figuresLine('quarantine', rig.figures));
    process.stdout.write(`# powercut quarantine: released ${moves.released.size}, deleted ${moves.deleted.size}, interrupted by a cut ${interrupted}, spam acknowledged ${acked.filter((a) => infected(a.token)).length}\n`);
  }
  assert.equal(rig.figures.lost, 0);
  assert.ok(moves.released.size > 0 && moves.deleted.size > 0, 'the administrator released and deleted under the cuts');
  assert.ok(rig.figures.cutsThatDropped > 0, 'no cut dropped anything');
  await rig.shutdown();
});

interface BackupRun {
  generation: string;
  files: number;
}

interface BackupState {
  last: { generation: string; target: string; files: number } | null;
  failure: { kind: string; message: string } | null;
  running: string | null;
}

/** A user's Subjects in the newest backup generation, as `backup browse` shows them. */
async function browsedSubjects(d: TestDaemon, user: string): Promise<{ generation: string; subjects: Map<string, number> }> {
  const r = await cliJson<{ generation: string; messages: { subject: string }[] }>(d, ['backup', 'browse', user]);
  const subjects = new Map<string, number>();
  for (const m of r.messages) subjects.set(m.subject, (subjects.get(m.subject) ?? 0) + 1);
  return { generation: r.generation, subjects };
}

test(`backup state on the box: ${CUTS} power cuts during backup runs leave a state the next run, verify and browse work from`, { skip, timeout: 30 * 60_000 }, async () => {
  const PC = '127.0.164.3';
  const rig = await PowerCutRig.create('127.0.163.3', {
    relay: { allowIps: [PC], allowRecipientDomains: [], allowAuthenticated: true },
    backup: { schedule: { enabled: false } },
  });
  cleanups.push(() => rig.cleanup());
  // The NAS is another machine: its folder is not on the power-cut disk, and keeps what it got.
  const nas = join(rig.root, 'nas');
  await mkdir(nas);
  await rig.powerOn();
  for (const u of LOCAL) await rig.d.addUser(u, 'a-long-password-1');
  const added = await rig.d.cli(['backup', 'target', 'add', 'nas', '--type', 'dir', '--url', nas]);
  assert.equal(added.code, 0, added.stderr);

  const acked: Acked[] = [];
  const generationsAcked: string[] = [];
  // How long a run takes here (the cut comes at a random moment of the next one).
  let runMs = Date.now();
  const first = await rig.d.cli(['backup', 'run', '--json']);
  assert.equal(first.code, 0, first.stderr);
  runMs = Date.now() - runMs;
  let runsCut = 0;
  const backupFigures: PowerCutFigures = { ...rig.figures };
  try {
    for (let cut = 1; cut <= CUTS; cut++) {
      // Mail streams in while a backup runs; the power goes at a random moment of the run (a
      // run that ended first is cut in the mail after it).
      // Every third cut comes as the run logs its generation complete: its manifest is on the
      // NAS and the box is writing its own state (the hash cache, the last good backup).
      let runAnswered = false;
      let runStarted = 0;
      // The first cut surely inside the run (so a short run has cut one), the others anywhere.
      const cutAfter = Math.random() * runMs * (cut === 1 ? 0.8 : 1.2);
      const done = () => rig.d.logs.filter((l) => l.evt === 'backup.done').length;
      const doneBefore = done();
      const atTheEnd = cut % 3 === 0;
      acked.push(
        ...(await streamAndCut(rig, PC, cut, {
          // A trickle: a backup run takes a while, and all the mail of it is backed up after.
          // The moment is the run's, not the mail's.
          connections: 1,
          want: 1,
          ready: () => runStarted > 0 && (atTheEnd ? done() > doneBefore : Date.now() - runStarted >= cutAfter),
          during: async () => {
            await pause(Math.random() * 200);
            runStarted = Date.now();
            const r = await rig.d.cli(['backup', 'run', '--json']);
            if (r.code !== 0) return;
            runAnswered = true;
            generationsAcked.push((JSON.parse(r.stdout) as BackupRun[])[0]!.generation);
          },
        })),
      );
      if (!runAnswered) runsCut++;

      // Power on: the backup state opens as it was left; no run is said to be running; the last
      // good backup it names is no newer than the NAS's newest, nor is any run the CLI answered
      // (older generations are pruned by backup.keep: a run cut after its manifest and its
      // pruning, before its status, leaves the status naming the one before it, pruned or not).
      await rig.powerOn();
      await waitRouted(rig.d);
      const lostDelivered = await tally(rig, acked, { local: () => true });
      assert.deepEqual(lostDelivered, [], `after cut ${cut}: ${lostDelivered.length} of ${acked.length} acknowledged messages not delivered`);
      const state = await cliJson<BackupState>(rig.d, ['backup', 'status']);
      assert.ok(!state.running, `after cut ${cut}: a backup is said to be running: ${JSON.stringify(state)}`);
      const onNas = (await cliJson<{ target: string; generations: string[] }[]>(rig.d, ['backup', 'generations']))[0]!.generations;
      const newest = [...onNas].sort().pop() ?? '';
      if (state.last) assert.ok(state.last.generation <= newest, `after cut ${cut}: status names generation ${state.last.generation}, the NAS's newest is ${newest}`);
      for (const g of generationsAcked) assert.ok(g <= newest, `generation ${g} was answered, the NAS's newest is ${newest}`);

      // The next run completes from the state the cut left, verifies whole, and holds every
      // acknowledged message (each was delivered before it started).
      runMs = Date.now();
      const run = await rig.d.cli(['backup', 'run', '--json']);
      runMs = Date.now() - runMs;
      assert.equal(run.code, 0, `after cut ${cut}: backup run: ${run.stdout} ${run.stderr}`);
      const generation = (JSON.parse(run.stdout) as BackupRun[])[0]!.generation;
      generationsAcked.push(generation);
      const after = await cliJson<BackupState>(rig.d, ['backup', 'status']);
      assert.equal(after.last?.generation, generation, 'status names the run just done');
      const verify = await rig.d.cli(['backup', 'verify', '--full', '--json']);
      assert.equal(verify.code, 0, `after cut ${cut}: backup verify: ${verify.stdout} ${verify.stderr}`);
      const lost: string[] = [];
      let duplicated = 0;
      for (const u of LOCAL) {
        const b = await browsedSubjects(rig.d, u);
        assert.equal(b.generation, generation);
        for (const a of acked.filter((x) => x.to === u)) {
          const n = b.subjects.get(a.token) ?? 0;
          if (!n) lost.push(`${a.token} (${a.id} to ${u})`);
          if (n > 1) duplicated++;
        }
      }
      Object.assign(backupFigures, rig.figures, { lost: lost.length, duplicated });
      assert.deepEqual(lost, [], `after cut ${cut}: ${lost.length} of ${acked.length} acknowledged messages missing from the backup`);
    }
  } finally {
    process.stdout.write(figuresLine('backup-delivered', rig.figures));
    process.stdout.write(figuresLine('backup-browse', backupFigures));
    process.stdout.write(`# powercut backup: runs cut before their answer ${runsCut} of ${CUTS} (a run takes about ${runMs} ms), generations answered ${generationsAcked.length}\n`);
  }
  assert.equal(backupFigures.lost, 0);
  assert.ok(runsCut > 0, 'no cut landed in a backup run');
  assert.ok(rig.figures.cutsThatDropped > 0, 'no cut dropped anything');
  await rig.shutdown();
});
