import type { CommandSpec } from '../commands/registry.js';
import { DIRECTIONS, type Direction, type SearchQuery } from './types.js';
import type { Archiver, SearchHit, SearchTools } from './archiver.js';
import type { ArchiveCapability, VerifyOutcome } from './capability.js';

const PAGE = 20;
const ID = [{ name: 'ID', required: true }];

/** A DATE option: YYYY-MM-DD (a whole UTC day) or a full ISO time. */
function dateOption(name: string, v: string | undefined, endOfDay: boolean): number | undefined {
  if (v === undefined) return undefined;
  const day = /^\d{4}-\d{2}-\d{2}$/.test(v);
  const t = Date.parse(day ? `${v}T00:00:00Z` : v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(t)) throw new Error(`archive search: --${name} takes a date such as 2026-12-05, not ${v.slice(0, 40)}`);
  return day && endOfDay ? t + 86_400_000 - 1 : t;
}

/**
 * Text from a message (a sender's subject, addresses, body) as the admin's terminal shows
 * it: control characters (an escape sequence, a CR LF that forges a line) become '?'.
 * Newlines and tabs are kept only where `lines` says the text is multi-line.
 */
export function shown(s: string, lines = false): string {
  return lines ? s.replace(/\r\n/g, '\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g, '?') : s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
}

function hitLine(h: SearchHit): string {
  return `${h.id}  ${h.received.slice(0, 16).replace('T', ' ')}  ${h.direction.padEnd(8)} <${shown(h.from)}> -> ${shown(h.to.join(', '))}  ${shown(h.subject)}\n    ${shown(h.snippet)}`;
}

/** `archive ...`: search, read, export, verify, holds and purge. Nothing here deletes but purge. */
export function archiveCommands(deps: () => ArchiveCapability, tools: SearchTools, newHoldId: () => string): CommandSpec[] {
  const archiver = (): Archiver => deps().archiver;
  return [
    {
      name: 'archive search',
      summary: 'find archived mail, newest first (Chinese words by two characters or more; English words in any form)',
      args: [{ name: 'QUERY', required: false }],
      options: [
        { name: 'from', type: 'string', value: 'A' },
        { name: 'to', type: 'string', value: 'A' },
        { name: 'since', type: 'string', value: 'DATE' },
        { name: 'until', type: 'string', value: 'DATE' },
        { name: 'direction', type: 'string', value: 'in|out|internal' },
        { name: 'page', type: 'string', value: 'N' },
        { name: 'before', type: 'string', value: 'SEQ' },
      ],
      standby: false,
      run: async (input) => {
        const parsed = tools.parseQuery(input.arg('QUERY'));
        const dir = input.string('direction');
        if (dir !== undefined && !DIRECTIONS.includes(dir as Direction)) throw new Error(`archive search: --direction takes in, out or internal, not ${dir.slice(0, 40)}`);
        const page = input.string('page') === undefined ? 1 : Number(input.string('page'));
        if (!Number.isInteger(page) || page < 1 || page > 10000) throw new Error('archive search: --page takes a page number from 1');
        const before = input.string('before') === undefined ? undefined : Number(input.string('before'));
        if (before !== undefined && (!Number.isInteger(before) || before < 1)) throw new Error('archive search: --before takes a record number from a previous page');
        const q: SearchQuery = {
          ...parsed,
          ...(input.string('from') !== undefined ? { from: input.string('from') } : {}),
          ...(input.string('to') !== undefined ? { to: input.string('to') } : {}),
          ...(dir !== undefined ? { direction: dir as Direction } : {}),
          ...(input.string('since') !== undefined ? { since: dateOption('since', input.string('since'), false) } : {}),
          ...(input.string('until') !== undefined ? { until: dateOption('until', input.string('until'), true) } : {}),
          limit: PAGE,
          ...(before !== undefined ? { before } : {}),
        };
        // Page N: the pages before it are walked with the cursor (newest first, no offsets to drift).
        let r = await archiver().search(q);
        for (let p = 1; p < page && r.more && r.hits.length; p++) r = await archiver().search({ ...q, before: r.hits[r.hits.length - 1]!.seq });
        const next = r.more && r.hits.length ? r.hits[r.hits.length - 1]!.seq : null;
        const text = r.hits.length ? r.hits.map(hitLine).join('\n') + (next ? `\n(more: --page ${page + 1}, or --before ${next})` : '') : 'no archived mail matches';
        return { text, json: { hits: r.hits, page, more: r.more, next } };
      },
    },
    {
      name: 'archive show',
      summary: 'an archived message: its envelope, headers and text',
      args: ID,
      standby: false,
      run: async (input) => {
        const { meta, headers, text } = await archiver().show(input.arg('ID'));
        const e = meta.envelope;
        const head = [
          `${meta.id}: ${e.direction}, from <${e.from}>${e.login ? ` (login ${e.login})` : ''} [${e.clientIp}] to ${e.rcpt.join(', ')}`,
          `received ${e.received}, archived ${meta.archived}, kept until ${meta.retainUntil} (rule ${meta.rule}), verdict ${e.verdict}, ${meta.size} bytes`,
          ...(meta.attachments.length ? [`attachments: ${meta.attachments.map((a) => `${a.name || '(unnamed)'} (${a.contentType}, ${a.size} bytes)`).join(', ')}`] : []),
        ];
        return { text: shown(`${head.join('\n')}\n\n${headers}\n\n${text}`, true), json: { ...meta, headers, text } };
      },
    },
    {
      name: 'archive export',
      summary: 'the original bytes of an archived message (redirect to a .eml file)',
      args: ID,
      standby: false,
      run: async (input) => {
        const bytes = await archiver().export(input.arg('ID'));
        return { text: bytes.toString('utf8'), bytes: bytes.toString('base64'), json: { id: input.arg('ID'), size: bytes.length, base64: bytes.toString('base64') } };
      },
    },
    {
      name: 'archive verify',
      summary: 'reread the whole archive and name every altered, missing or inserted record (exit 1 if any)',
      standby: false,
      run: async () => {
        const r: VerifyOutcome = await deps().verify();
        const lines = [`archive verify: ${r.records} records (${r.messages} messages, ${r.purges} purges, ${r.tombstones} tombstones), ${r.problems.length ? `${r.problems.length} PROBLEMS` : 'no problems'}`];
        for (const p of r.problems) lines.push(`  ${p.kind} ${p.seq !== undefined ? `record ${p.seq}` : `key ${p.key}`}: ${p.detail}`);
        return { text: lines.join('\n'), json: r, ...(r.problems.length ? { exitCode: 1 } : {}) };
      },
    },
    {
      name: 'archive reindex',
      summary: 'rebuild the search index from the archive store',
      standby: false,
      run: async () => {
        const n = await deps().reindex();
        return { text: `archive index rebuilt: ${n} messages`, json: { messages: n } };
      },
    },
    {
      name: 'archive hold add',
      summary: 'put a legal hold on what QUERY matches: purge never deletes it',
      args: [{ name: 'QUERY', required: true }],
      standby: false,
      run: async (input) => {
        const h = await archiver().addHold(input.arg('QUERY'), newHoldId());
        return { text: `${h.id} holds: ${h.query}`, json: h };
      },
    },
    {
      name: 'archive hold remove',
      summary: 'lift a legal hold (by its query or its id)',
      args: [{ name: 'QUERY', required: true }],
      standby: false,
      run: async (input) => {
        const h = await archiver().removeHold(input.arg('QUERY'));
        return { text: `${h.id} lifted: ${h.query}`, json: h };
      },
    },
    {
      name: 'archive hold list',
      summary: 'the legal holds',
      standby: false,
      run: async () => {
        const holds = await archiver().holds();
        return { text: holds.length ? holds.map((h) => `${h.id}  since ${h.created}  ${h.query}`).join('\n') : 'no legal holds', json: holds };
      },
    },
    {
      name: 'archive purge',
      summary: 'delete archived mail past its retention and under no hold (tombstones stay in the chain)',
      options: [{ name: 'dry-run', type: 'boolean' }],
      standby: false,
      run: async (input) => {
        const dry = input.flag('dry-run');
        const halted = deps().halted();
        if (halted && !dry) throw new Error(`archive purge: the archive is halted (${halted}); run archive verify`);
        const r = await archiver().purge(dry);
        const text = dry
          ? `archive purge (dry run): ${r.due} past retention, ${r.held} held, ${r.ids.length} would be purged${r.ids.length ? `: ${r.ids.slice(0, 50).join(', ')}${r.ids.length > 50 ? ', ...' : ''}` : ''}`
          : `archive purge: ${r.purged} purged, ${r.held} held (of ${r.due} past retention)`;
        return { text, json: { ...r, dryRun: dry } };
      },
    },
  ];
}
