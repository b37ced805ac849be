import type { StatusSection } from '../commands/status.js';

/** The SMTP layer has no commands of its own yet; it shows its listeners in `mlsd status`. */
export function smtpStatus(deps: () => { addresses(): { name: string; host: string; port: number }[] }): StatusSection {
  return ({ serving }) => {
    if (!serving) return null;
    const listeners = deps().addresses();
    return { json: { listeners }, lines: listeners.map((l) => `listener ${l.name}: ${l.host}:${l.port}`) };
  };
}
