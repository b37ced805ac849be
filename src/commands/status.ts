import { statfs } from 'node:fs/promises';
import type { CommandSpec } from './registry.js';

/** One capability's part of `mlsd status`: its fields in the JSON and its lines in the text. */
export interface StatusPart {
  json: Record<string, unknown>;
  lines: string[];
}

/**
 * A capability's status section. `serving` is false on an HA standby, where the mail
 * services do not run: a section that has nothing to say there returns null.
 */
export type StatusSection = (box: { serving: boolean }) => Promise<StatusPart | null> | StatusPart | null;

/**
 * `mlsd status` (and later the LCD and the web dashboard): the sections in the order
 * they were added, text lines and JSON fields concatenated.
 */
export class StatusReport {
  private readonly sections: { owner: string; section: StatusSection }[] = [];

  add(owner: string, section: StatusSection): void {
    this.sections.push({ owner, section });
  }

  async collect(serving: boolean): Promise<StatusPart> {
    const json: Record<string, unknown> = {};
    const lines: string[] = [];
    for (const { section } of this.sections) {
      const part = await section({ serving });
      if (!part) continue;
      Object.assign(json, part.json);
      lines.push(...part.lines);
    }
    return { json, lines };
  }
}

export function statusCommands(report: StatusReport, serving: () => boolean): CommandSpec[] {
  return [
    {
      name: 'status',
      summary: 'what the box is doing: listeners, accounts, queues, routing, blacklists, HA, disk, memory',
      // On a standby it says where the mail service runs, plus what the HA section shows there.
      standby: true,
      run: async () => {
        const { json, lines } = await report.collect(serving());
        return { text: lines.join('\n'), json };
      },
    },
  ];
}

export interface DaemonStatusDeps {
  version: string;
  board: string;
  /** Epoch ms when the daemon started. */
  started: number;
  hostname: string;
  /** The HA role, named on a standby. */
  role: string;
}

/** The first line: which daemon, where, for how long; on a standby, that mail runs elsewhere. */
export function daemonStatus(deps: () => DaemonStatusDeps): StatusSection {
  return ({ serving }) => {
    const d = deps();
    if (!serving) return { json: {}, lines: [`mail service runs on the active box; this box is ${d.role}`] };
    const s = { version: d.version, pid: process.pid, uptimeSeconds: Math.round((Date.now() - d.started) / 1000), board: d.board, hostname: d.hostname };
    return { json: s, lines: [`mlsd ${s.version} on ${s.board} (${s.hostname}), pid ${s.pid}, up ${s.uptimeSeconds}s`] };
  };
}

/** The last lines: room on the data disk, memory of this process. */
export function hostStatus(deps: () => { dataDir: string }): StatusSection {
  return async ({ serving }) => {
    if (!serving) return null;
    const fs = await statfs(deps().dataDir);
    const { rss, heapUsed, external } = process.memoryUsage();
    const s = { dataDiskFreeBytes: fs.bavail * fs.bsize, memory: { rssBytes: rss, heapUsedBytes: heapUsed, externalBytes: external } };
    return {
      json: s,
      lines: [
        `data disk free: ${Math.round(s.dataDiskFreeBytes / 1048576)} MiB`,
        `memory: ${Math.round(s.memory.rssBytes / 1048576)} MiB resident, ${Math.round(s.memory.heapUsedBytes / 1048576)} MiB JS heap`,
      ],
    };
  };
}
