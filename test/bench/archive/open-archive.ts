/** The Archiver as the archive capability builds it, on a data dir and config dir of the bench's own. */
import type { Archiver } from '../../../src/archive/archiver.js';

export interface BenchArchive {
  archiver: Archiver;
  /** The rule set hash intake records name (the default rules: spam and viruses skipped, 7 years). */
  ruleset: string;
  close(): Promise<void>;
}

// TODO(a-bench): build it the way src/archive/capability.ts does, once that lands on main.
export async function openArchive(_dataDir: string, _configDir: string): Promise<BenchArchive> {
  throw new Error('archive bench: openArchive waits for src/archive/capability.ts');
}
