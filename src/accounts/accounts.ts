import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import { hashPassword, verifyPassword } from './password.js';
import { addressProblem, normalizeAddress, splitAddress } from '../policy/address.js';
import type { DataDecl } from '../store/data.js';

/** Users log in on either box after a takeover; accounts live on the config flash. */
export const ACCOUNTS_DATA: DataDecl = {
  owner: 'accounts',
  configFiles: [{ pattern: /^accounts\.json$/, describe: 'users, aliases, password hashes, suspensions', replicate: true, mode: 0o600 }],
};

export interface User {
  address: string;
  hash: string;
  created: string;
}

/** One address that fans out to several; `senders` are logins allowed to send as it. */
export interface Alias {
  address: string;
  members: string[];
  senders: string[];
}

export interface Suspension {
  since: string;
  reason: string;
  /**
   * What tripped it, kept with the suspension so the administrator sees it where the
   * account is unlocked (the event may have rotated out): the threshold's name, the count
   * against its limit, client IPs and sample subjects; `by: administrator` for a manual one.
   */
  evidence?: Record<string, string | number>;
}

interface AccountsDoc {
  users: Record<string, User>;
  aliases: Record<string, Alias>;
  /** Accounts suspended from sending (a compromised password); they still receive. */
  suspended?: Record<string, Suspension>;
}

export class AccountError extends Error {
  readonly kind = 'accounts' as const;
}

/** Accounts and password hashes live on the config flash: they survive a data-disk swap. */
export class AccountStore {
  private constructor(
    private readonly path: string,
    private doc: AccountsDoc,
    /** Told after every save, and awaited (an HA standby gets the file before a command returns). */
    private readonly onSaved: () => Promise<void>,
  ) {}

  static async open(configDir: string, onSaved: () => Promise<void> = () => Promise.resolve()): Promise<AccountStore> {
    const path = join(configDir, 'accounts.json');
    let doc: AccountsDoc = { users: {}, aliases: {} };
    try {
      doc = JSON.parse(await readFile(path, 'utf8')) as AccountsDoc;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return new AccountStore(path, doc, onSaved);
  }

  private async save(next: AccountsDoc): Promise<void> {
    await writeFileAtomic(this.path, JSON.stringify(next, null, 2) + '\n');
    this.doc = next;
    await this.onSaved().catch(() => undefined);
  }

  private checkAddress(address: string, domains: readonly string[]): string {
    // Stored in one form (A-label domain): the U-label and A-label spellings are one account.
    const problem = addressProblem(address);
    if (problem) throw new AccountError(problem);
    const norm = normalizeAddress(address);
    const parts = splitAddress(norm!)!;
    if (!domains.includes(parts.domain)) throw new AccountError(`${address}: ${parts.domain} is not a local domain`);
    return norm!;
  }

  async addUser(address: string, password: string, domains: readonly string[]): Promise<User> {
    const addr = this.checkAddress(address, domains);
    if (this.doc.users[addr] || this.doc.aliases[addr]) throw new AccountError(`${addr}: already exists`);
    if (password.length < 8) throw new AccountError('password: at least 8 characters');
    const user: User = { address: addr, hash: await hashPassword(password), created: new Date().toISOString() };
    await this.save({ ...this.doc, users: { ...this.doc.users, [addr]: user } });
    return user;
  }

  async setPassword(address: string, password: string): Promise<void> {
    const addr = normalizeAddress(address) ?? address;
    const u = this.doc.users[addr];
    if (!u) throw new AccountError(`${address}: no such user`);
    if (password.length < 8) throw new AccountError('password: at least 8 characters');
    await this.save({ ...this.doc, users: { ...this.doc.users, [addr]: { ...u, hash: await hashPassword(password) } } });
  }

  async deleteUser(address: string): Promise<void> {
    const addr = normalizeAddress(address) ?? address;
    if (!this.doc.users[addr]) throw new AccountError(`${address}: no such user`);
    const users = { ...this.doc.users };
    delete users[addr];
    await this.save({ ...this.doc, users });
  }

  async addAlias(address: string, members: string[], senders: string[], domains: readonly string[]): Promise<Alias> {
    const addr = this.checkAddress(address, domains);
    if (this.doc.users[addr]) throw new AccountError(`${addr}: is a user`);
    if (members.length === 0) throw new AccountError(`${addr}: an alias needs at least one member`);
    const norm = (list: string[]) =>
      list.map((m) => {
        const problem = addressProblem(m);
        if (problem) throw new AccountError(problem);
        return normalizeAddress(m)!;
      });
    const alias: Alias = { address: addr, members: norm(members), senders: norm(senders) };
    await this.save({ ...this.doc, aliases: { ...this.doc.aliases, [addr]: alias } });
    return alias;
  }

  async deleteAlias(address: string): Promise<void> {
    const addr = normalizeAddress(address) ?? address;
    if (!this.doc.aliases[addr]) throw new AccountError(`${address}: no such alias`);
    const aliases = { ...this.doc.aliases };
    delete aliases[addr];
    await this.save({ ...this.doc, aliases });
  }

  async suspend(address: string, reason: string, evidence?: Record<string, string | number>): Promise<boolean> {
    if (!this.doc.users[address] || this.doc.suspended?.[address]) return false;
    const record: Suspension = { since: new Date().toISOString(), reason, ...(evidence ? { evidence } : {}) };
    await this.save({ ...this.doc, suspended: { ...this.doc.suspended, [address]: record } });
    return true;
  }

  async unlock(address: string): Promise<void> {
    const addr = normalizeAddress(address) ?? address;
    if (!this.doc.users[addr]) throw new AccountError(`${address}: no such user`);
    if (!this.doc.suspended?.[addr]) throw new AccountError(`${addr}: is not suspended`);
    const suspended = { ...this.doc.suspended };
    delete suspended[addr];
    await this.save({ ...this.doc, suspended });
  }

  suspension(address: string): Suspension | undefined {
    return this.doc.suspended?.[address];
  }

  listUsers(): User[] {
    return Object.values(this.doc.users).sort((a, b) => a.address.localeCompare(b.address));
  }

  listAliases(): Alias[] {
    return Object.values(this.doc.aliases).sort((a, b) => a.address.localeCompare(b.address));
  }

  /**
   * A fingerprint of the user's password hash (its salt is new at every change, so a
   * password set again to the same value, or an account deleted and added again, differs).
   */
  credentialStamp(address: string): string | undefined {
    const u = this.doc.users[address];
    return u ? createHash('sha256').update(u.hash).digest('base64url').slice(0, 22) : undefined;
  }

  user(address: string): User | undefined {
    return this.doc.users[address];
  }

  alias(address: string): Alias | undefined {
    return this.doc.aliases[address];
  }

  /** True when mail to this normalized address has a local owner. */
  exists(address: string): boolean {
    return address in this.doc.users || address in this.doc.aliases;
  }

  /** Addresses a login may use as sender: its own, and aliases that list it as a sender. */
  owns(login: string, address: string): boolean {
    if (login === address) return true;
    const a = this.doc.aliases[address];
    return !!a && a.senders.includes(login);
  }

  async authenticate(login: string, password: string): Promise<string | null> {
    const addr = normalizeAddress(login);
    const u = addr ? this.doc.users[addr] : undefined;
    if (!u) {
      // Spend the same time as for a real user, so timing does not reveal which exist.
      await verifyPassword(password, DUMMY_HASH);
      return null;
    }
    return (await verifyPassword(password, u.hash)) ? u.address : null;
  }

  /** Expands a local recipient into final local mailboxes and remote addresses (aliases expanded recursively, loops cut). */
  expand(address: string, seen = new Set<string>()): string[] {
    if (seen.has(address)) return [];
    seen.add(address);
    const a = this.doc.aliases[address];
    if (!a) return [address];
    return a.members.flatMap((m) => (this.doc.aliases[m] ? this.expand(m, seen) : [m]));
  }
}

// A valid hash of a random password, verified when the login is unknown.
const DUMMY_HASH =
  'scrypt$32768$8$1$c2FsdHNhbHRzYWx0c2FsdA==$3m6dY5vM0tq2s9X8W1oZ0mJc1h2Jm3qK1l0y5l9qQ1E=';
