import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import type { DataDecl } from '../store/data.js';

/**
 * Where the sim board keeps what a real board would do to itself (the LAN settings it
 * would apply, the reboots it would perform): `<configDir>/sim-board/`, one JSON file per
 * port, so a test or a person trying `make run` can read what was asked for.
 */
export const SIM_BOARD_FOLDER = 'sim-board';

/**
 * Declared so backups and HA know it: this box's own (the LAN address and a reboot request
 * are per box; a peer that copied them would take the other box's address).
 */
export const SIM_BOARD_DATA: DataDecl = {
  owner: 'board',
  configFiles: [{ pattern: /^sim-board\//, describe: "the sim board's record of network settings applied and power requests", replicate: false, mode: 0o600 }],
};

/** How many applied settings or power requests each file keeps (the newest). */
export const SIM_HISTORY = 50;

export function simBoardPath(configDir: string, file: string): string {
  return join(configDir, SIM_BOARD_FOLDER, file);
}

/** The file's document, or null when there is none yet (a document that does not parse is an error: it was edited by hand). */
export async function readSimRecord<T>(configDir: string, file: string): Promise<T | null> {
  const path = simBoardPath(configDir, file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${path}: not JSON; fix or delete it`);
  }
}

export async function writeSimRecord(configDir: string, file: string, doc: unknown): Promise<void> {
  await mkdir(join(configDir, SIM_BOARD_FOLDER), { recursive: true, mode: 0o700 });
  await writeFileAtomic(simBoardPath(configDir, file), JSON.stringify(doc, null, 2) + '\n');
}
