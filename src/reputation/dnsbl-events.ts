import type { EventInput } from '../events/events.js';
import type { ZoneTurn } from './dnsbl-listings.js';

/**
 * The event one listing or delisting becomes: what the event log shows and the alert mail
 * says. Being listed is how a company finds its mail refused everywhere, so a listing is
 * critical the moment it is seen.
 */
export function dnsblEvent(turn: ZoneTurn): EventInput {
  const { target: t, zone } = turn;
  const who = t.own ? t.ip : `${t.ip} (${t.label})`;
  if (turn.listed) {
    return {
      kind: 'dnsbl.listed',
      severity: 'critical',
      ip: t.ip,
      text: `${who} is listed on ${zone} (${turn.answer}${turn.reason ? `: ${turn.reason}` : ''})`,
      data: { zone, answer: turn.answer, ...(turn.reason ? { reason: turn.reason } : {}), label: t.label },
    };
  }
  // Said in the text, since the admin reading "no longer listed" must not take it for
  // "all clear" while another list still has the address.
  const rest = turn.stillOn.length ? `still listed on ${turn.stillOn.join(', ')}` : 'not listed on any list checked';
  return {
    kind: 'dnsbl.delisted',
    severity: 'info',
    ip: t.ip,
    text: `${who} is no longer listed on ${zone} (${rest})`,
    data: { zone, label: t.label, stillListedOn: turn.stillOn },
  };
}
