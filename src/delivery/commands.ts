import type { CommandSpec } from '../commands/registry.js';
import type { StatusSection } from '../commands/status.js';
import type { Config } from '../config/schema.js';
import { toAsciiDomain } from '../core/names.js';
import type { QueueRunner, QueueStats } from './runner.js';

export interface DeliveryCommandDeps {
  queue: Pick<QueueRunner, 'list' | 'flush' | 'retry' | 'remove'>;
  /** The DNS TXT record that publishes a domain's DKIM key; throws for a domain that is not local. */
  dkimRecord(domain: string): { name: string; value: string; zoneLine: string };
}

const ID = [{ name: 'ID', required: true }];

/** `queue ...` and `dkim show`: the outbound queue and what other servers need to trust our mail. */
export function deliveryCommands(deps: () => DeliveryCommandDeps): CommandSpec[] {
  return [
    {
      name: 'queue list',
      summary: 'the outbound queue, each recipient with its state and last reply',
      standby: false,
      run: () => {
        const q = deps().queue.list();
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
        return { text, json: q };
      },
    },
    {
      name: 'queue flush',
      summary: 'try every waiting recipient now',
      standby: false,
      run: () => {
        const n = deps().queue.flush();
        return { text: `${n} recipient(s) due now`, json: { recipients: n } };
      },
    },
    {
      name: 'queue retry',
      summary: "try one message's waiting recipients now",
      args: ID,
      standby: false,
      run: (input) => {
        const id = input.arg('ID');
        const n = deps().queue.retry(id);
        return { text: `${id}: ${n} recipient(s) due now`, json: { id, recipients: n } };
      },
    },
    {
      name: 'queue delete',
      summary: 'drop a message from the queue without a bounce',
      args: ID,
      standby: false,
      run: async (input) => {
        const id = input.arg('ID');
        const e = await deps().queue.remove(id);
        const pending = e.recipients.filter((r) => r.state === 'queued' || r.state === 'deferred').map((r) => r.address);
        return { text: `${id} deleted; not delivered to: ${pending.join(', ') || 'nobody'}`, json: { id, notDelivered: pending } };
      },
    },
    {
      name: 'dkim show',
      summary: "the DNS TXT record to publish for a local domain's DKIM key",
      args: [{ name: 'DOMAIN', required: true }],
      standby: false,
      run: (input) => {
        // 例子.測試 or its A-labels: the key and the DNS name are the A-label domain's.
        const domain = toAsciiDomain(input.arg('DOMAIN')) ?? input.arg('DOMAIN').toLowerCase();
        const r = deps().dkimRecord(domain);
        return { text: `publish this TXT record in the DNS of ${domain}:\n${r.zoneLine}`, json: r };
      },
    },
  ];
}

export interface DeliveryStatusDeps {
  /** Messages committed to the spool and not yet fully routed. */
  spoolPending(): Promise<number>;
  queueStats(): QueueStats;
  routing(): Config['routing'];
}

/** The spool, the outbound queue and how mail leaves the box. */
export function deliveryStatus(deps: () => DeliveryStatusDeps): StatusSection {
  return async ({ serving }) => {
    if (!serving) return null;
    const d = deps();
    const queue = d.queueStats();
    const r = d.routing();
    const s = {
      spoolPending: await d.spoolPending(),
      queue,
      routing: {
        mode: r.mode,
        effective: r.mode === 'smarthost' || queue.smarthost.rerouted ? ('smarthost' as const) : ('mx' as const),
        smarthost: r.smarthost.host ? `${r.smarthost.host}:${r.smarthost.port}` : null,
      },
    };
    const sh = queue.smarthost;
    return {
      json: s,
      lines: [
        `spool: ${s.spoolPending} being routed; outbound queue: ${queue.messages} messages (${queue.recipients.queued} recipients queued, ${queue.recipients.deferred} deferred, ${queue.held} messages held), ${queue.activeConnections} connections`,
        `routing: ${s.routing.effective}${s.routing.effective !== s.routing.mode ? ` (rerouted from ${s.routing.mode}: our address is blacklisted)` : ''}${s.routing.smarthost ? `, smarthost ${s.routing.smarthost}: ${sh.sentLastHour} sent in the last hour, ${sh.sentToday} today${sh.pausedUntil ? `, paused until ${sh.pausedUntil}` : ''}` : ''}`,
      ],
    };
  };
}
