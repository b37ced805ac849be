// The audit trail of changes: whichever face a command came through (the web admin, the serial
// console, the CLI, the front panel), a command that changes something is recorded as an event
// saying who, from where, what, and for a setting its old and new value. Reads are not recorded:
// a trail full of page views would hide the one change that matters.
import type { ControlRequest, ControlResponse } from './control.js';
import type { CommandInput } from './registry.js';
import type { EventInput } from '../events/events.js';
import type { ConfigStore } from '../config/config.js';
import { getKey } from '../config/config.js';
import { maskSecrets } from '../config/secrets.js';

export interface Origin {
  face: 'web' | 'console' | 'cli' | 'panel';
  /** The login (the one administrator; `root` for the local CLI, whose socket only root reaches). */
  who: string;
  /** An IP address, a serial device, "control socket", "front panel". */
  from: string;
}

/** Commands that only read: everything else is a change and is audited. */
const READS = new Set([
  'status', 'config get', 'events list', 'alarm list', 'alias list', 'user list', 'dkim show', 'queue list',
  'quarantine list', 'quarantine show', 'quarantine export', 'archive search', 'archive show', 'archive export', 'archive hold list',
  'archive verify', 'backup status', 'backup target list', 'backup target test', 'backup browse', 'restore status',
  'disk status', 'disk poll', 'ha status', 'network show', 'panel screen', 'panel leds', 'mail stats', 'threshold status',
  'tls show', 'backup generations',
]);

/** The command a request names, for the trail: the one run() would run, or a near miss by its first words. */
export interface Resolver {
  resolve(argv: string[], stdin?: string): { name: string; input: CommandInput } | null;
  names(): ReadonlySet<string>;
}

/** The longest known command name argv starts with (for a request run() will refuse). */
function leadingName(argv: string[], names: ReadonlySet<string>): string | null {
  for (let n = Math.min(argv.length, 4); n > 0; n--) {
    const name = argv.slice(0, n).join(' ');
    if (names.has(name)) return name;
  }
  return null;
}

export function isChange(name: string | null): boolean {
  return name !== null && !READS.has(name);
}

/** An argv as the trail shows it: long values cut, control characters made visible. */
function shown(argv: string[]): string {
  return argv.map((a) => (a.length > 200 ? `${a.slice(0, 200)}...` : a).replace(/[\u0000-\u001f\u007f]/g, '?')).map((a) => (/[\s"']/.test(a) || a === '' ? JSON.stringify(a) : a)).join(' ');
}

/**
 * Runs a request and records it when it changed something (or tried to: a refused change is
 * recorded too, with its error, since a refused attempt is what an auditor looks for).
 */
export async function runAudited(
  run: (req: ControlRequest) => Promise<ControlResponse>,
  req: ControlRequest,
  origin: Origin,
  deps: { commands: () => Resolver; config: () => ConfigStore; emit: (ev: EventInput) => void },
): Promise<ControlResponse> {
  const argv = Array.isArray(req.argv) && req.argv.every((a) => typeof a === 'string') ? (req.argv as string[]) : null;
  if (!argv) return run(req);
  // Read as the registry reads it ("config set" as one word, `--` before the key, options
  // anywhere), so no spelling of a change slips past the trail or shows a secret.
  const resolved = deps.commands().resolve(argv, req.stdin);
  const name = resolved?.name ?? leadingName(argv, deps.commands().names());
  if (!isChange(name)) return run(req);
  const setting = name === 'config set' && resolved ? resolved.input.arg('KEY') : null;
  const before = setting !== null ? safeGet(deps.config, setting) : undefined;
  const res = await run(req);
  const after = setting !== null && res.ok ? safeGet(deps.config, setting) : undefined;
  const what =
    setting !== null
      ? shown(['config', 'set', setting, maskedValue(setting, resolved!.input.arg('JSON-VALUE'))])
      : name === 'config set'
        ? 'config set (not readable as KEY JSON-VALUE; not shown)'
        : shown(argv);
  const change = setting !== null && res.ok ? ` (was ${JSON.stringify(before)}, now ${JSON.stringify(after)})` : '';
  // The registry's refusal of an unreadable config set may quote the value: not repeated here.
  const refusal = res.ok ? '' : name === 'config set' && setting === null ? ' refused: not KEY JSON-VALUE' : ` refused: ${res.error}`;
  deps.emit({
    kind: 'admin.change',
    severity: 'info',
    text: `${origin.face} ${origin.who}@${origin.from}: ${what}${res.ok ? change : refusal}`,
    account: origin.who,
    ...(origin.face === 'web' ? { ip: origin.from } : {}),
    data: { face: origin.face, who: origin.who, from: origin.from, argv: what, ok: res.ok, ...(setting !== null ? { key: setting, old: before, new: after } : {}) },
  });
  return res;
}

function maskedValue(key: string, text: string): string {
  let value: unknown = text;
  try {
    value = JSON.parse(text);
  } catch {
    // not JSON: the command refuses it, but a secret typed wrongly is still a secret
  }
  try {
    return JSON.stringify(maskSecrets(key, value));
  } catch {
    return '(value not shown)';
  }
}

function safeGet(config: () => ConfigStore, key: string): unknown {
  try {
    return maskSecrets(key, getKey(config().current, key));
  } catch {
    return undefined;
  }
}
