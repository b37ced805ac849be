import type { CommandSpec } from '../commands/registry.js';
import type { StatusSection } from '../commands/status.js';
import type { HaNode, HaStatusInfo } from './node.js';

/** The node of this box, or null when it is not part of an HA pair (ha.enabled is false). */
type HaDeps = () => HaNode | null;

function pairNode(deps: HaDeps): HaNode {
  const node = deps();
  if (!node) throw new Error('ha: this box is not part of an HA pair (ha.enabled is false)');
  return node;
}

/** `mlsd ha status` as text. */
export function haStatusText(s: HaStatusInfo): string {
  const p = s.peer;
  return [
    `node ${s.nodeId}: ${s.role} (epoch ${s.epoch}, priority ${s.priority})`,
    `peer ${p.node ?? '?'}: ${p.role ?? 'unknown'}; serial ${p.links.serial}, network ${p.links.network}${p.lastHeardMs === null ? '' : `, last heard ${p.lastHeardMs} ms ago`}`,
    `replication: ${s.replication}${s.role === 'active' ? `; messages held on one disk only: ${s.oneDiskOnly} (onPeerLost ${s.onPeerLost})` : ''}`,
    s.linkFault !== 'none' ? `LINK FAULT: the ${s.linkFault} link is down` : 'links: ok',
    ...(p.alarms?.unacknowledged ? [`peer alarms: ${p.alarms.unacknowledged} unacknowledged on ${p.node ?? '?'}${p.alarms.latest ? `, latest: ${p.alarms.latest.kind}: ${p.alarms.latest.text}` : ''} (mlsd alarm list on the peer)`] : []),
    `config: ${p.configMatches === null ? 'peer not heard' : p.configMatches ? 'same on both boxes' : 'differs from the peer (replication pending or broken)'}`,
    `last failover: ${s.lastFailover ? `${s.lastFailover.at} (was ${s.lastFailover.role}: ${s.lastFailover.reason})` : 'none'}`,
  ].join('\n');
}

/** `ha status | ha switchover | ha promote --force`: all run on a standby too, where they matter most. */
export function haCommands(deps: HaDeps): CommandSpec[] {
  return [
    {
      name: 'ha status',
      summary: 'this box and its peer: roles, links, replication, last failover',
      standby: true,
      run: () => {
        const s = pairNode(deps).status();
        return { text: haStatusText(s), json: s };
      },
    },
    {
      name: 'ha switchover',
      summary: 'hand the service to the in-sync standby (run on the active box)',
      standby: true,
      run: async () => ({ text: await pairNode(deps).switchover() }),
    },
    {
      name: 'ha promote',
      summary: 'make this box active although it may lack acknowledged mail',
      options: [{ name: 'force', type: 'boolean' }],
      standby: true,
      run: async (input) => {
        const node = pairNode(deps);
        if (!input.flag('force')) throw new Error('ha promote: this box may lack acknowledged mail; say --force to promote it anyway');
        return { text: await node.forcePromote() };
      },
    },
  ];
}

/**
 * The HA part of `mlsd status`: one line on the active box; on a standby, where no mail
 * service runs, the whole `ha status`.
 */
export function haStatus(deps: HaDeps): StatusSection {
  return ({ serving }) => {
    const node = deps();
    if (!node) return null;
    const s = node.status();
    if (!serving) return { json: { ha: s }, lines: [haStatusText(s)] };
    return {
      json: { ha: s },
      lines: [`HA: ${s.role}; peer ${s.peer.node ?? '?'} ${s.peer.role ?? 'unknown'}; replication ${s.replication}${s.oneDiskOnly ? `; ${s.oneDiskOnly} message(s) on this disk only` : ''}${s.linkFault !== 'none' ? `; LINK FAULT (${s.linkFault})` : ''}${s.peer.alarms?.unacknowledged ? `; ${s.peer.alarms.unacknowledged} alarm(s) on the peer` : ''}`],
    };
  };
}
