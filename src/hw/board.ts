import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describeIssues } from '../config/config.js';
import { boardSchema, type Board } from './board-schema.js';

export type { Board } from './board-schema.js';

/** The board folder ships beside dist/ (package root). */
export const boardDir = fileURLToPath(new URL('../../../board/', import.meta.url));

/** Reads and validates `<dir>/<name>.json`; any problem stops the start with the key named. */
export async function loadBoard(name: string, dir: string = boardDir): Promise<Board> {
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`board: "${name}" is not a board name`);
  let raw: string;
  try {
    raw = await readFile(join(dir, `${name}.json`), 'utf8');
  } catch {
    throw new Error(`board: no board file ${name}.json in ${dir}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch (err) {
    throw new Error(`board ${name}: not JSON (${(err as Error).message})`);
  }
  const r = boardSchema.safeParse(doc);
  if (!r.success) throw new Error(`board ${name}: ${describeIssues(r.error.issues).join('; ')}`);
  if (r.data.model !== name) throw new Error(`board ${name}: model: "${r.data.model}" is not the file's name`);
  return r.data;
}
