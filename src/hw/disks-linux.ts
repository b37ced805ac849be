import { execFile } from 'node:child_process';
import { statfs } from 'node:fs/promises';
import { interpretSmartctl, type DiskInventory } from './disks.js';

/**
 * The real box's data disk: SMART from `smartctl -j -a` (smartmontools), the inventory
 * (model, serial, size, interface) from systeminformation where smartctl leaves it out,
 * space from statfs of the data folder. node-disk-info is not used: it only parses `df`,
 * which statfs gives without a child process.
 */
export function linuxDiskInventory(device: () => string, dataDir: string): DiskInventory {
  return {
    async dataDisk() {
      const dev = device();
      // smartctl's exit status is a bit mask that is non-zero for a healthy-but-logged disk,
      // so its stdout is read whatever the status; only a missing binary is an error.
      const out = await new Promise<string>((resolve, reject) =>
        execFile('smartctl', ['-j', '-a', dev], { timeout: 60_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout) => {
          if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') reject(new Error('smartctl not found (install smartmontools)'));
          else resolve(stdout);
        }),
      );
      const reading = interpretSmartctl(JSON.parse(out || '{}'), dev);
      if (reading.present && (!reading.model || !reading.serial || reading.sizeBytes === null)) {
        const si = await import('systeminformation');
        const layout = (await si.diskLayout()).find((d) => d.device === dev);
        if (layout) {
          reading.model ||= layout.name;
          reading.serial ||= layout.serialNum;
          reading.sizeBytes ??= layout.size;
          reading.interface ||= layout.interfaceType;
        }
      }
      return reading;
    },
    async space() {
      const fs = await statfs(dataDir);
      return { totalBytes: fs.blocks * fs.bsize, availableBytes: fs.bavail * fs.bsize };
    },
  };
}
