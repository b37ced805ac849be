import { connect } from 'node:net';
import type { Clock, Timer } from '../core/clock.js';

/**
 * Whether this box still reaches its own gateway (ha.gateway, host:port): with both links
 * to the peer silent, that tells the box cut off from the one whose peer died.
 */
export class GatewayWatch {
  /** Null until the first probe answers (and while no gateway is configured). */
  ok: boolean | null = null;
  private timer: Timer | null = null;

  constructor(
    private readonly spec: string,
    private readonly timeoutMs: number,
    private readonly everyMs: number,
    private readonly clock: Clock,
    /** Called when the gateway answers again after it did not. */
    private readonly onBack: () => void,
  ) {}

  start(): void {
    const probe = () =>
      void probeGateway(this.spec, this.timeoutMs, this.clock).then((ok) => {
        if (ok && this.ok === false) this.onBack();
        this.ok = ok;
      });
    probe();
    this.timer = this.clock.setInterval(probe, this.everyMs);
  }

  stop(): void {
    this.clock.clearInterval(this.timer);
    this.timer = null;
  }
}

/** Reachable when a TCP connection to host:port opens within the time given. */
function probeGateway(spec: string, timeoutMs: number, clock: Clock): Promise<boolean> {
  const i = spec.lastIndexOf(':');
  const host = spec.slice(0, i);
  const port = Number(spec.slice(i + 1));
  return new Promise((resolve) => {
    let s: ReturnType<typeof connect>;
    try {
      s = connect({ host, port });
    } catch {
      return resolve(false); // a malformed ha.gateway never reaches anything
    }
    const done = (ok: boolean) => {
      clock.clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = clock.setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
