import type { Logger } from '../log/logger.js';
import type { Clock, Timer } from '../core/clock.js';
import type { SerialLine } from '../hw/serial.js';
import type { NetLink } from './netlink.js';
import type { Heartbeat } from './roles.js';
import { signLine, verifyLine, type FrameHeader } from './wire.js';
import type { LineVerdict, SerialReplayGuard } from './serial-guard.js';

/** A heartbeat as sent: the active also says which sync generation its standby is in. */
export type SentHeartbeat = Heartbeat & { gen: number };

export interface HeartbeatDeps {
  link: NetLink;
  serial: SerialLine | null;
  /** The key heartbeat lines on the serial cable are signed with. */
  key: Buffer;
  /** Stamps our serial lines and refuses the peer's replayed ones. */
  guard: SerialReplayGuard;
  nodeId: () => string;
  heartbeatMs: () => number;
  /** What this box says about itself right now. */
  heartbeat: () => SentHeartbeat;
  onHeartbeat: (hb: Heartbeat & { gen?: number }) => void;
  onTakeover: (h: FrameHeader) => void;
  clock: Clock;
  log: Logger;
}

/** Bad frames on the cable are logged at most this often (a noisy line would flood the log). */
const BAD_FRAME_LOG_MS = 10_000;

/**
 * The heartbeats of one box on both links: sent every heartbeatMs on the network link and
 * as signed lines on the serial cable, and received from both. It remembers when each link
 * last heard the peer, which is all the link watcher and the role decision need.
 */
export class Heartbeats {
  /** When each link last heard the peer (null: never). */
  heardSerial: number | null = null;
  heardNet: number | null = null;
  private serialBuf = '';
  private lastBadFrameLog = 0;
  private readonly lastRefusalLog = new Map<string, number>();
  private timer: Timer | null = null;

  constructor(private readonly d: HeartbeatDeps) {
    d.link.onHeard(() => (this.heardNet = d.clock.now()));
    d.link.onFrame((f) => {
      if (f.header.t === 'hb') {
        d.guard.heardOnNetwork(f.header);
        d.onHeartbeat(f.header as unknown as Heartbeat);
      }
      if (f.header.t === 'takeover') d.onTakeover(f.header);
    });
  }

  /** Opens the cable and starts sending; the network link is started by its owner. */
  start(): void {
    const serial = this.d.serial;
    if (serial) {
      serial.onData((chunk) => this.onSerial(chunk));
      serial.start();
    }
    this.timer = this.d.clock.setInterval(() => this.send(), this.d.heartbeatMs());
  }

  stopSending(): void {
    this.d.clock.clearInterval(this.timer);
    this.timer = null;
  }

  async closeSerial(): Promise<void> {
    await this.d.serial?.stop();
  }

  /** Sends a heartbeat now (a role change is news the peer should not wait for). */
  send(): void {
    const { guard } = this.d;
    // Our boot, and the highest boot of the peer's we took on the cable (serial-guard.ts).
    const hb = { ...this.d.heartbeat(), serialBoot: guard.ownBoot, serialSeen: guard.seenBoot };
    this.d.link.heartbeat(hb as unknown as FrameHeader);
    const serial = this.d.serial;
    if (serial?.isOpen) {
      // A write that blocks is a cable fault: the line closes and reopens by itself.
      serial.write(signLine({ ...hb, ...guard.stamp() }, this.d.key), this.d.heartbeatMs() * 2).catch(() => undefined);
    }
  }

  /** Tells the peer on both links to take over now (a switchover). */
  sendTakeover(epoch: number): void {
    const notice = { t: 'takeover', node: this.d.nodeId(), epoch };
    this.d.link.heartbeat(notice);
    // The epoch, our boot and counter, and the peer's boot are inside the HMAC: a recorded
    // takeover played back later is refused (serial-guard.ts).
    this.d.serial?.write(signLine({ ...notice, ...this.d.guard.takeoverStamp() }, this.d.key), this.d.heartbeatMs() * 2).catch(() => undefined);
  }

  private onSerial(chunk: Buffer): void {
    this.serialBuf += chunk.toString('latin1');
    if (this.serialBuf.length > 65536) this.serialBuf = this.serialBuf.slice(-4096);
    let nl: number;
    while ((nl = this.serialBuf.indexOf('\n')) >= 0) {
      const line = this.serialBuf.slice(0, nl);
      this.serialBuf = this.serialBuf.slice(nl + 1);
      if (!line.trim()) continue;
      const msg = verifyLine(line, this.d.key);
      if (!msg) {
        // Line noise, a cable to some other device, or a box with another key.
        const now = this.d.clock.now();
        if (now - this.lastBadFrameLog > BAD_FRAME_LOG_MS) {
          this.lastBadFrameLog = now;
          this.d.log.warn({ evt: 'ha.serial.badFrame', sample: line.slice(0, 60) }, 'dropped an unauthenticated frame on the heartbeat cable');
        }
        continue;
      }
      if (msg.node === this.d.nodeId()) continue; // our own echo
      const verdict = this.d.guard.check(msg);
      if (verdict !== 'ok') {
        this.refused(verdict, msg);
        continue;
      }
      if (msg.t === 'hb') {
        this.heardSerial = this.d.clock.now();
        this.d.onHeartbeat(msg as unknown as Heartbeat);
      } else if (msg.t === 'takeover') this.d.onTakeover(msg);
    }
  }

  /** A signed line not acted on: logged at most every BAD_FRAME_LOG_MS per verdict and line type (a replay loop would flood the log). */
  private refused(verdict: LineVerdict, msg: FrameHeader): void {
    const now = this.d.clock.now();
    const kind = `${verdict}:${String(msg.t)}`;
    const last = this.lastRefusalLog.get(kind);
    if (last !== undefined && now - last <= BAD_FRAME_LOG_MS) return;
    this.lastRefusalLog.set(kind, now);
    const fields = { t: msg.t, node: msg.node, epoch: msg.epoch, boot: msg.boot, n: msg.n };
    if (verdict === 'replay') this.d.log.warn({ evt: 'ha.serial.replay', ...fields }, 'refused a signed line on the heartbeat cable that was already used (a replay)');
    else if (verdict === 'oldFormat') this.d.log.warn({ evt: 'ha.serial.oldFormat', ...fields }, 'the peer speaks the previous serial line format (no version, no counter): its lines are refused; upgrade it');
    else this.d.log.warn({ evt: 'ha.serial.newFormat', v: msg.v, ...fields }, 'the peer speaks a later serial line format than this box: its lines are refused; upgrade this box');
  }
}
