import type { ControlRequest, ControlResponse } from './control.js';

/**
 * The one command layer. Every face (the CLI through the control socket, the serial
 * console, the web admin API, the LCD menus) hands argv to `CommandRegistry.run`;
 * capabilities declare their commands as `CommandSpec`s, and the registry checks argv
 * against the declaration before a handler sees it.
 */

export interface ArgumentSpec {
  /** Upper-case placeholder, as the usage shows it: ADDRESS, ID, KEY. */
  name: string;
  required: boolean;
}

export type OptionType = 'string' | 'boolean' | 'list';

export interface OptionSpec {
  /** Without the dashes: 'to' for --to. */
  name: string;
  /** string: --name VALUE; boolean: --name alone; list: --name A,B,C (comma-separated). */
  type: OptionType;
  required?: boolean;
  /** Placeholder in the usage (default: the name upper-cased). */
  value?: string;
}

export type OptionValue = string | boolean | string[];

/** What a handler receives: argv already checked against its spec. */
export class CommandInput {
  constructor(
    private readonly args: ReadonlyMap<string, string>,
    private readonly options: ReadonlyMap<string, OptionValue>,
    /** The secret read from standard input (--password-stdin), when the spec reads one. */
    readonly stdin?: string,
  ) {}

  /** A declared positional argument; an absent optional one is ''. */
  arg(name: string): string {
    return this.args.get(name) ?? '';
  }

  string(name: string): string | undefined {
    const v = this.options.get(name);
    return typeof v === 'string' ? v : undefined;
  }

  flag(name: string): boolean {
    return this.options.get(name) === true;
  }

  list(name: string): string[] {
    const v = this.options.get(name);
    return Array.isArray(v) ? v : [];
  }
}

export interface CommandOutput {
  text: string;
  json?: unknown;
  /** Exact bytes for standard output instead of the text (base64; `archive export`). */
  bytes?: string;
  /** The CLI exits with this after printing (a report that found problems: `archive verify`). */
  exitCode?: number;
}

export interface CommandSpec {
  /** One or more words: 'status', 'queue list', 'user add'. */
  name: string;
  /** One line saying what it does. */
  summary: string;
  args?: ArgumentSpec[];
  options?: OptionSpec[];
  /** Reads a secret from standard input (the CLI's --password-stdin); 'optional': a secret that may be absent. */
  stdin?: boolean | 'optional';
  /** May run on an HA standby box, which serves no mail. */
  standby: boolean;
  /** Throws to report an error; the message is the one line the user sees. */
  run(input: CommandInput): Promise<CommandOutput> | CommandOutput;
}

/** A request argv longer than this is refused before it is looked at. */
export const MAX_ARGV = 64;
export const MAX_REQUEST_CHARS = 1 << 20;

/** The usage line of a spec, derived from its declaration: `alias add ADDRESS --to A,B [--senders LOGIN,...]`. */
export function usageOf(spec: CommandSpec): string {
  const parts = [spec.name];
  for (const a of spec.args ?? []) parts.push(a.required ? a.name : `[${a.name}]`);
  for (const o of spec.options ?? []) {
    const form = o.type === 'boolean' ? `--${o.name}` : `--${o.name} ${o.value ?? o.name.toUpperCase()}`;
    parts.push(o.required ? form : `[${form}]`);
  }
  if (spec.stdin) parts.push(spec.stdin === 'optional' ? '[--password-stdin]' : '--password-stdin');
  return parts.join(' ');
}

/** A request that does not fit its spec: the message names what is wrong. */
class UsageError extends Error {}

interface Registered {
  owner: string;
  spec: CommandSpec;
}

export interface RegistryOptions {
  /** False on an HA standby: only specs marked `standby: true` run there. */
  serving(): boolean;
  /** This box's HA role, for the refusal on a standby. */
  role(): string;
}

export class CommandRegistry {
  private readonly byName = new Map<string, Registered>();
  private longestName = 1;

  constructor(private readonly box: RegistryOptions) {}

  register(owner: string, specs: CommandSpec[]): void {
    for (const spec of specs) {
      const name = spec.name.trim().split(/\s+/).join(' ');
      const had = this.byName.get(name);
      if (had) throw new Error(`command "${name}" is registered twice: by ${had.owner} and by ${owner}`);
      checkSpec(spec);
      this.byName.set(name, { owner, spec });
      this.longestName = Math.max(this.longestName, name.split(' ').length);
    }
  }

  /** The registered command names ('queue list', 'status'): what the audit matches argv against. */
  names(): ReadonlySet<string> {
    return new Set(this.byName.keys());
  }

  /** Every registered command, in registration order (for help screens and menus). */
  specs(): CommandSpec[] {
    return [...this.byName.values()].map((r) => r.spec);
  }

  /**
   * What argv would run, read as run() reads it: the command's name and its checked input;
   * null where run() would refuse it. The audit trail names a change by this, not by argv.
   */
  resolve(argv: string[], stdin?: string): { name: string; input: CommandInput } | null {
    try {
      const { spec, words } = this.find(argv);
      return { name: spec.name.trim().split(/\s+/).join(' '), input: parse(spec, argv.slice(words), stdin) };
    } catch {
      return null;
    }
  }

  async run(req: ControlRequest): Promise<ControlResponse> {
    try {
      const argv = checkRequest(req);
      const { spec, words } = this.find(argv);
      if (!spec.standby && !this.box.serving()) {
        return { ok: false, error: `this box is the HA ${this.box.role()} box; run that on the active box` };
      }
      const input = parse(spec, argv.slice(words), req.stdin);
      const out = await spec.run(input);
      return { ok: true, text: out.text, json: out.json, ...(out.bytes !== undefined ? { bytes: out.bytes } : {}), ...(out.exitCode ? { exitCode: out.exitCode } : {}) };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }

  /** The longest registered name that argv starts with. */
  private find(argv: string[]): { spec: CommandSpec; words: number } {
    const lead: string[] = [];
    for (const a of argv) {
      if (a.startsWith('-') || lead.length === this.longestName) break;
      lead.push(a);
    }
    for (let n = lead.length; n > 0; n--) {
      const r = this.byName.get(lead.slice(0, n).join(' '));
      if (r) return { spec: r.spec, words: n };
    }
    const shown = argv.join(' ');
    const what = shown === '' ? '(none)' : shown.length > 80 ? `${shown.slice(0, 80)}...` : shown;
    // A known group with a wrong verb: say what the group offers.
    const group = lead[0] ?? '';
    const verbs = [...this.byName.keys()].filter((k) => k.startsWith(group + ' ')).map((k) => k.slice(group.length + 1));
    throw new UsageError(`unknown command: ${what}${verbs.length ? ` (${group} takes: ${verbs.join(', ')})` : ''}`);
  }
}

/** A spec that could never be called as declared is a programming error, found at start. */
function checkSpec(spec: CommandSpec): void {
  let optional = false;
  for (const a of spec.args ?? []) {
    if (optional && a.required) throw new Error(`${spec.name}: required argument ${a.name} after an optional one`);
    optional ||= !a.required;
  }
  const seen = new Set<string>();
  for (const o of spec.options ?? []) {
    if (seen.has(o.name)) throw new Error(`${spec.name}: option --${o.name} declared twice`);
    seen.add(o.name);
  }
}

/** The request came as JSON from a socket: nothing in it is trusted. */
function checkRequest(req: ControlRequest): string[] {
  const argv: unknown = req.argv;
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) throw new UsageError('bad request: argv must be a list of strings');
  if (req.stdin !== undefined && typeof req.stdin !== 'string') throw new UsageError('bad request: stdin must be a string');
  if (argv.length > MAX_ARGV) throw new UsageError(`too many arguments (${argv.length}; at most ${MAX_ARGV})`);
  const chars = argv.reduce((n: number, a: string) => n + a.length, 0) + (req.stdin?.length ?? 0);
  if (chars > MAX_REQUEST_CHARS) throw new UsageError(`request too large (${chars} characters; at most ${MAX_REQUEST_CHARS})`);
  return argv as string[];
}

/** Positional arguments, then options in any order: --name VALUE, --name=VALUE, --flag; `--` ends the options. */
function parse(spec: CommandSpec, rest: string[], stdin: string | undefined): CommandInput {
  const wrong = (problem: string) => new UsageError(`${spec.name}: ${problem} (usage: ${usageOf(spec)})`);
  const declared = new Map((spec.options ?? []).map((o) => [o.name, o]));
  const positional: string[] = [];
  const options = new Map<string, OptionValue>();
  let onlyPositional = false;
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i]!;
    if (onlyPositional || !token.startsWith('--')) {
      positional.push(token);
      continue;
    }
    if (token === '--') {
      onlyPositional = true;
      continue;
    }
    const eq = token.indexOf('=');
    const name = token.slice(2, eq === -1 ? undefined : eq);
    const opt = declared.get(name);
    if (!opt) throw wrong(`unknown option --${name}`);
    if (options.has(name)) throw wrong(`option --${name} given twice`);
    if (opt.type === 'boolean') {
      if (eq !== -1) throw wrong(`option --${name} takes no value`);
      options.set(name, true);
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = token.slice(eq + 1);
    else if (i + 1 < rest.length && !rest[i + 1]!.startsWith('--')) value = rest[++i];
    if (value === undefined || value === '') throw wrong(`option --${name} needs a value`);
    options.set(name, opt.type === 'list' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value);
  }
  const args = new Map<string, string>();
  const declaredArgs = spec.args ?? [];
  for (const [i, a] of declaredArgs.entries()) {
    const v = positional[i];
    if (v === undefined || v === '') {
      if (a.required) throw wrong(`missing ${a.name}`);
      continue;
    }
    args.set(a.name, v);
  }
  if (positional.length > declaredArgs.length) {
    const extra = positional[declaredArgs.length]!;
    throw wrong(`unexpected argument "${extra.length > 40 ? extra.slice(0, 40) + '...' : extra}"`);
  }
  for (const o of spec.options ?? []) if (o.required && !options.has(o.name)) throw wrong(`missing --${o.name}`);
  if (spec.stdin === true && stdin === undefined) throw wrong('needs --password-stdin');
  if (!spec.stdin && stdin !== undefined) throw wrong('reads nothing from standard input (no --password-stdin)');
  return new CommandInput(args, options, stdin);
}
