import type { CommandSpec } from '../commands/registry.js';
import type { StatusSection } from '../commands/status.js';
import type { AccountStore } from './accounts.js';
import { displayAddress } from '../policy/address.js';

/** The stored address, and its U-label spelling when that differs (an IDN domain). */
const shown = (address: string) => (displayAddress(address) === address ? address : `${address} (${displayAddress(address)})`);

export interface AccountCommandDeps {
  accounts: AccountStore;
  /** The local domains: a user or alias may only be made in one of them. */
  domains(): readonly string[];
  /** Lifts a suspension and releases the account's held mail; returns how many messages. */
  unlock(address: string): Promise<number>;
  /** Suspends the account from sending and holds its queued mail; false when it already was. */
  suspend(address: string, reason: string): Promise<boolean>;
}

const ADDRESS = [{ name: 'ADDRESS', required: true }];

/** A password arrives on stdin with the line end the terminal or the pipe added. */
const secret = (stdin: string | undefined) => (stdin ?? '').replace(/\r?\n$/, '');

/** `user ...` and `alias ...`: the accounts on the config flash. */
export function accountCommands(deps: () => AccountCommandDeps): CommandSpec[] {
  return [
    {
      name: 'user add',
      summary: 'add a mail user; the password is read from standard input',
      args: ADDRESS,
      stdin: true,
      standby: false,
      run: async (input) => {
        const d = deps();
        const u = await d.accounts.addUser(input.arg('ADDRESS'), secret(input.stdin), d.domains());
        return { text: `added ${shown(u.address)}`, json: { address: u.address, created: u.created } };
      },
    },
    {
      name: 'user passwd',
      summary: "change a user's password, read from standard input",
      args: ADDRESS,
      stdin: true,
      standby: false,
      run: async (input) => {
        const address = input.arg('ADDRESS');
        await deps().accounts.setPassword(address, secret(input.stdin));
        return { text: `password changed for ${address}` };
      },
    },
    {
      name: 'user del',
      summary: 'delete a user (the mailbox stays on the data disk)',
      args: ADDRESS,
      standby: false,
      run: async (input) => {
        const address = input.arg('ADDRESS');
        await deps().accounts.deleteUser(address);
        return { text: `deleted ${address} (its mailbox stays on the data disk)` };
      },
    },
    {
      name: 'user list',
      summary: 'list the users, and which are suspended from sending',
      standby: false,
      run: () => {
        const { accounts } = deps();
        const users = accounts.listUsers().map((u) => ({ address: u.address, created: u.created, suspended: accounts.suspension(u.address) ?? null }));
        return {
          text: users.map((u) => `${u.address}${u.suspended ? ` (suspended from sending since ${u.suspended.since}: ${u.suspended.reason})` : ''}`).join('\n'),
          json: users,
        };
      },
    },
    {
      name: 'user suspend',
      summary: 'stop a user sending (a stolen password): open sessions too; its queued mail is held',
      args: ADDRESS,
      options: [{ name: 'reason', type: 'string', value: 'TEXT' }],
      standby: false,
      run: async (input) => {
        const address = input.arg('ADDRESS');
        const done = await deps().suspend(address, input.string('reason') ?? 'suspended by the administrator');
        return { text: done ? `${address} suspended from sending` : `${address} was already suspended`, json: { address, suspended: true, changed: done } };
      },
    },
    {
      name: 'user unlock',
      summary: 'let a suspended user send again and release its held mail',
      args: ADDRESS,
      standby: false,
      run: async (input) => {
        const address = input.arg('ADDRESS');
        const released = await deps().unlock(address);
        return { text: `${address} may send again; ${released} held message(s) released`, json: { address, released } };
      },
    },
    {
      name: 'alias add',
      summary: 'add an alias delivering to its members; --senders may send as it',
      args: ADDRESS,
      options: [
        { name: 'to', type: 'list', required: true, value: 'A,B' },
        { name: 'senders', type: 'list', value: 'LOGIN,...' },
      ],
      standby: false,
      run: async (input) => {
        const d = deps();
        const a = await d.accounts.addAlias(input.arg('ADDRESS'), input.list('to'), input.list('senders'), d.domains());
        return { text: `alias ${shown(a.address)} -> ${a.members.map(shown).join(', ')}`, json: a };
      },
    },
    {
      name: 'alias del',
      summary: 'delete an alias',
      args: ADDRESS,
      standby: false,
      run: async (input) => {
        const address = input.arg('ADDRESS');
        await deps().accounts.deleteAlias(address);
        return { text: `deleted alias ${address}` };
      },
    },
    {
      name: 'alias list',
      summary: 'list the aliases, their members and senders',
      standby: false,
      run: () => {
        const aliases = deps().accounts.listAliases();
        return { text: aliases.map((a) => `${a.address} -> ${a.members.join(', ')}${a.senders.length ? ` (senders: ${a.senders.join(', ')})` : ''}`).join('\n'), json: aliases };
      },
    },
  ];
}

export function accountStatus(deps: () => Pick<AccountCommandDeps, 'accounts'>): StatusSection {
  return ({ serving }) => {
    if (!serving) return null;
    const { accounts } = deps();
    const s = { users: accounts.listUsers().length, aliases: accounts.listAliases().length };
    return { json: s, lines: [`accounts: ${s.users} users, ${s.aliases} aliases`] };
  };
}
