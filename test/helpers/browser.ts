// Debian's Chromium, driven by playwright-core: the real browser an administrator uses.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

/** The flags that keep a headless Chromium off the network: no background requests, no updates. */
export const CHROMIUM_ARGS = ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
}

/** Where screenshots go (kept as test artifacts, never committed): $MLSD_ARTIFACTS or test-artifacts/. */
export function artifactDir(): string {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const dir = resolve(root, process.env.MLSD_ARTIFACTS ?? 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  return dir;
}
