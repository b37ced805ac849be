// network set on a box that holds the HA service address: networkd flushes addresses it does not
// manage when it reconfigures the link, so the address is claimed again after the new settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandInput } from '../../src/commands/registry.js';
import { systemCommands } from '../../src/system/commands.js';
import type { LanSettings } from '../../src/hw/network.js';

function fixture(afterApply?: () => Promise<void>) {
  const steps: string[] = [];
  let current: LanSettings = { interface: 'eth0', address: '192.168.1.10', netmask: '255.255.255.0', gateway: '192.168.1.1' };
  const specs = systemCommands({
    network: {
      read: async () => current,
      apply: async (s) => {
        steps.push(`apply ${s.address}`);
        current = s;
      },
    },
    power: { reboot: async () => undefined, shutdown: async () => undefined },
    record: async (ev) => void steps.push(`event ${ev.kind}`),
    allowLoopback: false,
    afterApply: afterApply && (async () => {
      steps.push('claim');
      await afterApply();
    }),
  });
  const set = specs.find((s) => s.name === 'network set')!;
  const run = (address: string) => set.run(new CommandInput(new Map(), new Map([['address', address], ['netmask', '255.255.255.0'], ['gateway', '192.168.1.1']])));
  return { steps, run, current: () => current };
}

test('network set claims the service address again after the new settings are applied and recorded', async () => {
  const f = fixture(async () => undefined);
  await f.run('192.168.1.20');
  assert.deepEqual(f.steps, ['apply 192.168.1.20', 'event network.changed', 'claim']);
});

test('a claim that fails is reported by network set, naming what happened; the change itself stays recorded', async () => {
  const f = fixture(async () => {
    throw new Error('ip addr add: Operation not permitted');
  });
  await assert.rejects(Promise.resolve(f.run('192.168.1.30')), /LAN settings were applied, but the HA service address could not be claimed again: ip addr add: Operation not permitted/);
  assert.deepEqual(f.steps, ['apply 192.168.1.30', 'event network.changed', 'claim']);
  assert.equal(f.current().address, '192.168.1.30');
});

test('a refused setting applies nothing and claims nothing', async () => {
  const f = fixture(async () => undefined);
  await assert.rejects(async () => f.run('192.168.1.255'), /network set: .*broadcast/);
  assert.deepEqual(f.steps, []);
});
