// Scanning: which engines look at mail and what happens to spam and viruses (config keys under
// `scan`, saved through `config set`), and the quarantine: the held messages, each viewable
// inertly, released to its recipients or deleted (after a second, explicit click).
import { NotLoggedIn, run, runJson } from './api.js';
import { badge, h, say, section, table } from './dom.js';
import { configForm } from './forms.js';
import { fmtTime, strings } from './i18n.js';
import { messageView } from './message-view.js';
import { decodeMimeWords } from './mime-words.js';
import type { Page } from './pages.js';
import { askConfirm } from './confirm.js';

interface QuarantineRecord {
  id: string;
  envelope: { from: string; rcpt: string[]; subject?: string; login: string | null; clientIp: string };
  class: 'spam' | 'virus';
  summary: string;
  quarantined: string;
  expires: string;
}

const S = strings({
  en: {
    title: 'Scanning',
    engines: 'Scan engines',
    enginesHint: 'The built-in layer (GTUBE, EICAR, executables) always runs first; these engines add their verdicts.',
    saEnabled: 'SpamAssassin (spamd)',
    saHost: 'spamd host',
    saPort: 'spamd port',
    rspamdEnabled: 'Rspamd',
    rspamdUrl: 'Rspamd address',
    clamEnabled: 'ClamAV (clamd)',
    clamHost: 'clamd host',
    clamPort: 'clamd port',
    timeout: 'Seconds an engine may take',
    onFailure: 'When an engine is down or slow',
    defer: 'Defer (the sender retries later)',
    pass: 'Pass the message with a header',
    executables: 'Treat executable attachments (also inside zips) as viruses',
    actions: 'Actions',
    outEnabled: 'Scan mail from local senders',
    outAction: 'Spam from local senders',
    inEnabled: 'Scan mail from outside',
    inAction: 'Spam from outside',
    quarantine: 'Quarantine',
    deliver: 'Deliver with X-Spam headers',
    delete: 'Delete',
    virusAction: 'Viruses and executables',
    reject: 'Refuse (554 5.7.1)',
    quarantineDays: 'Days quarantined mail is kept',
    alertAfterHits: 'Held messages from one account in 24 h that raise an alert',
    maxBytes: 'Larger messages are not scanned (bytes)',
    held: 'Quarantine',
    when: 'Quarantined',
    kind: 'Class',
    spam: 'spam',
    virus: 'virus',
    sender: 'From',
    rcpt: 'To',
    subject: 'Subject',
    why: 'Found',
    expires: 'Deleted after',
    actionsHead: 'Actions',
    view: 'View',
    release: 'Release',
    released: '{id} released to {to}.',
    confirmDelete: 'Delete {id} for good?',
    reallyDelete: 'Yes, delete',
    deleted: '{id} deleted.',
    failed: 'Refused: {error}',
    empty: 'The quarantine is empty.',
    login: 'login {login}',
  },
  'zh-TW': {
    title: '掃描',
    engines: '掃描引擎',
    enginesHint: '內建檢查（GTUBE、EICAR、執行檔）一律先執行；以下引擎再加上各自的判定。',
    saEnabled: 'SpamAssassin（spamd）',
    saHost: 'spamd 主機',
    saPort: 'spamd 連接埠',
    rspamdEnabled: 'Rspamd',
    rspamdUrl: 'Rspamd 位址',
    clamEnabled: 'ClamAV（clamd）',
    clamHost: 'clamd 主機',
    clamPort: 'clamd 連接埠',
    timeout: '引擎可用的秒數',
    onFailure: '引擎停止或過慢時',
    defer: '延後（寄件端稍後重試）',
    pass: '加上標頭後放行',
    executables: '將執行檔附件（含壓縮檔內）視同病毒',
    actions: '處理方式',
    outEnabled: '掃描本地寄件者的郵件',
    outAction: '本地寄出的垃圾郵件',
    inEnabled: '掃描外部寄來的郵件',
    inAction: '外部寄來的垃圾郵件',
    quarantine: '隔離',
    deliver: '加上 X-Spam 標頭後投遞',
    delete: '刪除',
    virusAction: '病毒與執行檔',
    reject: '拒收（554 5.7.1）',
    quarantineDays: '隔離郵件保留天數',
    alertAfterHits: '同一帳號 24 小時內被攔下幾封即發出警示',
    maxBytes: '超過此大小的郵件不掃描（位元組）',
    held: '隔離區',
    when: '隔離時間',
    kind: '類別',
    spam: '垃圾郵件',
    virus: '病毒',
    sender: '寄件者',
    rcpt: '收件者',
    subject: '主旨',
    why: '檢出內容',
    expires: '刪除時間',
    actionsHead: '操作',
    view: '檢視',
    release: '放行',
    released: '已放行 {id}，投遞給 {to}。',
    confirmDelete: '確定永久刪除 {id}？',
    reallyDelete: '是，刪除',
    deleted: '已刪除 {id}。',
    failed: '被拒絕：{error}',
    empty: '隔離區是空的。',
    login: '登入帳號 {login}',
  },
});

/** The quarantine card: its list, the action status line, and the message view under it. */
async function quarantineSection(): Promise<HTMLElement> {
  const status = h('div', { class: 'quarantine-status' });
  const listBox = h('div', {});
  const viewBox = h('div', { class: 'message-box' });
  const card = section(S('held'), status, listBox, viewBox);
  card.classList.add('wide');
  card.id = 'quarantine';

  const show = async (id: string) => {
    viewBox.replaceChildren(await messageView('quarantine', id, () => viewBox.replaceChildren()));
  };

  const act = async (argv: string[], done: (r: QuarantineRecord | undefined) => string, id: string) => {
    const r = await run(argv);
    if (!r.ok) return say(status, S('failed', { error: r.error ?? '' }), 'error');
    if (viewBox.querySelector(`[data-message="${CSS.escape(id)}"]`)) viewBox.replaceChildren();
    await reload();
    say(status, done(r.json as QuarantineRecord | undefined), 'ok');
  };

  const deleteCell = (rec: QuarantineRecord): HTMLElement => {
    // The confirm step: a second button, so one stray click deletes nothing.
    const ask = h('span', {});
    const del = h('button', { type: 'button', class: 'danger delete' }, S('delete'));
    del.addEventListener('click', () =>
      askConfirm(ask, S('confirmDelete', { id: rec.id }), S('reallyDelete'), () => act(['quarantine', 'delete', rec.id], () => S('deleted', { id: rec.id }), rec.id), 'confirm-delete'),
    );
    return h('span', { class: 'row' }, del, ask);
  };

  const reload = async () => {
    // Refused (the HA standby holds no quarantine of its own): said in the card, the rest of the page still works.
    let list: QuarantineRecord[];
    try {
      list = await runJson<QuarantineRecord[]>(['quarantine', 'list']);
    } catch (err) {
      if (err instanceof NotLoggedIn) throw err;
      listBox.replaceChildren();
      return say(status, S('failed', { error: (err as Error).message }), 'error');
    }
    listBox.replaceChildren(
      table(
        list,
        [
          { head: S('when'), cell: (r) => fmtTime(r.quarantined) },
          { head: S('kind'), cell: (r) => badge(S(r.class === 'virus' ? 'virus' : 'spam'), r.class === 'virus' ? 'bad' : 'warn') },
          { head: S('sender'), cell: (r) => [r.envelope.from || '<>', r.envelope.login ? h('small', {}, ` (${S('login', { login: r.envelope.login })})`) : null] },
          { head: S('rcpt'), cell: (r) => r.envelope.rcpt.join(', ') },
          { head: S('subject'), cell: (r) => h('span', { class: 'subject' }, decodeMimeWords(r.envelope.subject ?? '')) },
          { head: S('why'), cell: (r) => h('small', {}, r.summary) },
          { head: S('expires'), cell: (r) => fmtTime(r.expires) },
          {
            head: S('actionsHead'),
            cell: (r) =>
              h(
                'span',
                { class: 'row actions', 'data-id': r.id },
                h('button', { type: 'button', class: 'secondary view', onclick: () => void show(r.id) }, S('view')),
                h('button', {
                  type: 'button',
                  class: 'release',
                  onclick: (ev: Event) => {
                    (ev.currentTarget as HTMLButtonElement).disabled = true;
                    void act(['quarantine', 'release', r.id], (rec) => S('released', { id: r.id, to: (rec?.envelope.rcpt ?? r.envelope.rcpt).join(', ') }), r.id);
                  },
                }, S('release')),
                deleteCell(r),
              ),
          },
        ],
        S('empty'),
      ),
    );
  };
  await reload();
  return card;
}

export const scanningPage: Page = {
  id: 'scanning',
  title: () => S('title'),
  async render(root) {
    const spamActions = { quarantine: S('quarantine'), deliver: S('deliver'), delete: S('delete') };
    const [engines, actions, held] = await Promise.all([
      configForm([
        { key: 'scan.spamassassin.enabled', label: S('saEnabled') },
        { key: 'scan.spamassassin.host', label: S('saHost') },
        { key: 'scan.spamassassin.port', label: S('saPort') },
        { key: 'scan.rspamd.enabled', label: S('rspamdEnabled') },
        { key: 'scan.rspamd.url', label: S('rspamdUrl') },
        { key: 'scan.clamav.enabled', label: S('clamEnabled') },
        { key: 'scan.clamav.host', label: S('clamHost') },
        { key: 'scan.clamav.port', label: S('clamPort') },
        { key: 'scan.timeoutSeconds', label: S('timeout') },
        { key: 'scan.onEngineFailure', label: S('onFailure'), choices: { defer: S('defer'), pass: S('pass') } },
        { key: 'scan.executables', label: S('executables') },
      ]),
      configForm([
        { key: 'scan.outbound.enabled', label: S('outEnabled') },
        { key: 'scan.outbound.action', label: S('outAction'), choices: spamActions },
        { key: 'scan.inbound.enabled', label: S('inEnabled') },
        { key: 'scan.inbound.action', label: S('inAction'), choices: spamActions },
        { key: 'scan.virusAction', label: S('virusAction'), choices: { quarantine: S('quarantine'), reject: S('reject') } },
        { key: 'scan.quarantineDays', label: S('quarantineDays') },
        { key: 'scan.alertAfterHits', label: S('alertAfterHits') },
        { key: 'scan.maxBytes', label: S('maxBytes') },
      ]),
      quarantineSection(),
    ]);
    root.append(held, section(S('engines'), h('p', { class: 'msg info' }, S('enginesHint')), engines), section(S('actions'), actions));
  },
};
