import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { eventually, type TestDaemon } from '../helpers/daemon.js';
import { startHaPair, startedInSync, waitInSync, type HaPair } from '../helpers/ha-pair.js';

/**
 * A capability that exists only in this test (test/helpers/notes-capability.ts) declares a
 * sublevel and a folder and writes them through the durability seam. With no change to
 * ha/, the standby must hold its records and files: as they are written, and after it
 * rejoins (the snapshot).
 */
const ENTRY = fileURLToPath(new URL('../helpers/notes-daemon.js', import.meta.url));
const pairs: HaPair[] = [];
after(async () => {
  for (const p of pairs) await p.cleanup();
});

interface Notes {
  records: { id: string; text: string }[];
  files: Record<string, string>;
}

async function notes(d: TestDaemon): Promise<Notes> {
  const r = await d.cli(['note', 'list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Notes;
}

async function addNote(d: TestDaemon, text: string): Promise<string> {
  const r = await d.cli(['note', 'add', text, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { id: string }).id;
}

const holds = (n: Notes, id: string, text: string) => n.records.some((r) => r.id === id && r.text === text) && n.files[`${id}.txt`] === text;

test("a test-only capability's sublevel and folder reach the HA standby, live and by snapshot", async () => {
  const p = await startHaPair({ net: '127.0.58', entry: ENTRY });
  pairs.push(p);
  const { active, standby } = await startedInSync(p);

  const first = await addNote(active, 'written while in sync');
  await eventually('the note on the standby', async () => holds(await notes(standby), first, 'written while in sync'));

  // A standby that was away gets what it missed in the snapshot when it rejoins.
  await standby.stop();
  const second = await addNote(active, 'written while the standby was down');
  await standby.start();
  await waitInSync(p);
  const got = await notes(standby);
  assert.ok(holds(got, first, 'written while in sync'), JSON.stringify(got));
  assert.ok(holds(got, second, 'written while the standby was down'), JSON.stringify(got));

  // On the standby the capability does not run: its writing command is refused there.
  const r = await standby.cli(['note', 'add', 'on the standby']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /run that on the active box/);
});
