import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestDaemon } from './daemon.js';

/** The smartctl fixtures (test/fixtures/smartctl; tsc does not copy them to dist). */
export const SMARTCTL_FIXTURES = fileURLToPath(new URL('../../../test/fixtures/smartctl/', import.meta.url));

/**
 * Gives a daemon (not started yet) its own sim data disk: a folder under its root that
 * `disk.simFixtures` names, into which the test copies fixture states between polls.
 */
export async function ownSimDisk(d: TestDaemon): Promise<{ folder: string; put(state: string): Promise<void> }> {
  const folder = join(d.root, 'disks');
  await mkdir(folder);
  const cfgPath = join(d.configDir, 'config.json');
  const cfg = JSON.parse(await readFile(cfgPath, 'utf8'));
  cfg.disk.simFixtures = folder;
  await writeFile(cfgPath, JSON.stringify(cfg, null, 2));
  return { folder, put: (state) => copyFile(join(SMARTCTL_FIXTURES, state, 'data.json'), join(folder, 'data.json')) };
}

/**
 * A sim data disk in a temporary folder, for a pair of boxes (they share the config document,
 * so `disk.simFixtures` names the one folder for both); `remove` when done.
 */
export async function tempSimDisk(): Promise<{ folder: string; put(state: string): Promise<void>; remove(): Promise<void> }> {
  const folder = await mkdtemp(join(tmpdir(), 'mlsd-sim-disk-'));
  return {
    folder,
    put: (state) => copyFile(join(SMARTCTL_FIXTURES, state, 'data.json'), join(folder, 'data.json')),
    remove: () => rm(folder, { recursive: true, force: true }),
  };
}
