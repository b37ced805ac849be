import type { ControlRequest, ControlResponse } from '../commands/control.js';
import type { HaNode } from './node.js';

/** `mlsd ha status [--json] | ha switchover | ha promote --force`; null for any other command. */
export async function haCommand(node: HaNode | null, req: ControlRequest): Promise<ControlResponse | null> {
  if (req.argv[0] !== 'ha') return null;
  if (!node) return { ok: false, error: 'ha: this box is not part of an HA pair (ha.enabled is false)' };
  const sub = req.argv[1];
  try {
    if (sub === 'status') {
      const s = node.status();
      const p = s.peer;
      const lines = [
        `node ${s.nodeId}: ${s.role} (epoch ${s.epoch}, priority ${s.priority})`,
        `peer ${p.node ?? '?'}: ${p.role ?? 'unknown'}; serial ${p.links.serial}, network ${p.links.network}${p.lastHeardMs === null ? '' : `, last heard ${p.lastHeardMs} ms ago`}`,
        `replication: ${s.replication}${s.role === 'active' ? `; messages held on one disk only: ${s.oneDiskOnly} (onPeerLost ${s.onPeerLost})` : ''}`,
        s.linkFault !== 'none' ? `LINK FAULT: the ${s.linkFault} link is down` : 'links: ok',
        `config: ${p.configMatches === null ? 'peer not heard' : p.configMatches ? 'same on both boxes' : 'differs from the peer (replication pending or broken)'}`,
        `last failover: ${s.lastFailover ? `${s.lastFailover.at} (was ${s.lastFailover.role}: ${s.lastFailover.reason})` : 'none'}`,
      ];
      return { ok: true, text: lines.join('\n'), json: s };
    }
    if (sub === 'switchover') return { ok: true, text: await node.switchover() };
    if (sub === 'promote') {
      if (!req.argv.includes('--force')) return { ok: false, error: 'ha promote: this box may lack acknowledged mail; say --force to promote it anyway' };
      return { ok: true, text: await node.forcePromote() };
    }
    return { ok: false, error: `ha: unknown command "${sub ?? ''}" (status, switchover, promote --force)` };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}
