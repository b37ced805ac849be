// Outbound: built by its own change (issue 16); until then it says so.
import { h } from './dom.js';
import { strings } from './i18n.js';
import type { Page } from './pages.js';

const S = strings({
  en: { title: 'Outbound', todo: 'This page is not built yet.' },
  'zh-TW': { title: '外寄', todo: '此頁面尚未完成。' },
});

export const outboundPage: Page = {
  id: 'outbound',
  title: () => S('title'),
  async render(root) {
    root.append(h('p', {}, S('todo')));
  },
};
