import type { EventInput, MlsdEvent } from '../events/events.js';
import { EVENT_ID } from '../events/alarms.js';
import type { Logger } from '../log/logger.js';

/**
 * A box's unacknowledged alarms as its heartbeat carries them to the peer, so that a
 * standby's own alarms (its dying disk) reach the administrator: only the active box runs
 * the alerts capability that mails. An optional field of the heartbeat: a box from before
 * it ignores it, and a heartbeat without it (from such a box) is "not known", not zero.
 * Inside the HMAC on the serial cable (the whole heartbeat is signed) and inside TLS-PSK on
 * the network link: only the peer holding the shared key can put anything here.
 */
export interface AlarmSummary {
  /** How many alarms of the box itself are unacknowledged. */
  n: number;
  /** The newest of them this box could not mail itself (raised while it did not serve), or null. */
  latest: { id: string; kind: string; text: string } | null;
}

/** The event a box raises for an alarm of its peer. */
export const PEER_ALARM_KIND = 'ha.peerAlarm';
/** The alarm text carried and shown is cut here: it ends on the LCD, the console and in mail. */
export const PEER_ALARM_TEXT_MAX = 160;
/** How many raised peer alarm ids are remembered (across restarts) so none is raised twice. */
export const PEER_ALARMS_REMEMBERED = 32;
const MAX_COUNT = 1_000_000;
const KIND = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Text from the peer made safe for the event log, the LCD, the serial console and mail:
 * escape sequences dropped whole, then every control or format character (C0, DEL, C1,
 * bidi overrides, line separators, a lone surrogate) and 0xFE (the LCD's command prefix)
 * becomes '?', then cut to `max` characters.
 */
export function cleanPeerText(s: unknown, max = PEER_ALARM_TEXT_MAX): string {
  const text = typeof s === 'string' ? s : '';
  const noEscapes = text.replace(/(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[ -~]?/g, '');
  const out = [...noEscapes.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u00fe]/gu, '?')];
  return out.length > max ? out.slice(0, max - 3).join('') + '...' : out.join('');
}

/**
 * What this box tells its peer about its own alarms: how many wait, and the newest one its
 * own alerts did not see (`unserved`: raised while this box did not serve; one raised while
 * it served was mailed by it, or is a kind it does not mail, and must not come back as a
 * second mail after a switchover). Its `ha.peerAlarm` events are left out: they are the
 * peer's own alarms, and sent back they would be raised again there.
 */
export function summarizeAlarms(unacknowledged: readonly MlsdEvent[], unserved: (id: string) => boolean): AlarmSummary {
  const own = unacknowledged.filter((ev) => ev.kind !== PEER_ALARM_KIND);
  const newest = own.find((ev) => unserved(ev.id));
  return { n: own.length, latest: newest ? { id: newest.id, kind: newest.kind, text: cleanPeerText(newest.text) } : null };
}

/**
 * The summary in a peer's heartbeat, checked: null when absent or malformed (a box that
 * does not send it, a broken one). The text is cleaned and cut here again: the peer is
 * authenticated, not trusted to be bug-free.
 */
export function parseAlarmSummary(v: unknown): AlarmSummary | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const { n, latest } = v as Record<string, unknown>;
  if (!Number.isSafeInteger(n) || (n as number) < 0 || (n as number) > MAX_COUNT) return null;
  if (n === 0 || latest === null || latest === undefined) return { n: n as number, latest: null };
  if (typeof latest !== 'object' || Array.isArray(latest)) return null;
  const { id, kind, text } = latest as Record<string, unknown>;
  // The id is what de-duplicates: one that is not an event id cannot be told apart.
  if (typeof id !== 'string' || !EVENT_ID.test(id)) return null;
  return { n: n as number, latest: { id, kind: typeof kind === 'string' && KIND.test(kind) ? kind : 'unknown', text: cleanPeerText(text) } };
}

/** How many ids of alarms raised while serving a box remembers (in memory: after a restart it relays them once, rather than never). */
const SERVED_REMEMBERED = 256;

export interface SummarySourceDeps {
  unacknowledged: () => Promise<MlsdEvent[]>;
  subscribe: (fn: (ev: MlsdEvent) => void) => () => void;
  /** Whether this box runs the mail services (and so its alerts) right now. */
  serving: () => boolean;
  log: Logger;
}

/**
 * This box's summary for its synchronous heartbeat: the answer of the last refresh, a
 * refresh started at each call (Alarms keeps its list until it changes, so that is cheap).
 */
export function alarmSummarySource(d: SummarySourceDeps): { summary: () => AlarmSummary | null; stop: () => void } {
  let last: AlarmSummary | null = null;
  let failing = false;
  const served = new Set<string>();
  const stop = d.subscribe((ev) => {
    if (ev.severity !== 'critical' || !d.serving()) return;
    served.add(ev.id);
    if (served.size > SERVED_REMEMBERED) served.delete(served.values().next().value!);
  });
  const summary = () => {
    d.unacknowledged().then(
      (list) => {
        last = summarizeAlarms(list, (id) => !served.has(id));
        failing = false;
      },
      (err: Error) => {
        if (!failing) d.log.warn({ evt: 'ha.alarmSummary.fail', err: err.message }, 'could not read the alarms for the heartbeat');
        failing = true;
      },
    );
    return last;
  };
  return { summary, stop };
}

export interface PeerAlarmDeps {
  /** Peer alarm keys (`node id`) already raised, newest last, as saved. */
  raised: () => readonly string[];
  save: (raised: string[]) => void;
  emit: (ev: EventInput) => void;
  log: Logger;
}

/**
 * On the serving box: raises the peer's newest unacknowledged alarm as this box's own
 * critical event (so its alarm LED lights and its alerts capability mails it), once per
 * peer alarm id, remembered in the box's saved HA state across restarts and role swaps.
 */
export class PeerAlarms {
  constructor(private readonly d: PeerAlarmDeps) {}

  heard(peerNode: unknown, summary: AlarmSummary | null): void {
    const latest = summary?.latest;
    if (!latest) return;
    const node = cleanPeerText(peerNode, 64);
    const key = `${node} ${latest.id}`;
    const raised = this.d.raised();
    if (raised.includes(key)) return;
    // Saved before the event is written: the next heartbeat (200 ms later) must find it.
    this.d.save([...raised, key].slice(-PEER_ALARMS_REMEMBERED));
    this.d.log.info({ evt: 'ha.peerAlarm', peer: node, id: latest.id, kind: latest.kind }, 'raising an alarm of the peer box');
    this.d.emit({
      kind: PEER_ALARM_KIND,
      severity: 'critical',
      text: `standby box ${node}: ${latest.kind}: ${latest.text}`,
      data: { peer: node, id: latest.id, kind: latest.kind },
    });
  }
}
