import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core (no browser download). The flags keep it from
 * talking to anything on its own — no updater, sync, or background fetches — so every
 * request a test sees is one the page made.
 */
const CHROMIUM_ARGS = ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
}

/** The repository root: the nearest folder above this file with a package.json (works from test/ and dist/test/). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('browser helper: no package.json above the test folder');
    dir = up;
  }
  return dir;
}

/** Where tests leave screenshots and traces: $MLSD_ARTIFACTS, else test-artifacts/ in the repo; created. */
export function artifactDir(): string {
  const dir = resolve(repoRoot(), process.env.MLSD_ARTIFACTS ?? 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  return dir;
}
