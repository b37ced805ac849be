// A second step before something that cannot be undone (deleting a user, an alias, a queued
// message): the first click only asks, in words naming what goes, and a second click does it.
import { actionButton, h } from './dom.js';
import { strings } from './i18n.js';

const S = strings({
  en: { cancel: 'Cancel' },
  'zh-TW': { cancel: '取消' },
});

/** Shows `question` in `where` with a danger button running `action`, and Cancel which clears it. */
export function confirmStep(where: HTMLElement, question: string, confirmLabel: string, action: () => Promise<void>): void {
  where.replaceChildren(
    h(
      'div',
      { class: 'confirm', role: 'alertdialog' },
      h('p', {}, question),
      h(
        'div',
        { class: 'row' },
        actionButton(confirmLabel, action, { class: 'danger confirm-yes' }),
        h('button', { type: 'button', class: 'secondary confirm-no', onclick: () => where.replaceChildren() }, S('cancel')),
      ),
    ),
  );
}
