// Sample `status --json` documents for the panel's unit tests, shaped as the daemon makes them.

export const SERVING = {
  version: '0.1.0',
  board: 'sim',
  hostname: 'mail.example.test',
  smtpSessionsOpen: 0,
  smtpDataBytesInFlight: 0,
  spoolPending: 0,
  queue: { messages: 3, held: 1, recipients: { queued: 5, deferred: 2 }, smarthost: { sentToday: 7 } },
  disk: { summary: 'data disk: healthy', usedPercent: 42.5, failing: false, present: true },
  alarms: { unacknowledged: 0, latest: null },
};

export function haPart(role: string, replication: string) {
  return { nodeId: 'a', role, replication, oneDiskOnly: role === 'active' ? 4 : 0, linkFault: 'none', peer: { node: 'b', role: role === 'active' ? 'standby' : 'active' } };
}
