// Archive: the rules and retention (config keys under `archive`), search in Chinese and English
// with paging, the inert view and .eml download of a hit, verify (every altered, missing or
// inserted record named), and legal holds. Nothing here deletes archived mail: purge stays a
// command for the console, on purpose.
import { NotLoggedIn, run, runJson } from './api.js';
import { actionButton, badge, h, say, section, table } from './dom.js';
import { configForm } from './forms.js';
import { fmtNumber, fmtTime, strings } from './i18n.js';
import { messageView } from './message-view.js';
import type { Page } from './pages.js';
import { askConfirm } from './confirm.js';

interface Hit {
  id: string;
  seq: number;
  received: string;
  direction: string;
  from: string;
  to: string[];
  subject: string;
  snippet: string;
}

interface SearchResult {
  hits: Hit[];
  page: number;
  more: boolean;
}

interface Hold {
  id: string;
  query: string;
  created: string;
}

interface VerifyOutcome {
  records: number;
  messages: number;
  tombstones: number;
  purges: number;
  problems: { key: string; seq?: number; kind: 'altered' | 'missing' | 'inserted'; detail: string }[];
}

const S = strings({
  en: {
    title: 'Archive',
    rules: 'Rules and retention',
    enabled: 'Archive accepted and sent mail',
    retention: 'Years mail is kept when its rule names no retention',
    rulesKey: 'Rules (in order, the first match decides)',
    rulesHint: 'A JSON list; each rule: action "archive" or "skip", and any of direction ["in","out","internal"], from, to (addresses or domains), subject, minBytes, maxBytes, attachments, verdict ["clean","spam","virus"], retentionYears, name. No match: spam and viruses skipped, the rest archived.',
    search: 'Search',
    query: 'Words',
    queryHint: 'Chinese words of two characters or more, English words in any form, "a phrase"',
    from: 'From',
    to: 'To',
    since: 'From date',
    until: 'To date',
    direction: 'Direction',
    any: 'Any',
    in: 'incoming',
    out: 'outgoing',
    internal: 'internal',
    find: 'Search',
    received: 'Received',
    subject: 'Subject',
    snippet: 'Where it matched',
    open: 'Actions',
    view: 'View',
    noHits: 'No archived mail matches.',
    page: 'Page {n}',
    prev: 'Previous page',
    next: 'Next page',
    failed: 'Refused: {error}',
    verify: 'Verify',
    verifyHint: 'Rereads the whole archive and names every altered, missing or inserted record.',
    runVerify: 'Verify the archive',
    verifyOk: 'No problems: {records} records ({messages} messages, {purges} purges, {tombstones} tombstones).',
    verifyBad: '{n} problems in {records} records:',
    kind: 'Problem',
    record: 'Record',
    detail: 'Detail',
    altered: 'altered',
    missing: 'missing',
    inserted: 'inserted',
    holds: 'Legal holds',
    holdsHint: 'What a hold query matches is never purged, past its retention or not. Same words and from:, to:, since:, until:, direction: as the search.',
    holdQuery: 'Hold query',
    addHold: 'Add hold',
    added: 'Hold {id} added.',
    removeHold: 'Lift',
    confirmLift: 'Lift hold {id}?',
    reallyLift: 'Yes, lift it',
    lifted: 'Hold {id} lifted.',
    since2: 'Since',
    noHolds: 'No legal holds.',
  },
  'zh-TW': {
    title: '封存',
    rules: '規則與保存期限',
    enabled: '封存收到與寄出的郵件',
    retention: '規則未指定期限時的保存年數',
    rulesKey: '規則（依序比對，第一條符合者決定）',
    rulesHint: 'JSON 清單；每條規則：action 為 "archive"（封存）或 "skip"（略過），可加 direction ["in","out","internal"]、from、to（位址或網域）、subject、minBytes、maxBytes、attachments、verdict ["clean","spam","virus"]、retentionYears、name。皆不符合時：略過垃圾郵件與病毒，其餘封存。',
    search: '搜尋',
    query: '關鍵字',
    queryHint: '中文詞（兩個字以上）、英文字（各種詞形）、"片語"',
    from: '寄件者',
    to: '收件者',
    since: '起始日期',
    until: '結束日期',
    direction: '方向',
    any: '全部',
    in: '收到',
    out: '寄出',
    internal: '內部',
    find: '搜尋',
    received: '收到時間',
    subject: '主旨',
    snippet: '符合之處',
    open: '操作',
    view: '檢視',
    noHits: '沒有符合的封存郵件。',
    page: '第 {n} 頁',
    prev: '上一頁',
    next: '下一頁',
    failed: '被拒絕：{error}',
    verify: '驗證',
    verifyHint: '重新讀取整個封存，列出每一筆被竄改、遺失或插入的紀錄。',
    runVerify: '驗證封存',
    verifyOk: '沒有問題：{records} 筆紀錄（{messages} 封郵件、{purges} 次清除、{tombstones} 個刪除標記）。',
    verifyBad: '{records} 筆紀錄中有 {n} 個問題：',
    kind: '問題',
    record: '紀錄',
    detail: '說明',
    altered: '遭竄改',
    missing: '遺失',
    inserted: '被插入',
    holds: '法律保全',
    holdsHint: '保全查詢符合的郵件永不清除，不論是否已過保存期限。語法與搜尋相同，可用 from:、to:、since:、until:、direction:。',
    holdQuery: '保全查詢',
    addHold: '新增保全',
    added: '已新增保全 {id}。',
    removeHold: '解除',
    confirmLift: '確定解除保全 {id}？',
    reallyLift: '是，解除',
    lifted: '已解除保全 {id}。',
    since2: '建立時間',
    noHolds: '沒有法律保全。',
  },
});

const DIRECTION_KEYS = ['in', 'out', 'internal'] as const;
const directionName = (d: string) => ((DIRECTION_KEYS as readonly string[]).includes(d) ? S(d as (typeof DIRECTION_KEYS)[number]) : d);

function field(label: string, el: HTMLElement, hint?: string): HTMLElement {
  return h('div', { class: 'field' }, h('label', { for: el.id }, label), el, hint ? h('small', {}, hint) : null);
}

/** The search card: the form, one page of hits, paging, and the view of the hit opened. */
function searchSection(): { card: HTMLElement; find(page: number): Promise<void> } {
  const query = h('input', { id: 'archive-query', type: 'search', autocomplete: 'off' });
  const from = h('input', { id: 'archive-from', autocomplete: 'off' });
  const to = h('input', { id: 'archive-to', autocomplete: 'off' });
  const since = h('input', { id: 'archive-since', type: 'date' });
  const until = h('input', { id: 'archive-until', type: 'date' });
  const direction = h('select', { id: 'archive-direction' }, h('option', { value: '' }, S('any')), DIRECTION_KEYS.map((d) => h('option', { value: d }, S(d))));
  const status = h('div', { class: 'search-status' });
  const results = h('div', { class: 'search-results' });
  const viewBox = h('div', { class: 'message-box' });
  const form = h(
    'form',
    { class: 'archive-search', role: 'search' },
    field(S('query'), query, S('queryHint')),
    h('div', { class: 'row' }, field(S('from'), from), field(S('to'), to), field(S('since'), since), field(S('until'), until), field(S('direction'), direction)),
    h('button', { type: 'submit', id: 'archive-find' }, S('find')),
  );

  const show = async (id: string) => {
    viewBox.replaceChildren(await messageView('archive', id, () => viewBox.replaceChildren()));
    viewBox.scrollIntoView({ block: 'start' });
  };

  const find = async (page: number) => {
    // Typed values as --name=value and the query after `--`: a value starting with -- is a value, never an option.
    const argv = ['archive', 'search'];
    const opt = (name: string, v: string) => (v.trim() ? argv.push(`--${name}=${v.trim()}`) : 0);
    opt('from', from.value);
    opt('to', to.value);
    opt('since', since.value);
    opt('until', until.value);
    opt('direction', direction.value);
    argv.push('--page', String(page));
    if (query.value.trim()) argv.push('--', query.value.trim());
    const r = await run(argv);
    if (!r.ok) {
      results.replaceChildren();
      return say(status, S('failed', { error: r.error ?? '' }), 'error');
    }
    status.replaceChildren();
    const res = r.json as SearchResult;
    const pager = h(
      'div',
      { class: 'row pager' },
      page > 1 ? actionButton(S('prev'), () => find(page - 1), { class: 'secondary prev' }) : null,
      h('span', { class: 'page-no' }, S('page', { n: fmtNumber(page) })),
      res.more ? actionButton(S('next'), () => find(page + 1), { class: 'secondary next' }) : null,
    );
    results.replaceChildren(
      table(
        res.hits,
        [
          { head: S('received'), cell: (x) => fmtTime(x.received) },
          { head: S('direction'), cell: (x) => directionName(x.direction) },
          { head: S('from'), cell: (x) => x.from },
          { head: S('to'), cell: (x) => x.to.join(', ') },
          { head: S('subject'), cell: (x) => h('span', { class: 'subject' }, x.subject) },
          { head: S('snippet'), cell: (x) => h('small', {}, x.snippet) },
          { head: S('open'), cell: (x) => h('button', { type: 'button', class: 'secondary view', 'data-id': x.id, onclick: () => void show(x.id) }, S('view')) },
        ],
        S('noHits'),
      ),
      res.hits.length || page > 1 ? pager : '',
    );
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const b = form.querySelector('button[type=submit]') as HTMLButtonElement;
    b.disabled = true;
    void find(1).finally(() => (b.disabled = false));
  });
  const card = section(S('search'), form, status, results, viewBox);
  card.classList.add('wide');
  card.id = 'archive-search';
  return { card, find };
}

function verifySection(): HTMLElement {
  const out = h('div', { class: 'verify-result' });
  const button = actionButton(S('runVerify'), async () => {
    const r = await run(['archive', 'verify']);
    if (!r.ok) return say(out, S('failed', { error: r.error ?? '' }), 'error');
    const v = r.json as VerifyOutcome;
    const counts = { records: fmtNumber(v.records), messages: fmtNumber(v.messages), purges: fmtNumber(v.purges), tombstones: fmtNumber(v.tombstones) };
    if (v.problems.length === 0) return say(out, S('verifyOk', counts), 'ok');
    say(out, S('verifyBad', { ...counts, n: fmtNumber(v.problems.length) }), 'error');
    out.append(
      table(
        v.problems,
        [
          { head: S('kind'), cell: (p) => badge(S(p.kind), 'bad') },
          { head: S('record'), cell: (p) => (p.seq !== undefined ? String(p.seq) : p.key) },
          { head: S('detail'), cell: (p) => p.detail },
        ],
        '',
      ),
    );
  }, { id: 'archive-verify' });
  return section(S('verify'), h('p', { class: 'msg info' }, S('verifyHint')), button, out);
}

async function holdsSection(): Promise<HTMLElement> {
  const status = h('div', { class: 'holds-status' });
  const list = h('div', {});
  const input = h('input', { id: 'hold-query', autocomplete: 'off' });
  const liftCell = (hold: Hold): HTMLElement => {
    const ask = h('span', {});
    const lift = h('button', { type: 'button', class: 'secondary lift' }, S('removeHold'));
    lift.addEventListener('click', () =>
      askConfirm(ask, S('confirmLift', { id: hold.id }), S('reallyLift'), async () => {
        const r = await run(['archive', 'hold', 'remove', hold.id]);
        if (!r.ok) return say(status, S('failed', { error: r.error ?? '' }), 'error');
        await reload();
        say(status, S('lifted', { id: hold.id }), 'ok');
      }, 'confirm-lift'),
    );
    return h('span', { class: 'row' }, lift, ask);
  };
  const reload = async () => {
    let holds: Hold[];
    try {
      holds = await runJson<Hold[]>(['archive', 'hold', 'list']);
    } catch (err) {
      if (err instanceof NotLoggedIn) throw err;
      list.replaceChildren();
      return say(status, S('failed', { error: (err as Error).message }), 'error');
    }
    list.replaceChildren(
      table(
        holds,
        [
          { head: S('holdQuery'), cell: (x) => h('code', {}, x.query) },
          { head: S('since2'), cell: (x) => fmtTime(x.created) },
          { head: S('open'), cell: liftCell },
        ],
        S('noHolds'),
      ),
    );
  };
  const form = h('form', { class: 'hold-add' }, field(S('holdQuery'), input), h('button', { type: 'submit' }, S('addHold')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void (async () => {
      const r = await run(['archive', 'hold', 'add', '--', input.value.trim()]);
      if (!r.ok) return say(status, S('failed', { error: r.error ?? '' }), 'error');
      input.value = '';
      await reload();
      say(status, S('added', { id: (r.json as Hold).id }), 'ok');
    })();
  });
  await reload();
  const card = section(S('holds'), h('p', { class: 'msg info' }, S('holdsHint')), list, form, status);
  card.id = 'archive-holds';
  return card;
}

export const archivePage: Page = {
  id: 'archive',
  title: () => S('title'),
  async render(root) {
    const [rules, holds] = await Promise.all([
      configForm([
        { key: 'archive.enabled', label: S('enabled') },
        { key: 'archive.retentionYears', label: S('retention') },
        { key: 'archive.rules', label: S('rulesKey'), hint: S('rulesHint') },
      ]),
      holdsSection(),
    ]);
    const search = searchSection();
    // The page opens on the newest archived mail (an empty query), so it is never blank.
    await search.find(1);
    root.append(search.card, section(S('rules'), rules), holds, verifySection());
  },
};
