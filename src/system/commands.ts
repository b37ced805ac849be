import type { CommandSpec } from '../commands/registry.js';
import type { EventInput } from '../events/events.js';
import { checkLanInput, type BoardNetwork, type LanSettings } from '../hw/network.js';
import type { Power, PowerAction } from '../hw/power.js';

export interface SystemCommandDeps {
  network: BoardNetwork;
  power: Power;
  /** Records an event and resolves once it is written (a reboot must not outrun its event). */
  record(ev: EventInput): Promise<void>;
  /** The sim board's LAN is loopback; a real board's never is. */
  allowLoopback: boolean;
  /**
   * Run after new LAN settings are applied. On a Linux box networkd flushes the addresses it
   * does not manage when it reconfigures the link, the HA service address among them: the
   * active box claims it again here, or it would stop answering on it unnoticed.
   */
  afterApply?(): Promise<void>;
}

const show = (s: LanSettings) => `${s.address || '(none)'}/${s.netmask || '(none)'} via ${s.gateway || '(none)'} on ${s.interface}`;

/**
 * The box's own commands, for the front panel and the serial console as much as the CLI:
 * the LAN settings and power. All run on an HA standby too: each box has its own address
 * and its own power switch.
 */
export function systemCommands(deps: SystemCommandDeps): CommandSpec[] {
  // One change at a time, so the old -> new of each event is what really happened.
  let changing: Promise<unknown> = Promise.resolve();
  const power = (action: PowerAction): CommandSpec => ({
    name: `system ${action}`,
    summary: `${action === 'reboot' ? 'restart' : 'switch off'} this box (needs --confirm)`,
    options: [{ name: 'confirm', type: 'boolean' }],
    standby: true,
    run: async (input) => {
      if (!input.flag('confirm')) throw new Error(`system ${action}: this ${action === 'reboot' ? 'restarts' : 'switches off'} the box; say --confirm to do it`);
      await deps.record({ kind: `system.${action}`, severity: 'warning', text: `${action === 'reboot' ? 'reboot' : 'shutdown'} of this box requested` });
      await deps.power[action]();
      return { text: `${action} requested`, json: { requested: action } };
    },
  });
  return [
    {
      name: 'network show',
      summary: "this box's LAN settings: interface, address, netmask, gateway",
      standby: true,
      run: async () => {
        const s = await deps.network.read();
        const text = [`interface: ${s.interface}`, `address:   ${s.address || '(none)'}`, `netmask:   ${s.netmask || '(none)'}`, `gateway:   ${s.gateway || '(none)'}`].join('\n');
        return { text, json: { interface: s.interface, address: s.address, netmask: s.netmask, gateway: s.gateway } };
      },
    },
    {
      name: 'network set',
      summary: "set this box's LAN address, netmask and gateway (not copied to an HA peer)",
      options: [
        { name: 'address', type: 'string', required: true, value: 'A.B.C.D' },
        { name: 'netmask', type: 'string', required: true, value: 'A.B.C.D' },
        { name: 'gateway', type: 'string', required: true, value: 'A.B.C.D' },
      ],
      standby: true,
      run: (input) => {
        const checked = prefixed("network set", () => checkLanInput({ address: input.string('address')!, netmask: input.string('netmask')!, gateway: input.string('gateway')! }, { allowLoopback: deps.allowLoopback }));
        const done = changing.then(async () => {
          const old = await deps.network.read();
          const applied: LanSettings = { interface: old.interface, ...checked };
          await deps.network.apply(applied);
          await deps.record({ kind: 'network.changed', severity: 'info', text: `LAN settings changed: ${show(old)} -> ${show(applied)}`, data: { old, new: applied } });
          await deps.afterApply?.().catch((err: Error) => {
            throw new Error(`network set: the LAN settings were applied, but the HA service address could not be claimed again: ${err.message}`);
          });
          return { text: `LAN settings applied: ${show(applied)}`, json: { applied } };
        });
        changing = done.catch(() => undefined);
        return done;
      },
    },
    power('reboot'),
    power('shutdown'),
  ];
}

/** A refusal of the checks, named like the registry's own usage errors. */
function prefixed<T>(command: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw new Error(`${command}: ${(err as Error).message}`);
  }
}
