import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CheckGate } from '../../src/policy/checkGate.js';

function deferred() {
  let resolve!: (v: string) => void;
  const promise = new Promise<string>((r) => (resolve = r));
  return { promise, resolve };
}

test('at most maxConcurrent checks run; maxQueued wait; the next is refused without running', async () => {
  const gate = new CheckGate(() => ({ maxConcurrent: 1, maxQueued: 2 }));
  const started: number[] = [];
  const gates = [deferred(), deferred(), deferred(), deferred()];
  const runs = gates.map((g, i) => gate.run(() => (started.push(i), g.promise)));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, [0]);
  assert.deepEqual(gate.load, { running: 1, queued: 2 });
  assert.deepEqual(await runs[3], { busy: true });
  assert.deepEqual(started, [0], 'a refused check never ran');
  gates[0]!.resolve('a');
  assert.deepEqual(await runs[0], { busy: false, value: 'a' });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, [0, 1], 'the queue is served in order, one at a time');
  gates[1]!.resolve('b');
  gates[2]!.resolve('c');
  assert.deepEqual(await runs[1], { busy: false, value: 'b' });
  assert.deepEqual(await runs[2], { busy: false, value: 'c' });
  assert.deepEqual(gate.load, { running: 0, queued: 0 });
});

test('a check that throws frees its slot', async () => {
  const gate = new CheckGate(() => ({ maxConcurrent: 1, maxQueued: 0 }));
  await assert.rejects(gate.run(() => Promise.reject(new Error('scrypt failed'))), /scrypt failed/);
  assert.deepEqual(await gate.run(async () => 'ok'), { busy: false, value: 'ok' });
});

test('bad values of the AUTH check and lockout keys are refused, naming the key', async () => {
  const { validateConfig } = await import('../../src/config/config.js');
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ lockout: { ipv6Prefix: 8 } }, /auth\.lockout\.ipv6Prefix/],
    [{ lockout: { ipv6Prefix: 129 } }, /auth\.lockout\.ipv6Prefix/],
    [{ maxConcurrentChecks: 0 }, /auth\.maxConcurrentChecks/],
    [{ maxQueuedChecks: -1 }, /auth\.maxQueuedChecks/],
    [{ maxQueuedChecks: 'lots' }, /auth\.maxQueuedChecks/],
  ];
  for (const [auth, key] of cases) assert.throws(() => validateConfig({ domains: ['example.test'], auth }), key);
  const defaults = validateConfig({ domains: ['example.test'] }).auth;
  assert.deepEqual([defaults.lockout.ipv6Prefix, defaults.maxConcurrentChecks, defaults.maxQueuedChecks], [64, 1, 20]);
});
