import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** A hardware model's description, `board/<model>.json`: devices, pins, paths, config defaults. */
export interface Board {
  model: string;
  description: string;
  adapter: 'sim' | 'linux';
  paths: { configDir: string; dataDir: string };
  serial: Record<string, { device: string; baud: number }>;
  gpio: Record<string, unknown>;
  dataDisk: Record<string, unknown>;
  /** Network interfaces: `lan` carries the HA service address. */
  network?: { lan?: string; ha?: string };
  defaults: Record<string, unknown>;
}

/** The board folder ships beside dist/ (package root). */
export const boardDir = fileURLToPath(new URL('../../../board/', import.meta.url));

export async function loadBoard(name: string): Promise<Board> {
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`board: "${name}" is not a board name`);
  let raw: string;
  try {
    raw = await readFile(join(boardDir, `${name}.json`), 'utf8');
  } catch {
    throw new Error(`board: no board file ${name}.json in ${boardDir}`);
  }
  const b = JSON.parse(raw) as Board;
  for (const k of ['model', 'adapter', 'paths', 'defaults'] as const) {
    if (!(k in b)) throw new Error(`board ${name}: missing ${k}`);
  }
  return b;
}
