#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { request, socketPath, type ControlRequest } from './commands/control.js';
import { loadBoard } from './hw/board.js';

const USAGE = `usage:
  mlsd start [--config-dir DIR] [--data-dir DIR] [--board NAME]
  mlsd status [--json]
  mlsd user add ADDRESS --password-stdin | user passwd ADDRESS --password-stdin | user del ADDRESS | user list [--json] | user unlock ADDRESS
  mlsd alias add ADDRESS --to A,B [--senders LOGIN,...] | alias del ADDRESS | alias list [--json]
  mlsd config get KEY | config set KEY JSON-VALUE
  mlsd events list [--json]
  mlsd queue list [--json] | queue flush | queue retry ID | queue delete ID
  mlsd dkim show DOMAIN
  mlsd quarantine list [--json] | quarantine show ID | quarantine release ID | quarantine delete ID
  mlsd ha status [--json] | ha switchover | ha promote --force
every command but start takes --config-dir DIR (default: the board's)`;

function fail(msg: string): never {
  process.stderr.write(`mlsd: ${msg}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'config-dir': { type: 'string' },
        'data-dir': { type: 'string' },
        board: { type: 'string' },
        json: { type: 'boolean' },
        'password-stdin': { type: 'boolean' },
        to: { type: 'string' },
        senders: { type: 'string' },
        force: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    fail((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  if (positionals[0] === 'start') {
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
  const req: ControlRequest = { argv: [...positionals], json: values.json };
  if (values.to) req.argv.push('--to', values.to);
  if (values.senders) req.argv.push('--senders', values.senders);
  if (values.force) req.argv.push('--force');
  if (values['password-stdin']) req.stdin = readFileSync(0, 'utf8');
  const res = await request(socketPath(configDir), req).catch((err: Error) => fail(err.message));
  if (!res.ok) fail(res.error);
  process.stdout.write((values.json ? JSON.stringify(res.json ?? null, null, 2) : res.text) + '\n');
}

process.on('unhandledRejection', (err) => fail(`internal error: ${(err as Error)?.stack ?? String(err)}`));
void main().catch((err: Error) => fail(err.message));
