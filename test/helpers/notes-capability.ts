import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sublevel } from '../../src/store/db.js';
import type { BoxContext, Capability, CapabilityDef } from '../../src/core/capability.js';

const NOTES = 'test-notes';

interface Note {
  id: string;
  text: string;
}

/**
 * A capability that exists only in the tests: it declares a sublevel and a folder of its
 * own and writes them through the durability seam. Nothing in ha/ knows it, yet an HA
 * standby must end up holding its records and files.
 */
export const notesCapability: CapabilityDef<Capability & { add(text: string): Promise<Note> }> = {
  name: 'notes',
  data: {
    owner: 'notes',
    sublevels: [{ name: NOTES, describe: 'notes (test capability)', replicate: true }],
    folders: [{ path: NOTES, describe: 'note files (test capability)', replicate: true }],
  },
  async start(box: BoxContext) {
    return {
      async add(text: string): Promise<Note> {
        const note = { id: Date.now().toString(36) + randomBytes(3).toString('hex'), text };
        await box.durability.write([{ type: 'put', sublevel: NOTES, key: note.id, value: note }]);
        await box.durability.writeFile(`${NOTES}/${note.id}.txt`, Buffer.from(text));
        return note;
      },
    };
  },
  commands: (box, running) => [
    {
      name: 'note add',
      summary: 'adds a note (test capability)',
      args: [{ name: 'TEXT', required: true }],
      standby: false,
      run: async (input) => {
        const note = await running()!.add(input.arg('TEXT'));
        return { text: `note ${note.id}`, json: note };
      },
    },
    {
      name: 'note list',
      summary: 'the notes this box holds, records and files (test capability)',
      // Read-only, and the point of the test is to read a standby's copy.
      standby: true,
      run: async () => {
        const records: Note[] = [];
        for await (const v of sublevel(box.db, NOTES).values()) records.push(v as Note);
        const files: Record<string, string> = {};
        for (const name of await readdir(join(box.dataDir, NOTES)).catch(() => [] as string[])) files[name] = await readFile(join(box.dataDir, NOTES, name), 'utf8');
        return { text: records.map((n) => `${n.id} ${n.text}`).join('\n'), json: { records, files } };
      },
    },
  ],
};
