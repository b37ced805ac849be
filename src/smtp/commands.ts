import type { StatusSection } from '../commands/status.js';

export interface SmtpStatusSource {
  addresses(): { name: string; host: string; port: number }[];
  /** Sessions open over all listeners: it returns to 0 when the clients are gone. */
  readonly sessionsOpen: number;
  /** smtp.maxDataBytesInFlight as used now: what DATA phases in progress hold, and the most. */
  readonly dataInFlight: { bytes: number; max: number };
}

/** The SMTP layer has no commands of its own yet; it shows its listeners and load in `mlsd status`. */
export function smtpStatus(deps: () => SmtpStatusSource): StatusSection {
  return ({ serving }) => {
    if (!serving) return null;
    const smtp = deps();
    const listeners = smtp.addresses();
    const sessionsOpen = smtp.sessionsOpen;
    const { bytes, max } = smtp.dataInFlight;
    return {
      json: { listeners, smtpSessionsOpen: sessionsOpen, smtpDataBytesInFlight: bytes, smtpDataBytesInFlightMax: max },
      lines: [...listeners.map((l) => `listener ${l.name}: ${l.host}:${l.port}`), `smtp sessions open: ${sessionsOpen}`, `smtp DATA bytes in flight: ${bytes} of ${max}`],
    };
  };
}
