import type { Config } from '../config/schema.js';
import type { ConfigStore } from '../config/config.js';
import type { CommandSpec } from '../commands/registry.js';
import type { StatusSection } from '../commands/status.js';
import type { EventInput, EventLog } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import type { DisconnectListener, PolicyUnit } from '../policy/chain.js';
import type { DirSyncer } from '../store/atomic.js';
import type { DataDecl } from '../store/data.js';
import type { Db } from '../store/db.js';
import type { Durability } from '../store/durability.js';
import type { Clock } from './clock.js';
import type { RestoreGate } from './restore-gate.js';

/**
 * What every capability is given: the box's stores and services, never another
 * capability's internals. Its data is written through `durability` (the seam that HA
 * mirrors), under the sublevels and folders it declared.
 */
export interface BoxContext {
  board: { model: string; adapter: string; network?: { lan?: string } };
  configDir: string;
  dataDir: string;
  started: number;
  config: ConfigStore;
  db: Db;
  durability: Durability;
  dirs: DirSyncer;
  events: EventLog;
  /** Records an event; a failure to record is logged, never thrown. */
  emit: (ev: EventInput) => void;
  log: Logger;
  clock: Clock;
  /** A restore owed to a swapped data disk; null-waiting when none. */
  restore: RestoreGate;
}

/** A running capability: what it contributes while the box serves mail. */
export interface Capability {
  /** Units of the SMTP policy chain; their order is policy/chain.ts's POLICY_ORDER. */
  policies?: PolicyUnit[];
  /** Told when a session the connect stage accepted ends. */
  disconnect?: DisconnectListener;
  /** Its part of `mlsd status` (and later the LCD and the web dashboard). */
  status?: StatusSection;
  /** Applies a changed setting live; keys marked restart-only in the schema are not its to apply. */
  configChanged?(cfg: Config, key: string): void;
  /** Stops its timers and work; `drainMs` is how long work under way may take to finish. */
  stop?(drainMs: number): Promise<void>;
}

/**
 * A capability as the composition root knows it: its data and its commands are declared
 * before anything runs (an HA standby replicates the data of capabilities it does not run,
 * and answers their commands with "run that on the active box"); `start` builds it when
 * the box serves mail: at start, or when an HA standby takes over.
 */
export interface CapabilityDef<T extends Capability = Capability> {
  name: string;
  data?: DataDecl;
  /** `running()` is the started capability, or null where it does not run (an HA standby). */
  commands?(box: BoxContext, running: () => T | null): CommandSpec[];
  start(box: BoxContext): Promise<T>;
}
