import { readFile, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { interpretSmartctl, type DiskInventory, type DiskSpace } from './disks.js';

/**
 * The sim board's disks: `<folder>/data.json` is the data disk's real `smartctl -j`
 * output, and an optional `<folder>/space.json` its space; a test swaps the files between
 * polls to drive every state. The folder is read at each poll (`folder()` follows config).
 */
export function simDiskInventory(folder: () => string, dataDir: string): DiskInventory {
  return {
    async dataDisk() {
      let raw: string;
      try {
        raw = await readFile(join(folder(), 'data.json'), 'utf8');
      } catch {
        // No file is no disk, as smartctl on a device that is not there.
        return { device: 'sim0', present: false, model: '', serial: '', wwn: '', sizeBytes: null, interface: '', smart: null, messages: ['sim: no data.json'] };
      }
      return interpretSmartctl(JSON.parse(raw), 'sim0');
    },
    async space(): Promise<DiskSpace> {
      try {
        const s = JSON.parse(await readFile(join(folder(), 'space.json'), 'utf8')) as Partial<DiskSpace>;
        if (typeof s.totalBytes === 'number' && typeof s.availableBytes === 'number') return { totalBytes: s.totalBytes, availableBytes: s.availableBytes };
      } catch {
        // no space figure in the fixtures: the data folder's real one
      }
      const fs = await statfs(dataDir);
      return { totalBytes: fs.blocks * fs.bsize, availableBytes: fs.bavail * fs.bsize };
    },
  };
}
