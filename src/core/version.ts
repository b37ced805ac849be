import { readFileSync } from 'node:fs';

/** The version of record is package.json's; read once, where the daemon's files are. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
