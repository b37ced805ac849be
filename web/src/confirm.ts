// A confirm step drawn in the page (not window.confirm, which a phone browser may suppress and
// which blocks the page): the question, the action's button in red, and Cancel.
import { actionButton, h } from './dom.js';
import { strings } from './i18n.js';

const S = strings({
  en: { cancel: 'Cancel' },
  'zh-TW': { cancel: '取消' },
});

/** Shows the question in `where`; `action` runs only after the red button (`yesClass` added to its classes) is pressed. */
export function askConfirm(where: HTMLElement, question: string, yes: string, action: () => Promise<void>, yesClass = ''): void {
  const box = h(
    'div',
    { class: 'confirm', role: 'alertdialog' },
    h('p', {}, question),
    h(
      'div',
      { class: 'row' },
      actionButton(yes, async () => {
        box.remove();
        await action();
      }, { class: `danger confirm-yes ${yesClass}`.trim() }),
      h('button', { type: 'button', class: 'secondary confirm-no cancel', onclick: () => box.remove() }, S('cancel')),
    ),
  );
  where.replaceChildren(box);
}
