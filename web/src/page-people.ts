// People: the local mail domains, the users (add, password, suspend and unlock with the
// evidence of why a suspension happened, delete) and the aliases. Every change is a command
// (`user ...`, `alias ...`) the box checks; a password travels as the command's stdin, never
// in its argv (which the audit trail records). Addresses go after `--`, so one that starts
// with `--` is an address the box judges, not an option.
import { runJson } from './api.js';
import { changer } from './change.js';
import { askConfirm } from './confirm.js';
import { actionButton, badge, facts, h, section, table } from './dom.js';
import { configForm } from './forms.js';
import { fmtNumber, fmtTime, strings } from './i18n.js';
import type { Page } from './pages.js';

interface Suspension {
  since: string;
  reason: string;
  evidence?: Record<string, string | number>;
}
interface UserRow {
  address: string;
  created: string;
  suspended: Suspension | null;
}
interface AliasRow {
  address: string;
  members: string[];
  senders: string[];
}

const S = strings({
  en: {
    title: 'People',
    domains: 'Local mail domains',
    domainsLabel: 'Domains this box takes mail for',
    domainsHint: 'One per line, e.g. example.com; users and aliases are made in these',
    users: 'Users',
    address: 'Address',
    password: 'Password',
    passwordHint: 'At least 8 characters',
    addUser: 'Add user',
    created: 'Created',
    state: 'State',
    active: 'Active',
    suspended: 'Suspended from sending',
    evidence: 'Why suspended',
    actions: 'Actions',
    noUsers: 'No users yet.',
    changePassword: 'Change password',
    newPasswordFor: 'New password for {address}',
    savePassword: 'Save password',
    passwordChanged: 'Password changed for {address}.',
    suspend: 'Suspend',
    suspendTitle: 'Suspend {address} from sending: open sessions are cut and its queued mail is held. It still receives mail.',
    suspendReason: 'Reason (optional)',
    suspendedOk: '{address} is suspended from sending.',
    unlock: 'Unlock',
    unlocked: '{address} may send again; {n} held message(s) released.',
    del: 'Delete',
    delUserQ: 'Delete the user {address}? Its mailbox stays on the data disk.',
    deleted: '{address} deleted.',
    added: '{address} added.',
    refused: 'Refused: {error}',
    since: 'Since',
    reason: 'Reason',
    evLimitName: 'Threshold',
    evUsed: 'Counted today',
    evLimit: 'Limit',
    evMessagesToday: 'Messages today',
    evClientIps: 'Client addresses',
    evSampleSubjects: 'Sample subjects',
    evRefusedAttempts: 'Attempts refused at the limit',
    evBy: 'Suspended by',
    administrator: 'the administrator',
    limitMessages: 'Messages per login per day',
    limitNewRcpt: 'New recipients per login per day',
    aliases: 'Aliases',
    aliasTo: 'Delivers to',
    aliasToHint: 'Addresses, separated by commas or one per line',
    aliasSenders: 'Logins that may send as it (optional)',
    addAlias: 'Add alias',
    senders: 'May send as it',
    noAliases: 'No aliases yet.',
    delAliasQ: 'Delete the alias {address}?',
    aliasAdded: 'Alias {address} added.',
    aliasDeleted: 'Alias {address} deleted.',
  },
  'zh-TW': {
    title: '人員',
    domains: '本地郵件網域',
    domainsLabel: '本機收信的網域',
    domainsHint: '每行一個，例如 example.com；使用者與別名建立在這些網域中',
    users: '使用者',
    address: '位址',
    password: '密碼',
    passwordHint: '至少 8 個字元',
    addUser: '新增使用者',
    created: '建立時間',
    state: '狀態',
    active: '正常',
    suspended: '已停止寄信',
    evidence: '停用原因',
    actions: '操作',
    noUsers: '尚無使用者。',
    changePassword: '變更密碼',
    newPasswordFor: '{address} 的新密碼',
    savePassword: '儲存密碼',
    passwordChanged: '已變更 {address} 的密碼。',
    suspend: '停用',
    suspendTitle: '停止 {address} 寄信：中斷已開啟的連線並保留其佇列中的郵件。仍可收信。',
    suspendReason: '原因（選填）',
    suspendedOk: '已停止 {address} 寄信。',
    unlock: '解除停用',
    unlocked: '{address} 可再次寄信；已放行 {n} 封保留的郵件。',
    del: '刪除',
    delUserQ: '確定刪除使用者 {address}？其信箱仍保留在資料磁碟上。',
    deleted: '已刪除 {address}。',
    added: '已新增 {address}。',
    refused: '遭拒絕：{error}',
    since: '停用時間',
    reason: '原因',
    evLimitName: '觸發的門檻',
    evUsed: '今日計數',
    evLimit: '上限',
    evMessagesToday: '今日郵件數',
    evClientIps: '用戶端位址',
    evSampleSubjects: '郵件主旨範例',
    evRefusedAttempts: '達上限後被拒的嘗試',
    evBy: '停用者',
    administrator: '管理者',
    limitMessages: '每個登入帳號每日郵件數',
    limitNewRcpt: '每個登入帳號每日新收件者數',
    aliases: '別名',
    aliasTo: '轉送至',
    aliasToHint: '位址，以逗號分隔或每行一個',
    aliasSenders: '可用此別名寄信的登入帳號（選填）',
    addAlias: '新增別名',
    senders: '可用此別名寄信',
    noAliases: '尚無別名。',
    delAliasQ: '確定刪除別名 {address}？',
    aliasAdded: '已新增別名 {address}。',
    aliasDeleted: '已刪除別名 {address}。',
  },
});

/** The evidence fields the box records, in the reader's words; others are shown by their name. */
const EVIDENCE_LABELS = {
  limitName: 'evLimitName',
  used: 'evUsed',
  limit: 'evLimit',
  messagesToday: 'evMessagesToday',
  clientIps: 'evClientIps',
  sampleSubjects: 'evSampleSubjects',
  refusedAttempts: 'evRefusedAttempts',
  by: 'evBy',
} as const;

const LIMIT_NAMES: Record<string, 'limitMessages' | 'limitNewRcpt'> = {
  'thresholds.perAccountMessagesPerDay': 'limitMessages',
  'thresholds.perAccountNewRecipientsPerDay': 'limitNewRcpt',
};

function evidenceValue(key: string, v: string | number): string {
  if (typeof v === 'number') return fmtNumber(v);
  const limit = LIMIT_NAMES[v];
  if (key === 'limitName' && limit) return `${S(limit)} (${v})`;
  if (key === 'by' && v === 'administrator') return S('administrator');
  return v;
}

function evidence(s: Suspension): HTMLElement {
  const rows: [string, string][] = [
    [S('since'), fmtTime(s.since)],
    [S('reason'), s.reason],
  ];
  for (const [k, v] of Object.entries(s.evidence ?? {})) {
    if (v === '' || (k === 'sampleSubjects' && !v)) continue;
    const label = (EVIDENCE_LABELS as Record<string, (typeof EVIDENCE_LABELS)[keyof typeof EVIDENCE_LABELS] | undefined>)[k];
    rows.push([label ? S(label) : k, evidenceValue(k, v)]);
  }
  return h('div', { class: 'evidence' }, facts(rows));
}

/** Addresses typed with commas, spaces or one per line, as the box's list option wants them. */
const addressList = (text: string) => text.split(/[\s,]+/).map((a) => a.trim()).filter(Boolean);

function field(id: string, label: string, input: HTMLElement, hint?: string): HTMLElement {
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', {}, hint) : null);
}

function usersCard(): { el: HTMLElement; load(): Promise<void> } {
  const status = h('div', { class: 'form-status', id: 'users-status' });
  const panel = h('div', { class: 'people-panel', id: 'user-panel' });
  const list = h('div', { id: 'users-list' });
  const address = h('input', { type: 'text', name: 'address', autocomplete: 'off', placeholder: 'user@example.com' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'new-password' });

  const change = changer({ status, panel, load: () => load(), refused: (error) => S('refused', { error }) });

  const passwordPanel = (u: UserRow) => {
    const pw = h('input', { type: 'password', autocomplete: 'new-password' });
    const form = h('form', { class: 'row', id: 'passwd-form' }, field('passwd-input', S('newPasswordFor', { address: u.address }), pw, S('passwordHint')), h('button', { type: 'submit' }, S('savePassword')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void change(['user', 'passwd', '--', u.address], S('passwordChanged', { address: u.address }), pw.value).finally(() => (pw.value = ''));
    });
    panel.replaceChildren(form);
    pw.focus();
  };

  const suspendPanel = (u: UserRow) => {
    const reason = h('input', { type: 'text', autocomplete: 'off' });
    const form = h(
      'form',
      { class: 'confirm', id: 'suspend-form' },
      h('p', {}, S('suspendTitle', { address: u.address })),
      h('div', { class: 'row' }, field('suspend-reason', S('suspendReason'), reason), h('button', { type: 'submit', class: 'danger' }, S('suspend'))),
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const why = reason.value.trim();
      void change(['user', 'suspend', ...(why ? [`--reason=${why}`] : []), '--', u.address], S('suspendedOk', { address: u.address }));
    });
    panel.replaceChildren(form);
  };

  const actions = (u: UserRow) =>
    h(
      'div',
      { class: 'row' },
      h('button', { type: 'button', class: 'secondary', 'data-action': 'passwd', onclick: () => passwordPanel(u) }, S('changePassword')),
      u.suspended
        ? actionButton(
            S('unlock'),
            async () => void (await change(['user', 'unlock', '--', u.address], (j) => S('unlocked', { address: u.address, n: fmtNumber(Number(j.released ?? 0)) }))),
            { class: 'secondary', 'data-action': 'unlock' },
          )
        : h('button', { type: 'button', class: 'secondary', 'data-action': 'suspend', onclick: () => suspendPanel(u) }, S('suspend')),
      h(
        'button',
        {
          type: 'button',
          class: 'danger',
          'data-action': 'delete',
          onclick: () => askConfirm(panel, S('delUserQ', { address: u.address }), S('del'), async () => void (await change(['user', 'del', '--', u.address], S('deleted', { address: u.address })))),
        },
        S('del'),
      ),
    );

  async function load(): Promise<void> {
    const users = await runJson<UserRow[]>(['user', 'list']);
    list.replaceChildren(
      table(
        users,
        [
          { head: S('address'), cell: (u) => h('span', { class: 'address' }, u.address) },
          { head: S('created'), cell: (u) => fmtTime(u.created) },
          { head: S('state'), cell: (u) => (u.suspended ? badge(S('suspended'), 'bad') : badge(S('active'), 'ok')) },
          { head: S('evidence'), cell: (u) => (u.suspended ? evidence(u.suspended) : '—') },
          { head: S('actions'), cell: actions },
        ],
        S('noUsers'),
      ),
    );
    // Rows are found by their address (tests, and a reader's browser search).
    list.querySelectorAll('tbody tr').forEach((tr, i) => tr.setAttribute('data-address', users[i]!.address));
  }

  const add = h('form', { class: 'row', id: 'user-add-form' }, field('user-address', S('address'), address), field('user-password', S('password'), password, S('passwordHint')), h('button', { type: 'submit', id: 'user-add' }, S('addUser')));
  add.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const a = address.value.trim();
    void change(['user', 'add', '--', a], S('added', { address: a }), password.value).then((ok) => {
      password.value = '';
      if (ok) address.value = '';
    });
  });
  const el = section(S('users'), add, status, panel, list);
  el.classList.add('wide');
  return { el, load };
}

function aliasesCard(): { el: HTMLElement; load(): Promise<void> } {
  const status = h('div', { class: 'form-status', id: 'aliases-status' });
  const panel = h('div', { class: 'people-panel', id: 'alias-panel' });
  const list = h('div', { id: 'aliases-list' });
  const address = h('input', { type: 'text', autocomplete: 'off', placeholder: 'sales@example.com' });
  const to = h('textarea', { rows: 2 });
  const senders = h('textarea', { rows: 2 });

  const change = changer({ status, panel, load: () => load(), refused: (error) => S('refused', { error }) });

  async function load(): Promise<void> {
    const aliases = await runJson<AliasRow[]>(['alias', 'list']);
    const lines = (xs: string[]) => (xs.length ? xs.map((x) => h('div', {}, x)) : '—');
    list.replaceChildren(
      table(
        aliases,
        [
          { head: S('address'), cell: (a) => h('span', { class: 'address' }, a.address) },
          { head: S('aliasTo'), cell: (a) => lines(a.members) },
          { head: S('senders'), cell: (a) => lines(a.senders) },
          {
            head: S('actions'),
            cell: (a) =>
              h(
                'button',
                {
                  type: 'button',
                  class: 'danger',
                  'data-action': 'delete',
                  onclick: () => askConfirm(panel, S('delAliasQ', { address: a.address }), S('del'), async () => void (await change(['alias', 'del', '--', a.address], S('aliasDeleted', { address: a.address })))),
                },
                S('del'),
              ),
          },
        ],
        S('noAliases'),
      ),
    );
    list.querySelectorAll('tbody tr').forEach((tr, i) => tr.setAttribute('data-address', aliases[i]!.address));
  }

  const add = h(
    'form',
    { class: 'row', id: 'alias-add-form' },
    field('alias-address', S('address'), address),
    field('alias-to', S('aliasTo'), to, S('aliasToHint')),
    field('alias-senders', S('aliasSenders'), senders),
    h('button', { type: 'submit', id: 'alias-add' }, S('addAlias')),
  );
  add.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const a = address.value.trim();
    const members = addressList(to.value);
    const may = addressList(senders.value);
    // `--to=` with nothing after it is refused by the box with the option named.
    const argv = ['alias', 'add', `--to=${members.join(',')}`, ...(may.length ? [`--senders=${may.join(',')}`] : []), '--', a];
    void change(argv, S('aliasAdded', { address: a })).then((ok) => {
      if (ok) for (const i of [address, to, senders]) i.value = '';
    });
  });
  const el = section(S('aliases'), add, status, panel, list);
  el.classList.add('wide');
  return { el, load };
}

export const peoplePage: Page = {
  id: 'people',
  title: () => S('title'),
  async render(root) {
    const users = usersCard();
    const aliases = aliasesCard();
    const [domains] = await Promise.all([configForm([{ key: 'domains', label: S('domainsLabel'), hint: S('domainsHint') }]), users.load(), aliases.load()]);
    root.append(section(S('domains'), domains), users.el, aliases.el);
  },
};
