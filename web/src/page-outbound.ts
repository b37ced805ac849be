// Outbound: how mail leaves the box (MX look-ups or the ISP's smarthost, with the allowance
// the ISP gives and how much of it is used), the DKIM records to publish, and the queue
// (deferred recipients with their last error; flush, retry one, delete one after a confirm).
import { run, runJson } from './api.js';
import { changer } from './change.js';
import { askConfirm } from './confirm.js';
import { actionButton, badge, facts, h, section, table } from './dom.js';
import { configForm } from './forms.js';
import { fmtBytes, fmtNumber, fmtTime, strings } from './i18n.js';
import type { Page } from './pages.js';

interface QueueRecipient {
  address: string;
  state: string;
  attempts: number;
  lastReply: string | null;
  nextAttempt: string;
  remote?: string;
}
interface QueueEntry {
  id: string;
  from: string;
  login: string | null;
  held: boolean;
  recipients: QueueRecipient[];
  queued: string;
  size: number;
}
interface DeliveryStatus {
  queue?: { messages: number; held: number; recipients: { queued: number; deferred: number }; smarthost?: { sentLastHour: number; sentToday: number; pausedUntil: string | null; rerouted: boolean } };
  routing?: { mode: string; effective: string; smarthost: string | null };
}
interface DkimRecord {
  name: string;
  value: string;
  zoneLine: string;
}

const S = strings({
  en: {
    title: 'Outbound',
    routing: 'Routing',
    mode: 'How mail leaves',
    modeMx: 'Straight to each domain’s mail server (MX)',
    modeSmarthost: 'Through the ISP’s smarthost',
    sourceAddress: 'Local address outbound connections come from',
    sourceAddressHint: 'Empty: the system picks',
    domainRoutes: 'Per-domain routes',
    domainRoutesHint: 'A partner domain sent to a fixed host, e.g. {"partner.com": {"host": "mx.partner.com"}}',
    smarthost: 'Smarthost and its budget',
    host: 'Smarthost (name or address)',
    port: 'Port',
    user: 'Login at the smarthost (empty: none)',
    tls: 'Encryption',
    tlsNone: 'None',
    tlsStarttls: 'STARTTLS (required)',
    tlsImplicit: 'TLS from the start',
    verify: 'Check the smarthost’s certificate',
    maxHour: 'Messages per hour the ISP allows (0 = no limit)',
    maxDay: 'Messages per day the ISP allows (0 = no limit)',
    passwordNote: 'Smarthost password: {state}. It is set on the console (mlsd config set routing.smarthost.password), never shown here.',
    passwordSet: 'set',
    passwordUnset: 'not set',
    budgetUse: 'Use of the budget',
    sentHour: 'Sent in the last hour',
    sentDay: 'Sent today',
    ofLimit: '{n} of {max}',
    noLimit: '{n} (no limit)',
    pausedUntil: 'Paused by the smarthost until',
    notPaused: 'not paused',
    effective: 'Mail leaves now',
    rerouted: 'through the smarthost (our address is blacklisted)',
    dkim: 'DKIM keys',
    dkimEnabled: 'Sign outbound mail from local domains',
    selector: 'Selector',
    dkimPublish: 'Publish this TXT record in the DNS of {domain}:',
    recordName: 'Name',
    recordType: 'Type',
    recordValue: 'Value',
    zoneLine: 'Zone file line',
    noDomains: 'No local domains.',
    queue: 'Queue',
    flush: 'Try all now',
    flushed: '{n} recipient(s) due now.',
    counts: '{messages} message(s): {queued} recipient(s) waiting, {deferred} deferred, {held} message(s) held.',
    id: 'ID',
    from: 'From',
    queued: 'Queued',
    size: 'Size',
    recipients: 'Recipients',
    actions: 'Actions',
    empty: 'The queue is empty.',
    retry: 'Retry now',
    retried: '{id}: {n} recipient(s) due now.',
    del: 'Delete',
    delQ: 'Delete message {id} from the queue? It will not be delivered to: {rcpts}. No bounce is sent.',
    deleted: '{id} deleted.',
    refused: 'Refused: {error}',
    held: 'Held: sender suspended',
    attempts: '{n} attempt(s)',
    next: 'next {time}',
    state_queued: 'waiting',
    state_deferred: 'deferred',
    state_delivered: 'delivered',
    state_bounced: 'bounced',
  },
  'zh-TW': {
    title: '外寄',
    routing: '路由',
    mode: '郵件送出方式',
    modeMx: '直接送到各網域的郵件伺服器（MX）',
    modeSmarthost: '經由 ISP 的轉信主機',
    sourceAddress: '外寄連線使用的本機位址',
    sourceAddressHint: '空白：由系統選擇',
    domainRoutes: '個別網域路由',
    domainRoutesHint: '將合作網域送到固定主機，例如 {"partner.com": {"host": "mx.partner.com"}}',
    smarthost: '轉信主機與額度',
    host: '轉信主機（名稱或位址）',
    port: '連接埠',
    user: '轉信主機登入帳號（空白：不登入）',
    tls: '加密',
    tlsNone: '不加密',
    tlsStarttls: 'STARTTLS（必須）',
    tlsImplicit: '一開始即使用 TLS',
    verify: '檢查轉信主機的憑證',
    maxHour: 'ISP 允許的每小時郵件數（0 = 不限制）',
    maxDay: 'ISP 允許的每日郵件數（0 = 不限制）',
    passwordNote: '轉信主機密碼：{state}。請在主控台設定（mlsd config set routing.smarthost.password），此處不會顯示。',
    passwordSet: '已設定',
    passwordUnset: '未設定',
    budgetUse: '額度使用情形',
    sentHour: '最近一小時已送出',
    sentDay: '今日已送出',
    ofLimit: '{n} / {max}',
    noLimit: '{n}（不限制）',
    pausedUntil: '轉信主機要求暫停至',
    notPaused: '未暫停',
    effective: '目前送出方式',
    rerouted: '經由轉信主機（本機位址被列入黑名單）',
    dkim: 'DKIM 金鑰',
    dkimEnabled: '簽署本地網域的外寄郵件',
    selector: '選擇器（selector）',
    dkimPublish: '請在 {domain} 的 DNS 發布此 TXT 記錄：',
    recordName: '名稱',
    recordType: '類型',
    recordValue: '內容',
    zoneLine: '區域檔（zone）格式',
    noDomains: '沒有本地網域。',
    queue: '佇列',
    flush: '全部立即重試',
    flushed: '{n} 位收件者已排入立即傳送。',
    counts: '{messages} 封郵件：{queued} 位收件者等待中，{deferred} 位延遲，{held} 封保留中。',
    id: '編號',
    from: '寄件者',
    queued: '進入佇列',
    size: '大小',
    recipients: '收件者',
    actions: '操作',
    empty: '佇列是空的。',
    retry: '立即重試',
    retried: '{id}：{n} 位收件者已排入立即傳送。',
    del: '刪除',
    delQ: '確定從佇列刪除郵件 {id}？將不會送達：{rcpts}。不會寄出退信。',
    deleted: '已刪除 {id}。',
    refused: '遭拒絕：{error}',
    held: '保留中：寄件者已停用',
    attempts: '已嘗試 {n} 次',
    next: '下次 {time}',
    state_queued: '等待中',
    state_deferred: '延遲',
    state_delivered: '已送達',
    state_bounced: '已退信',
  },
});

type StateKey = 'state_queued' | 'state_deferred' | 'state_delivered' | 'state_bounced';
const STATE_BADGE: Record<string, 'ok' | 'warn' | 'bad' | 'idle'> = { queued: 'idle', deferred: 'warn', delivered: 'ok', bounced: 'bad' };

function stateBadge(state: string): HTMLElement {
  const key = `state_${state}` as StateKey;
  const text = state in STATE_BADGE ? S(key) : state;
  return badge(text, STATE_BADGE[state] ?? 'idle');
}

const waiting = (e: QueueEntry) => e.recipients.filter((r) => r.state === 'queued' || r.state === 'deferred');

async function budgetUse(maxPerHour: number, maxPerDay: number): Promise<HTMLElement> {
  const st = await runJson<DeliveryStatus>(['status']);
  const sh = st.queue?.smarthost;
  const use = (n: number, max: number) => (max > 0 ? S('ofLimit', { n: fmtNumber(n), max: fmtNumber(max) }) : S('noLimit', { n: fmtNumber(n) }));
  const effective = st.routing?.effective === 'smarthost' ? (st.routing.mode === 'smarthost' ? S('modeSmarthost') : S('rerouted')) : S('modeMx');
  return h(
    'div',
    { id: 'budget-use' },
    h('h3', {}, S('budgetUse')),
    facts([
      [S('effective'), effective],
      [S('sentHour'), use(sh?.sentLastHour ?? 0, maxPerHour)],
      [S('sentDay'), use(sh?.sentToday ?? 0, maxPerDay)],
      [S('pausedUntil'), sh?.pausedUntil ? fmtTime(sh.pausedUntil) : S('notPaused')],
    ]),
  );
}

async function dkimCard(): Promise<HTMLElement> {
  const [domains, form] = await Promise.all([
    runJson<string[]>(['config', 'get', 'domains']),
    configForm([
      { key: 'dkim.enabled', label: S('dkimEnabled') },
      { key: 'dkim.selector', label: S('selector') },
    ]),
  ]);
  const records = await Promise.all(domains.map(async (d) => ({ domain: d, r: await run(['dkim', 'show', d]) })));
  const list = records.length
    ? records.map(({ domain, r }) => {
        if (!r.ok) return h('p', { class: 'msg error' }, S('refused', { error: r.error ?? '' }));
        const rec = r.json as DkimRecord;
        return h(
          'div',
          { class: 'dkim-record', 'data-domain': domain },
          h('p', {}, S('dkimPublish', { domain })),
          facts([
            [S('recordName'), h('code', {}, rec.name)],
            [S('recordType'), 'TXT'],
            [S('recordValue'), h('pre', { class: 'dns' }, rec.value)],
          ]),
          h('details', {}, h('summary', {}, S('zoneLine')), h('pre', { class: 'dns' }, rec.zoneLine)),
        );
      })
    : h('p', { class: 'empty' }, S('noDomains'));
  return section(S('dkim'), form, list);
}

function queueCard(): { el: HTMLElement; load(): Promise<void> } {
  const status = h('div', { class: 'form-status', id: 'queue-status' });
  const panel = h('div', { class: 'people-panel', id: 'queue-panel' });
  const summary = h('p', { id: 'queue-counts' });
  const list = h('div', { id: 'queue-list' });

  const change = changer({ status, panel, load: () => load(), refused: (error) => S('refused', { error }) });

  const recipients = (e: QueueEntry) =>
    h(
      'div',
      {},
      e.held ? h('div', {}, badge(S('held'), 'bad')) : null,
      e.recipients.map((r) =>
        h(
          'div',
          { class: `rcpt state-${r.state}` },
          h('span', { class: 'address' }, r.address),
          ' ',
          stateBadge(r.state),
          r.attempts ? ` ${S('attempts', { n: fmtNumber(r.attempts) })}` : '',
          r.state === 'queued' || r.state === 'deferred' ? ` · ${S('next', { time: fmtTime(r.nextAttempt) })}` : '',
          r.lastReply ? h('div', { class: 'last-reply' }, r.remote ? `${r.remote}: ${r.lastReply}` : r.lastReply) : null,
        ),
      ),
    );

  const actions = (e: QueueEntry) =>
    h(
      'div',
      { class: 'row' },
      actionButton(S('retry'), async () => void (await change(['queue', 'retry', '--', e.id], (j) => S('retried', { id: e.id, n: fmtNumber(Number(j.recipients ?? 0)) }))), { class: 'secondary', 'data-action': 'retry' }),
      h(
        'button',
        {
          type: 'button',
          class: 'danger',
          'data-action': 'delete',
          onclick: () =>
            askConfirm(panel, S('delQ', { id: e.id, rcpts: waiting(e).map((r) => r.address).join(', ') || '—' }), S('del'), async () => void (await change(['queue', 'delete', '--', e.id], S('deleted', { id: e.id })))),
        },
        S('del'),
      ),
    );

  async function load(): Promise<void> {
    const q = await runJson<QueueEntry[]>(['queue', 'list']);
    const count = (state: string) => q.reduce((n, e) => n + e.recipients.filter((r) => r.state === state).length, 0);
    summary.textContent = S('counts', { messages: fmtNumber(q.length), queued: fmtNumber(count('queued')), deferred: fmtNumber(count('deferred')), held: fmtNumber(q.filter((e) => e.held).length) });
    list.replaceChildren(
      table(
        q,
        [
          { head: S('id'), cell: (e) => h('code', {}, e.id) },
          { head: S('from'), cell: (e) => h('span', { class: 'address' }, e.from || '<>') },
          { head: S('queued'), cell: (e) => fmtTime(e.queued) },
          { head: S('size'), cell: (e) => fmtBytes(e.size) },
          { head: S('recipients'), cell: recipients },
          { head: S('actions'), cell: actions },
        ],
        S('empty'),
      ),
    );
    list.querySelectorAll('tbody tr').forEach((tr, i) => {
      tr.setAttribute('data-id', q[i]!.id);
      if (q[i]!.recipients.some((r) => r.state === 'deferred')) tr.classList.add('deferred');
    });
  }

  const flush = actionButton(S('flush'), async () => void (await change(['queue', 'flush'], (j) => S('flushed', { n: fmtNumber(Number(j.recipients ?? 0)) }))), { id: 'queue-flush' });
  const el = section(S('queue'), h('div', { class: 'row' }, summary, flush), status, panel, list);
  el.classList.add('wide');
  return { el, load };
}

export const outboundPage: Page = {
  id: 'outbound',
  title: () => S('title'),
  async render(root) {
    const queue = queueCard();
    const cfg = await runJson<{ mode: string; smarthost: { password: string; maxPerHour: number; maxPerDay: number } }>(['config', 'get', 'routing']);
    const [routing, smarthost, budget, dkim] = await Promise.all([
      configForm([
        { key: 'routing.mode', label: S('mode'), choices: { mx: S('modeMx'), smarthost: S('modeSmarthost') } },
        { key: 'routing.sourceAddress', label: S('sourceAddress'), hint: S('sourceAddressHint') },
        { key: 'routing.domains', label: S('domainRoutes'), hint: S('domainRoutesHint') },
      ]),
      configForm([
        { key: 'routing.smarthost.host', label: S('host') },
        { key: 'routing.smarthost.port', label: S('port') },
        { key: 'routing.smarthost.user', label: S('user') },
        { key: 'routing.smarthost.tls', label: S('tls'), choices: { none: S('tlsNone'), starttls: S('tlsStarttls'), implicit: S('tlsImplicit') } },
        { key: 'routing.smarthost.verifyCertificate', label: S('verify') },
        { key: 'routing.smarthost.maxPerHour', label: S('maxHour') },
        { key: 'routing.smarthost.maxPerDay', label: S('maxDay') },
      ]),
      budgetUse(cfg.smarthost.maxPerHour, cfg.smarthost.maxPerDay),
      dkimCard(),
      queue.load(),
    ]);
    // The smarthost password is never put in a form: `config set` carries its value in argv,
    // which the audit trail records; the page says only whether one is set.
    const pwNote = h('p', { class: 'msg info' }, S('passwordNote', { state: cfg.smarthost.password ? S('passwordSet') : S('passwordUnset') }));
    root.append(queue.el, section(S('routing'), routing), section(S('smarthost'), smarthost, pwNote, budget), dkim);
  },
};
