import type { Clock } from '../core/clock.js';
import type { EventInput } from '../events/events.js';
import type { LinkView, Role } from './roles.js';

export type LinkFault = LinkView['fault'];

export interface LinkWatchDeps {
  deadMs: () => number;
  /** For the alert texts: this box's role and the peer's node id. */
  role: () => Role;
  peerNode: () => string | null;
  emit: (ev: EventInput) => void;
  clock: Clock;
}

/**
 * Turns what the links show each tick into events: the peer lost or seen again, and a
 * link fault (one link silent while the other works) raised or cleared. A fault counts
 * only once it has lasted deadMs, so the moment a peer dies (one link falls silent a
 * heartbeat before the other) or starts (one link is heard first) raises nothing.
 */
export class LinkWatch {
  /** The link fault as recognised (after its debounce); what `ha status` shows. */
  fault: LinkFault = 'none';
  private peerWasAlive = false;
  private faultSeen: { fault: 'serial' | 'network'; since: number } | null = null;

  constructor(private readonly d: LinkWatchDeps) {}

  watch(l: LinkView): void {
    if (l.peerAlive !== this.peerWasAlive) {
      this.peerWasAlive = l.peerAlive;
      if (!l.peerAlive) this.d.emit({ kind: 'ha.peerLost', severity: 'critical', text: `HA peer silent on both links for ${this.d.deadMs()} ms (this box: ${this.d.role()})` });
      else this.d.emit({ kind: 'ha.peerSeen', severity: 'info', text: `HA peer ${this.d.peerNode() ?? ''} heard (this box: ${this.d.role()})` });
    }
    const fault = this.debounced(l.fault);
    if (fault === this.fault) return;
    const was = this.fault;
    this.fault = fault;
    if (fault !== 'none') {
      const what = fault === 'serial' ? 'the serial heartbeat cable is silent while the network link works' : 'the network link is silent while the serial heartbeat cable works';
      this.d.emit({ kind: 'ha.linkFault', severity: 'critical', text: `HA link fault: ${what}; no takeover (the peer is alive). Check the ${fault === 'serial' ? 'cable' : 'network'}.`, data: { link: fault } });
    } else if (was !== 'none') this.d.emit({ kind: 'ha.linkRestored', severity: 'info', text: `HA ${was} link restored`, data: { link: was } });
  }

  /** The fault the links show, once it has lasted deadMs; until then the one recognised before. */
  private debounced(fault: LinkFault): LinkFault {
    if (fault === 'none') {
      this.faultSeen = null;
      return fault;
    }
    if (fault === this.fault) return fault;
    const now = this.d.clock.now();
    if (this.faultSeen?.fault !== fault) this.faultSeen = { fault, since: now };
    return now - this.faultSeen.since < this.d.deadMs() ? this.fault : fault;
  }
}
