import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandRegistry, MAX_ARGV, usageOf, type CommandInput, type CommandSpec } from '../../src/commands/registry.js';
import type { ControlRequest } from '../../src/commands/control.js';
import { StatusReport, statusCommands } from '../../src/commands/status.js';

/** A box whose serving state the test flips; every handler call is recorded. */
function box(serving = true) {
  const calls: { name: string; input: CommandInput }[] = [];
  const state = { serving };
  const spec = (s: Omit<CommandSpec, 'run' | 'summary'>): CommandSpec => ({
    summary: s.name,
    ...s,
    run: (input) => {
      calls.push({ name: s.name, input });
      return { text: `ran ${s.name}`, json: { ok: s.name } };
    },
  });
  const registry = new CommandRegistry({ serving: () => state.serving, role: () => 'standby' });
  registry.register('accounts', [
    spec({ name: 'user add', args: [{ name: 'ADDRESS', required: true }], stdin: true, standby: false }),
    spec({
      name: 'alias add',
      args: [{ name: 'ADDRESS', required: true }],
      options: [
        { name: 'to', type: 'list', required: true, value: 'A,B' },
        { name: 'senders', type: 'list', value: 'LOGIN,...' },
      ],
      standby: false,
    }),
  ]);
  registry.register('ha', [spec({ name: 'ha promote', options: [{ name: 'force', type: 'boolean' }], standby: true })]);
  registry.register('config', [spec({ name: 'config get', args: [{ name: 'KEY', required: true }, { name: 'PART', required: false }], options: [{ name: 'format', type: 'string' }], standby: false })]);
  const run = (argv: unknown, extra: Partial<ControlRequest> = {}) => registry.run({ argv, ...extra } as ControlRequest);
  return { registry, calls, state, run };
}

test('a valid request reaches its handler with arguments, options and the secret parsed', async () => {
  const { run, calls } = box();
  assert.deepEqual(await run(['alias', 'add', 'sales@example.test', '--to', 'bob@example.test, carol@example.test', '--senders=bob@example.test']), {
    ok: true,
    text: 'ran alias add',
    json: { ok: 'alias add' },
  });
  const input = calls[0]!.input;
  assert.equal(input.arg('ADDRESS'), 'sales@example.test');
  assert.deepEqual(input.list('to'), ['bob@example.test', 'carol@example.test']);
  assert.deepEqual(input.list('senders'), ['bob@example.test']);
  assert.equal((await run(['user', 'add', 'dora@example.test'], { stdin: 'secret-123\n' })).ok, true);
  assert.equal(calls[1]!.input.stdin, 'secret-123\n');
  assert.equal((await run(['ha', 'promote', '--force'])).ok, true);
  assert.equal(calls[2]!.input.flag('force'), true);
  // Options may come before the arguments; `--` makes what follows an argument.
  assert.equal((await run(['config', 'get', '--format', 'json', '--', '--odd'])).ok, true);
  assert.equal(calls[3]!.input.arg('KEY'), '--odd');
  assert.equal(calls[3]!.input.string('format'), 'json');
  assert.equal(calls[3]!.input.arg('PART'), '');
});

test('argv that does not fit the spec is refused in one line naming the problem and the usage; the handler never runs', async () => {
  const { run, calls } = box();
  const refusals: [unknown, string, Partial<ControlRequest>?][] = [
    [['user', 'add'], 'user add: missing ADDRESS (usage: user add ADDRESS --password-stdin)', { stdin: 'secret-123' }],
    [['user', 'add', 'dora@example.test'], 'user add: needs --password-stdin (usage: user add ADDRESS --password-stdin)'],
    [['user', 'add', 'dora@example.test', 'extra'], 'user add: unexpected argument "extra" (usage: user add ADDRESS --password-stdin)', { stdin: 'secret-123' }],
    [['alias', 'add', 'sales@example.test'], 'alias add: missing --to (usage: alias add ADDRESS --to A,B [--senders LOGIN,...])'],
    [['alias', 'add', 'sales@example.test', '--to'], 'alias add: option --to needs a value (usage: alias add ADDRESS --to A,B [--senders LOGIN,...])'],
    [['alias', 'add', 'sales@example.test', '--to', '--senders', 'x'], 'alias add: option --to needs a value (usage: alias add ADDRESS --to A,B [--senders LOGIN,...])'],
    [['alias', 'add', 'sales@example.test', '--to='], 'alias add: option --to needs a value (usage: alias add ADDRESS --to A,B [--senders LOGIN,...])'],
    [['alias', 'add', 'sales@example.test', '--to', 'a', '--to', 'b'], 'alias add: option --to given twice (usage: alias add ADDRESS --to A,B [--senders LOGIN,...])'],
    [['alias', 'add', 'sales@example.test', '--to', 'a', '--bcc', 'b'], 'alias add: unknown option --bcc (usage: alias add ADDRESS --to A,B [--senders LOGIN,...])'],
    [['alias', 'add', 'sales@example.test', '--to', 'a'], 'alias add: reads nothing from standard input (no --password-stdin) (usage: alias add ADDRESS --to A,B [--senders LOGIN,...])', { stdin: 'x' }],
    [['ha', 'promote', '--force=yes'], 'ha promote: option --force takes no value (usage: ha promote [--force])'],
    [['ha', 'promote', '--__proto__'], 'ha promote: unknown option --__proto__ (usage: ha promote [--force])'],
    [['config', 'get', 'a', 'b', 'c'], 'config get: unexpected argument "c" (usage: config get KEY [PART] [--format FORMAT])'],
  ];
  for (const [argv, error, extra] of refusals) assert.deepEqual(await run(argv, extra), { ok: false, error }, JSON.stringify(argv));
  assert.equal(calls.length, 0);
});

test('hostile requests: a huge argv, a huge argument, non-strings, are refused before any look-up', async () => {
  const { run, calls } = box();
  const many = ['config', 'get', ...Array.from({ length: 100_000 }, (_, i) => `k${i}`)];
  assert.deepEqual(await run(many), { ok: false, error: `too many arguments (100002; at most ${MAX_ARGV})` });
  assert.deepEqual(await run(['config', 'get', 'x'.repeat(2 << 20)]), { ok: false, error: 'request too large (2097161 characters; at most 1048576)' });
  assert.deepEqual(await run(['config', 'get', 42]), { ok: false, error: 'bad request: argv must be a list of strings' });
  assert.deepEqual(await run('config get x'), { ok: false, error: 'bad request: argv must be a list of strings' });
  assert.deepEqual(await run(['user', 'add', 'a@example.test'], { stdin: 7 as unknown as string }), { ok: false, error: 'bad request: stdin must be a string' });
  assert.equal(calls.length, 0);
});

test('unknown commands are named; a known group with a wrong verb says what the group offers', async () => {
  const { run } = box();
  assert.deepEqual(await run(['frobnicate']), { ok: false, error: 'unknown command: frobnicate' });
  assert.deepEqual(await run([]), { ok: false, error: 'unknown command: (none)' });
  assert.deepEqual(await run(['ha', 'explode']), { ok: false, error: 'unknown command: ha explode (ha takes: promote)' });
  assert.deepEqual(await run(['constructor']), { ok: false, error: 'unknown command: constructor' });
  const long = await run(['y'.repeat(500)]);
  assert.equal(long.ok ? '' : long.error, `unknown command: ${'y'.repeat(80)}...`);
});

test('on a standby box only commands marked standby run; the others are refused before validation', async () => {
  const { run, calls, state } = box(false);
  assert.deepEqual(await run(['user', 'add']), { ok: false, error: 'this box is the HA standby box; run that on the active box' });
  assert.deepEqual(await run(['config', 'get', 'hostname']), { ok: false, error: 'this box is the HA standby box; run that on the active box' });
  assert.equal((await run(['ha', 'promote', '--force'])).ok, true);
  assert.deepEqual(calls.map((c) => c.name), ['ha promote']);
  state.serving = true;
  assert.equal((await run(['config', 'get', 'hostname'])).ok, true);
});

test('a handler that throws gives { ok: false, error } with its message', async () => {
  const registry = new CommandRegistry({ serving: () => true, role: () => 'active' });
  registry.register('queue', [{ name: 'queue retry', summary: 'x', args: [{ name: 'ID', required: true }], standby: false, run: (i) => Promise.reject(new Error(`queue: no message ${i.arg('ID')}`)) }]);
  assert.deepEqual(await registry.run({ argv: ['queue', 'retry', 'NOPE'] }), { ok: false, error: 'queue: no message NOPE' });
});

test('a name registered twice is refused, naming both owners; so is a spec that could never be called', () => {
  const { registry } = box();
  const spec: CommandSpec = { name: 'alias add', summary: 'again', standby: false, run: () => ({ text: '' }) };
  assert.throws(() => registry.register('newsletter', [spec]), { message: 'command "alias add" is registered twice: by accounts and by newsletter' });
  assert.throws(
    () => registry.register('x', [{ ...spec, name: 'x y', args: [{ name: 'A', required: false }, { name: 'B', required: true }] }]),
    { message: 'x y: required argument B after an optional one' },
  );
  assert.equal(usageOf({ ...spec, options: [{ name: 'force', type: 'boolean', required: true }] }), 'alias add --force');
});

test('status concatenates the sections in the order they were added, text and JSON', async () => {
  const report = new StatusReport();
  let serving = true;
  report.add('daemon', ({ serving }) => ({ json: { version: '1' }, lines: [serving ? 'mlsd 1' : 'mail runs elsewhere'] }));
  report.add('smtp', ({ serving }) => (serving ? { json: { listeners: [] }, lines: ['listener mx: 127.0.0.1:25', 'listener smtps: 127.0.0.1:465'] } : null));
  report.add('ha', async () => ({ json: { ha: { role: 'active' } }, lines: ['HA: active'] }));
  const registry = new CommandRegistry({ serving: () => serving, role: () => 'standby' });
  registry.register('daemon', statusCommands(report, () => serving));
  assert.deepEqual(await registry.run({ argv: ['status'] }), {
    ok: true,
    text: 'mlsd 1\nlistener mx: 127.0.0.1:25\nlistener smtps: 127.0.0.1:465\nHA: active',
    json: { version: '1', listeners: [], ha: { role: 'active' } },
  });
  serving = false;
  assert.deepEqual(await registry.run({ argv: ['status'] }), { ok: true, text: 'mail runs elsewhere\nHA: active', json: { version: '1', ha: { role: 'active' } } });
});
