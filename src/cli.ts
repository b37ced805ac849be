#!/usr/bin/env node
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { request, socketPath, type ControlRequest } from './commands/control.js';
import { loadBoard } from './hw/board.js';

const USAGE = `usage:
  mlsd start [--config-dir DIR] [--data-dir DIR] [--board NAME]
  mlsd status [--json]
  mlsd user add ADDRESS --password-stdin | user passwd ADDRESS --password-stdin | user del ADDRESS | user list [--json] | user unlock ADDRESS
  mlsd alias add ADDRESS --to A,B [--senders LOGIN,...] | alias del ADDRESS | alias list [--json]
  mlsd config get [KEY] | config set KEY JSON-VALUE
  mlsd events list [--limit N] [--json] | mail stats [--json]
  mlsd queue list [--json] | queue flush | queue retry ID | queue delete ID
  mlsd dkim show DOMAIN
  mlsd quarantine list [--json] | quarantine show ID | quarantine release ID | quarantine delete ID
  mlsd ha status [--json] | ha switchover | ha promote --force
  mlsd admin passwd --password-stdin | admin reset [--json]
  mlsd network show [--json] | network set --address A.B.C.D --netmask A.B.C.D --gateway A.B.C.D
  mlsd system reboot --confirm | system shutdown --confirm
  mlsd panel press up|down|enter|esc | panel screen [--json] | panel leds [--json]
  mlsd alarm list [--json] | alarm ack [ID]
  mlsd archive search QUERY [--from A] [--to A] [--since DATE] [--until DATE] [--direction in|out|internal] [--page N] [--json]
  mlsd archive show ID | archive export ID > x.eml | archive verify [--json] | archive reindex
  mlsd archive hold add QUERY | archive hold remove QUERY|ID | archive hold list [--json] | archive purge [--dry-run] [--json]
  mlsd backup target add NAME --type smb|sftp|dir --url URL [--user U] [--password-stdin] | backup target del NAME
  mlsd backup target list [--json] | backup target test NAME | backup key import --password-stdin
  mlsd backup run [--target NAME] | backup status [--json] | backup generations [--target NAME] [--json]
  mlsd backup verify [--full] [--target NAME] [--json]
  mlsd backup browse USER [--generation G] [--json] | backup fetch USER MESSAGE [--generation G]
  mlsd restore status [--json] | restore start --from TARGET [--generation G]
  mlsd tls show [--json] | tls install --password-stdin < chain-and-key.pem
every command but start takes --config-dir DIR (default: the board's)`;

function fail(msg: string): never {
  process.stderr.write(`mlsd: ${msg}\n`);
  process.exit(1);
}

/** The options the CLI itself uses; anything else goes to the daemon as typed. */
const OWN_VALUES = new Set(['config-dir', 'data-dir', 'board']);
const OWN_FLAGS = new Set(['json', 'password-stdin', 'help']);

interface Parsed {
  values: { 'config-dir'?: string; 'data-dir'?: string; board?: string; json?: boolean; 'password-stdin'?: boolean; help?: boolean };
  /** The command and its own arguments and options, in order, for the daemon to check against the command's spec. */
  command: string[];
}

function parse(argv: string[]): Parsed {
  const values: Record<string, string | boolean> = {};
  const command: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '--') {
      command.push(...argv.slice(i));
      break;
    }
    if (token === '-h') {
      values.help = true;
      continue;
    }
    if (!token.startsWith('--')) {
      command.push(token);
      continue;
    }
    const eq = token.indexOf('=');
    const name = token.slice(2, eq === -1 ? undefined : eq);
    if (OWN_FLAGS.has(name)) {
      if (eq !== -1) fail(`option --${name} takes no value`);
      values[name] = true;
    } else if (OWN_VALUES.has(name)) {
      const value = eq !== -1 ? token.slice(eq + 1) : argv[i + 1]?.startsWith('--') ? undefined : argv[++i];
      if (!value) fail(`option --${name} needs a value`);
      values[name] = value;
    } else command.push(token);
  }
  return { values: values as Parsed['values'], command };
}

async function main(): Promise<void> {
  const { values, command } = parse(process.argv.slice(2));
  const positionals = command.filter((t) => !t.startsWith('-'));
  if (values.help || positionals.length === 0) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  if (command[0] === 'start') {
    if (command.length > 1) fail(`start: unexpected argument ${command[1]}`);
    const { startDaemon } = await import('./main.js');
    let daemon;
    try {
      daemon = await startDaemon({ configDir: values['config-dir'], dataDir: values['data-dir'], board: values.board });
    } catch (err) {
      fail((err as Error).message);
    }
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`mlsd: ${sig}, stopping\n`);
      daemon.stop().then(
        () => process.exit(0),
        (err: Error) => fail(`stop failed: ${err.message}`),
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    return;
  }

  const configDir = resolve(values['config-dir'] ?? (await loadBoard(values.board ?? 'sim')).paths.configDir);
  const req: ControlRequest = { argv: command, json: values.json };
  if (values['password-stdin']) req.stdin = readFileSync(0, 'utf8');
  // The archive's verify, purge and search read through the whole archive, and a backup or its
  // verify moves every file: minutes to hours on a big box.
  const timeoutMs = ['archive', 'backup', 'restore'].includes(command[0]!) ? 6 * 3_600_000 : 30_000;
  const res = await request(socketPath(configDir), req, timeoutMs).catch((err: Error) => fail(err.message));
  if (!res.ok) fail(res.error);
  if (res.bytes !== undefined && !values.json) process.stdout.write(Buffer.from(res.bytes, 'base64'));
  else process.stdout.write((values.json ? JSON.stringify(res.json ?? null, null, 2) : res.text) + '\n');
  if (res.exitCode) process.exitCode = res.exitCode;
}

process.on('unhandledRejection', (err) => fail(`internal error: ${(err as Error)?.stack ?? String(err)}`));
void main().catch((err: Error) => fail(err.message));
