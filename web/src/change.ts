// A card's changes: run a command, say in the card how it went (the box's own error when it
// refused), close the card's open panel (a confirm, a password form) and show the card's data
// as the box now has it.
import { run } from './api.js';
import { say } from './dom.js';

export interface ChangeTarget {
  status: HTMLElement;
  panel: HTMLElement;
  load(): Promise<void>;
  /** The refusal in the reader's language, the box's error inside it. */
  refused(error: string): string;
}

/** `change(argv, ok, stdin?)`: true when the box did it; `ok` may word the command's JSON answer. */
export function changer(t: ChangeTarget) {
  return async (argv: string[], ok: string | ((json: Record<string, unknown>) => string), stdin?: string): Promise<boolean> => {
    const r = await run(argv, stdin);
    if (!r.ok) {
      say(t.status, t.refused(r.error ?? ''), 'error');
      return false;
    }
    t.panel.replaceChildren();
    say(t.status, typeof ok === 'string' ? ok : ok((r.json ?? {}) as Record<string, unknown>), 'ok');
    await t.load();
    return true;
  };
}
