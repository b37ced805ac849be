import type { ConfigStore } from '../config/config.js';
import { getKey } from '../config/config.js';
import type { AccountStore } from '../accounts/accounts.js';
import type { QueueRunner, QueueStats } from '../delivery/runner.js';
import type { QuarantineRecord } from '../scan/quarantine.js';
import type { ControlRequest, ControlResponse } from './control.js';
import type { EventLog } from '../events/events.js';
import type { HaStatusInfo } from '../ha/node.js';

export interface StatusInfo {
  version: string;
  pid: number;
  uptimeSeconds: number;
  board: string;
  hostname: string;
  listeners: { name: string; host: string; port: number }[];
  users: number;
  aliases: number;
  spoolPending: number;
  queue: QueueStats;
  routing: { mode: string; effective: 'mx' | 'smarthost'; smarthost: string | null };
  dnsbl: { ip: string; label: string; listed: boolean; zones: { zone: string; state: string; answer?: string; reason?: string; error?: string }[] }[];
  dataDiskFreeBytes: number;
  memory: { rssBytes: number; heapUsedBytes: number; externalBytes: number };
  /** `mlsd ha status --json`, when the box is one of an HA pair. */
  ha?: HaStatusInfo;
}

export interface CommandContext {
  config: ConfigStore;
  accounts: AccountStore;
  queue: Pick<QueueRunner, 'list' | 'flush' | 'retry' | 'remove'>;
  events: EventLog;
  quarantine: {
    list(): Promise<QuarantineRecord[]>;
    show(id: string): Promise<{ record: QuarantineRecord; content: Buffer }>;
    release(id: string): Promise<QuarantineRecord>;
    delete(id: string): Promise<QuarantineRecord>;
  };
  /** The DNS TXT record that publishes a domain's DKIM key. */
  dkimRecord(domain: string): { name: string; value: string; zoneLine: string };
  /** Lifts a suspension and releases the account's held mail; returns how many messages. */
  unlock(address: string): Promise<number>;
  status(): Promise<StatusInfo>;
}

class UsageError extends Error {}

const ok = (text: string, json?: unknown): ControlResponse => ({ ok: true, text, json });

function need(argv: string[], i: number, what: string): string {
  const v = argv[i];
  if (v === undefined || v === '') throw new UsageError(`missing ${what}`);
  return v;
}

/** Options of the form --name value or --name; returns positional args and options. */
function options(argv: string[]): { pos: string[]; opt: Record<string, string | true> } {
  const pos: string[] = [];
  const opt: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('--')) {
        opt[a.slice(2)] = next;
        i++;
      } else opt[a.slice(2)] = true;
    } else pos.push(a);
  }
  return { pos, opt };
}

/** Secrets (the smarthost password) are never printed back. */
function redact(v: unknown, key = ''): unknown {
  if (/password$/i.test(key)) return typeof v === 'string' && v !== '' ? '********' : v;
  if (Array.isArray(v)) return v.map((x) => redact(x));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redact(x, k)]));
  return v;
}

const list = (v: string | true | undefined) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : []);

/**
 * The command layer: one set of commands for the CLI, the serial console and the web
 * admin API. Each takes argv (after the program name) and returns text plus JSON.
 */
export async function runCommand(ctx: CommandContext, req: ControlRequest): Promise<ControlResponse> {
  const [group, verb, ...rest] = req.argv;
  try {
    switch (`${group ?? ''} ${verb ?? ''}`.trim()) {
      case 'status': {
        const s = await ctx.status();
        const lines = [
          `mlsd ${s.version} on ${s.board} (${s.hostname}), pid ${s.pid}, up ${s.uptimeSeconds}s`,
          ...s.listeners.map((l) => `listener ${l.name}: ${l.host}:${l.port}`),
          `accounts: ${s.users} users, ${s.aliases} aliases`,
          `spool: ${s.spoolPending} being routed; outbound queue: ${s.queue.messages} messages (${s.queue.recipients.queued} recipients queued, ${s.queue.recipients.deferred} deferred, ${s.queue.held} messages held), ${s.queue.activeConnections} connections`,
          `routing: ${s.routing.effective}${s.routing.effective !== s.routing.mode ? ` (rerouted from ${s.routing.mode}: our address is blacklisted)` : ''}${s.routing.smarthost ? `, smarthost ${s.routing.smarthost}: ${s.queue.smarthost.sentLastHour} sent in the last hour, ${s.queue.smarthost.sentToday} today${s.queue.smarthost.pausedUntil ? `, paused until ${s.queue.smarthost.pausedUntil}` : ''}` : ''}`,
          ...(s.dnsbl.length
            ? s.dnsbl.map((d) => `blacklists: ${d.ip} (${d.label}) ${d.listed ? 'LISTED on ' + d.zones.filter((z) => z.state === 'listed' || (z.state === 'error' && z.answer)).map((z) => `${z.zone}${z.reason ? ` (${z.reason})` : ''}`).join(', ') : d.zones.length ? 'not listed' : 'not checked yet'}${d.zones.some((z) => z.state === 'error') ? `; ${d.zones.filter((z) => z.state === 'error').length} list(s) did not answer` : ''}`)
            : ['blacklists: no address to watch (dnsbl.checkIps is empty)']),
          ...(s.ha
            ? [`HA: ${s.ha.role}; peer ${s.ha.peer.node ?? '?'} ${s.ha.peer.role ?? 'unknown'}; replication ${s.ha.replication}${s.ha.oneDiskOnly ? `; ${s.ha.oneDiskOnly} message(s) on this disk only` : ''}${s.ha.linkFault !== 'none' ? `; LINK FAULT (${s.ha.linkFault})` : ''}`]
            : []),
          `data disk free: ${Math.round(s.dataDiskFreeBytes / 1048576)} MiB`,
          `memory: ${Math.round(s.memory.rssBytes / 1048576)} MiB resident, ${Math.round(s.memory.heapUsedBytes / 1048576)} MiB JS heap`,
        ];
        return ok(lines.join('\n'), s);
      }
      case 'user add': {
        const address = need(rest, 0, 'ADDRESS');
        if (req.stdin === undefined) throw new UsageError('user add needs --password-stdin');
        const u = await ctx.accounts.addUser(address, req.stdin.replace(/\r?\n$/, ''), ctx.config.current.domains);
        return ok(`added ${u.address}`, { address: u.address, created: u.created });
      }
      case 'user passwd': {
        const address = need(rest, 0, 'ADDRESS');
        if (req.stdin === undefined) throw new UsageError('user passwd needs --password-stdin');
        await ctx.accounts.setPassword(address, req.stdin.replace(/\r?\n$/, ''));
        return ok(`password changed for ${address}`);
      }
      case 'user del': {
        const address = need(rest, 0, 'ADDRESS');
        await ctx.accounts.deleteUser(address);
        return ok(`deleted ${address} (its mailbox stays on the data disk)`);
      }
      case 'user list': {
        const users = ctx.accounts.listUsers().map((u) => ({ address: u.address, created: u.created, suspended: ctx.accounts.suspension(u.address) ?? null }));
        return ok(users.map((u) => `${u.address}${u.suspended ? ` (suspended from sending since ${u.suspended.since}: ${u.suspended.reason})` : ''}`).join('\n'), users);
      }
      case 'user unlock': {
        const address = need(rest, 0, 'ADDRESS');
        const released = await ctx.unlock(address);
        return ok(`${address} may send again; ${released} held message(s) released`, { address, released });
      }
      case 'alias add': {
        const { pos, opt } = options(rest);
        const address = need(pos, 0, 'ADDRESS');
        const a = await ctx.accounts.addAlias(address, list(opt.to), list(opt.senders), ctx.config.current.domains);
        return ok(`alias ${a.address} -> ${a.members.join(', ')}`, a);
      }
      case 'alias del': {
        const address = need(rest, 0, 'ADDRESS');
        await ctx.accounts.deleteAlias(address);
        return ok(`deleted alias ${address}`);
      }
      case 'alias list': {
        const aliases = ctx.accounts.listAliases();
        return ok(aliases.map((a) => `${a.address} -> ${a.members.join(', ')}${a.senders.length ? ` (senders: ${a.senders.join(', ')})` : ''}`).join('\n'), aliases);
      }
      case 'config get': {
        const key = need(rest, 0, 'KEY');
        const v = redact(getKey(ctx.config.current, key), key.split('.').pop());
        return ok(JSON.stringify(v, null, 2), v);
      }
      case 'config set': {
        const key = need(rest, 0, 'KEY');
        const raw = need(rest, 1, 'JSON-VALUE');
        let value: unknown;
        try {
          value = JSON.parse(raw);
        } catch {
          throw new UsageError(`${key}: value is not JSON (strings need quotes: '"text"')`);
        }
        await ctx.config.set(key, value);
        const restart = key === 'smtp' || key.startsWith('smtp.listeners');
        return ok(`${key} set${restart ? ' (takes effect at the next start)' : ''}`, { key, value: redact(value, key.split('.').pop()), restartNeeded: restart });
      }
      case 'events list': {
        const evs = await ctx.events.list(200);
        const text = evs.length
          ? evs.map((e) => `${e.time} ${e.severity.padEnd(8)} ${e.kind.padEnd(16)} ${e.text}`).join('\n')
          : 'no events';
        return ok(text, evs);
      }
      case 'queue list': {
        const q = ctx.queue.list();
        const text = q.length
          ? q
              .map((e) =>
                [
                  `${e.id} ${e.size}B from <${e.from}> queued ${e.queued}${e.held ? ' [held: sender suspended]' : ''}`,
                  ...e.recipients.map(
                    (r) => `  ${r.address} ${r.state}${r.attempts ? `, ${r.attempts} attempt(s)` : ''}${r.state === 'deferred' || r.state === 'queued' ? `, next ${r.nextAttempt}` : ''}${r.lastReply ? `: ${r.lastReply}` : ''}`,
                  ),
                ].join('\n'),
              )
              .join('\n')
          : 'queue is empty';
        return ok(text, q);
      }
      case 'queue flush': {
        const n = ctx.queue.flush();
        return ok(`${n} recipient(s) due now`, { recipients: n });
      }
      case 'queue retry': {
        const id = need(rest, 0, 'ID');
        const n = ctx.queue.retry(id);
        return ok(`${id}: ${n} recipient(s) due now`, { id, recipients: n });
      }
      case 'queue delete': {
        const id = need(rest, 0, 'ID');
        const e = await ctx.queue.remove(id);
        const pending = e.recipients.filter((r) => r.state === 'queued' || r.state === 'deferred').map((r) => r.address);
        return ok(`${id} deleted; not delivered to: ${pending.join(', ') || 'nobody'}`, { id, notDelivered: pending });
      }
      case 'quarantine list': {
        const q = (await ctx.quarantine.list()).sort((a, b) => a.quarantined.localeCompare(b.quarantined));
        const text = q.length
          ? q.map((r) => `${r.id} ${r.class} ${r.quarantined} from <${r.envelope.from}>${r.envelope.login ? ` (login ${r.envelope.login})` : ''} [${r.envelope.clientIp}] to ${r.envelope.rcpt.join(', ')}: ${r.envelope.subject ?? ''}\n  ${r.summary}`).join('\n')
          : 'quarantine is empty';
        return ok(text, q);
      }
      case 'quarantine show': {
        const id = need(rest, 0, 'ID');
        const { record, content } = await ctx.quarantine.show(id);
        const head = `${record.id} ${record.class}: ${record.summary}\nfrom <${record.envelope.from}> to ${record.envelope.rcpt.join(', ')}, quarantined ${record.quarantined}, deleted after ${record.expires}\n\n`;
        return ok(head + content.toString('utf8'), { ...record, content: content.toString('utf8') });
      }
      case 'quarantine release': {
        const id = need(rest, 0, 'ID');
        const r = await ctx.quarantine.release(id);
        return ok(`${id} released to ${r.envelope.rcpt.join(', ')}`, r);
      }
      case 'quarantine delete': {
        const id = need(rest, 0, 'ID');
        await ctx.quarantine.delete(id);
        return ok(`${id} deleted`, { id });
      }
      case 'dkim show': {
        const domain = need(rest, 0, 'DOMAIN').toLowerCase();
        const r = ctx.dkimRecord(domain);
        return ok(`publish this TXT record in the DNS of ${domain}:\n${r.zoneLine}`, r);
      }
      default:
        throw new UsageError(`unknown command: ${req.argv.join(' ') || '(none)'}`);
    }
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}
