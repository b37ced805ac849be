// The audit trail reads a request as the command layer does: every spelling of a change is
// recorded, with old and new value for a setting, and a secret never reaches it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandRegistry } from '../../src/commands/registry.js';
import { runAudited, type Origin } from '../../src/commands/audit.js';
import { configCommands } from '../../src/config/commands.js';
import { ConfigStore } from '../../src/config/config.js';
import type { EventInput } from '../../src/events/events.js';

const origin: Origin = { face: 'web', who: 'admin', from: '192.0.2.5' };

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-audit-'));
  const { store } = await ConfigStore.open(dir, {});
  const registry = new CommandRegistry({ serving: () => true, role: () => 'active' });
  registry.register('config', configCommands(() => store));
  const events: EventInput[] = [];
  const run = (argv: string[]) => runAudited((req) => registry.run(req), { argv }, origin, { commands: () => registry, config: () => store, emit: (e) => events.push(e) });
  return { dir, store, events, run };
}

test('every spelling of config set is recorded with its key, old and new value; a secret is masked in each', async () => {
  const { dir, events, run } = await setup();
  try {
    assert.equal((await run(['config', 'set', 'thresholds.perIpMessagesPerDay', '9'])).ok, true);
    assert.deepEqual([events[0]!.data?.key, events[0]!.data?.old, events[0]!.data?.new, events[0]!.ip], ['thresholds.perIpMessagesPerDay', 0, 9, '192.0.2.5']);
    for (const argv of [
      ['config', 'set', 'routing.smarthost.password', '"plain-secret-1"'],
      ['config set', 'routing.smarthost.password', '"joined-secret-2"'],
      ['config', 'set', '--', 'routing.smarthost.password', '"dashdash-secret-3"'],
      ['config', 'set', 'routing.smarthost.password', 'not-json-secret-4'],
      ['config', 'set', 'routing.smarthost', '{"host":"127.0.0.1","password":"nested-secret-5"}'],
    ]) {
      await run(argv);
    }
    assert.equal(events.length, 6, 'each attempt, refused or not, is in the trail');
    const trail = JSON.stringify(events);
    for (const secret of ['plain-secret-1', 'joined-secret-2', 'dashdash-secret-3', 'not-json-secret-4', 'nested-secret-5']) assert.doesNotMatch(trail, new RegExp(secret));
    assert.equal(events[2]!.data?.key, 'routing.smarthost.password', 'the joined spelling is read as config set');
    assert.equal(events[3]!.data?.key, 'routing.smarthost.password', '-- before the key is read as the registry reads it');
    assert.equal(events[4]!.data?.ok, false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('reads are not recorded; a request the registry cannot read is recorded without its values', async () => {
  const { dir, events, run } = await setup();
  try {
    await run(['config', 'get', 'thresholds']);
    await run(['config', 'get']);
    assert.equal(events.length, 0);
    await run(['config', 'set', 'routing.smarthost.password']);
    await run(['config', 'set', 'a', 'b', 'c-secret-6']);
    assert.equal(events.length, 2);
    assert.ok(events.every((e) => e.data?.ok === false));
    assert.doesNotMatch(JSON.stringify(events), /c-secret-6/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
