import type { CommandSpec } from '../commands/registry.js';
import type { QuarantineRecord } from './quarantine.js';

/** What the admin may do to quarantined mail; release and delete take one message at a time. */
export interface QuarantineCommandDeps {
  list(): Promise<QuarantineRecord[]>;
  show(id: string): Promise<{ record: QuarantineRecord; content: Buffer }>;
  release(id: string): Promise<QuarantineRecord>;
  delete(id: string): Promise<QuarantineRecord>;
}

const ID = [{ name: 'ID', required: true }];

/** `quarantine ...`: mail the scanners held back, for the admin to release or delete. */
export function quarantineCommands(deps: () => QuarantineCommandDeps): CommandSpec[] {
  return [
    {
      name: 'quarantine list',
      summary: 'quarantined messages, oldest first',
      standby: false,
      run: async () => {
        const q = (await deps().list()).sort((a, b) => a.quarantined.localeCompare(b.quarantined));
        const text = q.length
          ? q.map((r) => `${r.id} ${r.class} ${r.quarantined} from <${r.envelope.from}>${r.envelope.login ? ` (login ${r.envelope.login})` : ''} [${r.envelope.clientIp}] to ${r.envelope.rcpt.join(', ')}: ${r.envelope.subject ?? ''}\n  ${r.summary}`).join('\n')
          : 'quarantine is empty';
        return { text, json: q };
      },
    },
    {
      name: 'quarantine show',
      summary: 'a quarantined message: why it was held, and its content',
      args: ID,
      standby: false,
      run: async (input) => {
        const { record, content } = await deps().show(input.arg('ID'));
        const head = `${record.id} ${record.class}: ${record.summary}\nfrom <${record.envelope.from}> to ${record.envelope.rcpt.join(', ')}, quarantined ${record.quarantined}, deleted after ${record.expires}\n\n`;
        return { text: head + content.toString('utf8'), json: { ...record, content: content.toString('utf8') } };
      },
    },
    {
      name: 'quarantine export',
      summary: 'the exact bytes of a quarantined message (redirect to a .eml file)',
      args: ID,
      standby: false,
      run: async (input) => {
        const { record, content } = await deps().show(input.arg('ID'));
        // The bytes once (the CLI writes them out); not a second copy as text.
        return { text: `${content.length} bytes`, bytes: content.toString('base64'), json: { id: record.id, size: content.length } };
      },
    },
    {
      name: 'quarantine release',
      summary: 'deliver a quarantined message after all',
      args: ID,
      standby: false,
      run: async (input) => {
        const id = input.arg('ID');
        const r = await deps().release(id);
        return { text: `${id} released to ${r.envelope.rcpt.join(', ')}`, json: r };
      },
    },
    {
      name: 'quarantine delete',
      summary: 'delete a quarantined message',
      args: ID,
      standby: false,
      run: async (input) => {
        const id = input.arg('ID');
        await deps().delete(id);
        return { text: `${id} deleted`, json: { id } };
      },
    },
  ];
}
