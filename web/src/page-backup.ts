// Backup and restore: the targets (add, test, remove), the schedule and retention, a backup
// now, the last backup and the generations, verification, a user's backed-up mail (and one
// message fetched back), and the restore with its progress. The recovery key is shown once,
// right after the first target is added, and kept nowhere in the browser.
import { run, runJson } from './api.js';
import { askConfirm } from './confirm.js';
import { actionButton, badge, facts, h, say, section, table } from './dom.js';
import { configForm } from './forms.js';
import { fmtBytes, fmtNumber, fmtTime, strings } from './i18n.js';
import type { Page } from './pages.js';

const S = strings({
  en: {
    title: 'Backup and restore',
    targets: 'Backup targets',
    name: 'Name',
    type: 'Type',
    url: 'Address',
    user: 'Login',
    actions: 'Actions',
    noTargets: 'No backup target yet. Add one below: backups start once there is one.',
    test: 'Test',
    testOk: '{name}: reachable, login accepted, writable.',
    del: 'Delete',
    delAsk: 'Delete the backup target {name}? The backups on it stay there, but this box stops writing to it.',
    delYes: 'Yes, delete it',
    deleted: 'Backup target {name} deleted.',
    addTarget: 'Add a backup target',
    typeSmb: 'SMB share (NAS, Windows)',
    typeSftp: 'SFTP server',
    typeDir: 'Folder on the box (USB disk)',
    urlHint: 'smb://nas/share/folder, sftp://host/path or /mnt/usb/backups',
    password: 'Password',
    passwordHint: 'Empty for a folder, or an SFTP login by key',
    add: 'Add',
    added: 'Backup target {name} added.',
    keyTitle: 'Recovery key — write it down now',
    keyAdvice: 'Backups are encrypted with this key. Write it on paper and keep it away from the box: if the box’s system flash dies, its backups cannot be read without it. It is shown this once and never again.',
    keyDone: 'I have written it down',
    schedule: 'Schedule and retention',
    enabled: 'Back up every night by itself',
    at: 'Time of the nightly backup (HH:MM)',
    keepDaily: 'Daily backups kept',
    keepWeekly: 'Weekly backups kept',
    keepMonthly: 'Monthly backups kept',
    verifyDays: 'Read every file back within (days)',
    last: 'Last backup',
    lastNone: 'No backup yet.',
    when: 'When',
    target: 'Target',
    generation: 'Generation',
    files: 'Files',
    size: 'Size',
    sent: 'Sent',
    duration: 'Duration',
    next: 'Next run',
    notScheduled: 'not scheduled',
    failure: 'Last failure',
    lastVerify: 'Last verify',
    verifyLine: '{at} on {target}: {checked} files read back, {bad} bad',
    runningNow: 'Running now',
    runNow: 'Back up now',
    runDone: 'Backup done: generation {generation}, {files} files.',
    generations: 'Generations',
    noGenerations: 'No complete backup on this target yet.',
    unreachable: 'Could not list it: {error}',
    verify: 'Verify',
    verifyHelp: 'Reads back tonight’s share of the newest backup and checks it; “all” reads back everything (slow).',
    verifyAll: 'All of it',
    verifyRun: 'Verify now',
    verifyResult: '{target}: generation {generation}, {checked} files read back, {bad} bad',
    badFile: 'File',
    badReason: 'Why',
    browse: 'A user’s backed-up mail',
    browseUser: 'User (name@domain)',
    browseGen: 'Generation',
    newest: 'the newest',
    browseRun: 'Show',
    browseCount: '{n} messages of {user} in generation {generation} on {target}',
    noMessages: 'No message of this user in that backup.',
    date: 'Date',
    folder: 'Folder',
    from: 'From',
    subject: 'Subject',
    fetch: 'Put back',
    fetched: 'Put back into the mailbox: {path}',
    already: 'Already in the mailbox: {path}',
    restore: 'Restore',
    state: 'State',
    st_none: 'no restore',
    st_running: 'running',
    st_retrying: 'waiting for the target',
    st_failed: 'stopped',
    st_done: 'done',
    progress: 'Progress',
    bytes: 'Data',
    nowUser: 'Now restoring',
    eta: 'Time left',
    minutes: 'about {n} min',
    started: 'Started',
    finished: 'Finished',
    lost: 'Could not be restored',
    lostNone: 'none',
    lastError: 'Last error',
    startRestore: 'Start a restore',
    restoreHelp: 'Puts the backup back onto this box’s data disk, newest mail first. Mail keeps flowing meanwhile; what is on the disk already is kept.',
    from_: 'From target',
    restoreGo: 'Restore…',
    restoreAsk: 'Restore from {target} ({generation}) onto this box’s data disk? Backups wait until it is done.',
    restoreYes: 'Yes, restore',
    restoreStarted: 'Restore started.',
    empty: '—',
  },
  'zh-TW': {
    title: '備份與還原',
    targets: '備份目的地',
    name: '名稱',
    type: '類型',
    url: '位址',
    user: '登入帳號',
    actions: '操作',
    noTargets: '尚未設定備份目的地。請在下方新增：有目的地後才會開始備份。',
    test: '測試',
    testOk: '{name}：可連線、登入成功、可寫入。',
    del: '刪除',
    delAsk: '要刪除備份目的地 {name} 嗎？其中的備份會保留，但本機不再寫入。',
    delYes: '是，刪除',
    deleted: '已刪除備份目的地 {name}。',
    addTarget: '新增備份目的地',
    typeSmb: 'SMB 共用資料夾（NAS、Windows）',
    typeSftp: 'SFTP 伺服器',
    typeDir: '本機資料夾（USB 磁碟）',
    urlHint: 'smb://nas/share/folder、sftp://host/path 或 /mnt/usb/backups',
    password: '密碼',
    passwordHint: '資料夾或以金鑰登入 SFTP 時留空',
    add: '新增',
    added: '已新增備份目的地 {name}。',
    keyTitle: '復原金鑰——請立即抄寫下來',
    keyAdvice: '備份以此金鑰加密。請抄在紙上並與主機分開保存：主機的系統快閃記憶體損壞時，沒有它就無法讀取備份。此金鑰只顯示這一次，之後不會再顯示。',
    keyDone: '我已抄寫下來',
    schedule: '排程與保留',
    enabled: '每晚自動備份',
    at: '每晚備份時間（HH:MM）',
    keepDaily: '保留的每日備份數',
    keepWeekly: '保留的每週備份數',
    keepMonthly: '保留的每月備份數',
    verifyDays: '每個檔案於幾天內讀回檢查一次',
    last: '最近一次備份',
    lastNone: '尚無備份。',
    when: '時間',
    target: '目的地',
    generation: '備份版本',
    files: '檔案數',
    size: '大小',
    sent: '已傳送',
    duration: '耗時',
    next: '下次執行',
    notScheduled: '未排程',
    failure: '最近一次失敗',
    lastVerify: '最近一次驗證',
    verifyLine: '{at} 於 {target}：讀回 {checked} 個檔案，{bad} 個損壞',
    runningNow: '正在執行',
    runNow: '立即備份',
    runDone: '備份完成：版本 {generation}，{files} 個檔案。',
    generations: '備份版本',
    noGenerations: '此目的地尚無完整備份。',
    unreachable: '無法列出：{error}',
    verify: '驗證',
    verifyHelp: '讀回最新備份中今晚輪到的部分並檢查；「全部」會讀回所有檔案（較慢）。',
    verifyAll: '全部',
    verifyRun: '立即驗證',
    verifyResult: '{target}：版本 {generation}，讀回 {checked} 個檔案，{bad} 個損壞',
    badFile: '檔案',
    badReason: '原因',
    browse: '使用者的備份郵件',
    browseUser: '使用者（名稱@網域）',
    browseGen: '備份版本',
    newest: '最新',
    browseRun: '顯示',
    browseCount: '{user} 在 {target} 的版本 {generation} 中有 {n} 封郵件',
    noMessages: '該備份中沒有此使用者的郵件。',
    date: '日期',
    folder: '資料夾',
    from: '寄件者',
    subject: '主旨',
    fetch: '取回',
    fetched: '已放回信箱：{path}',
    already: '信箱中已有此郵件：{path}',
    restore: '還原',
    state: '狀態',
    st_none: '沒有還原作業',
    st_running: '進行中',
    st_retrying: '等待目的地',
    st_failed: '已停止',
    st_done: '完成',
    progress: '進度',
    bytes: '資料量',
    nowUser: '正在還原',
    eta: '剩餘時間',
    minutes: '約 {n} 分鐘',
    started: '開始',
    finished: '結束',
    lost: '無法還原',
    lostNone: '無',
    lastError: '最近錯誤',
    startRestore: '開始還原',
    restoreHelp: '將備份放回本機的資料磁碟，最新的郵件優先。期間郵件照常收發；磁碟上已有的檔案會保留。',
    from_: '來源目的地',
    restoreGo: '還原…',
    restoreAsk: '要從 {target}（{generation}）還原到本機的資料磁碟嗎？還原完成前不會進行備份。',
    restoreYes: '是，還原',
    restoreStarted: '已開始還原。',
    empty: '—',
  },
});

interface Target {
  name: string;
  type: 'smb' | 'sftp' | 'dir';
  url: string;
  user: string;
}

interface Restore {
  running: boolean;
  state: 'none' | 'running' | 'retrying' | 'failed' | 'done';
  percent: number | null;
  target?: string;
  generation?: string;
  filesDone?: number;
  filesTotal?: number;
  bytesDone?: number;
  bytesTotal?: number;
  lost?: number;
  lostPaths?: string[];
  currentUser?: string | null;
  etaSeconds?: number | null;
  startedAt?: string;
  finishedAt?: string | null;
  lastError?: string | null;
}

interface Status {
  last: { at: string; target: string; generation: string; files: number; bytes: number; sentBytes: number; durationMs: number } | null;
  failure: { at: string; target: string; kind: string; message: string } | null;
  verify: { at: string; target: string; checked: number; bad: number } | null;
  next: string | null;
  running: string | null;
  restore: Restore;
}

/**
 * The recovery key of the target just added: held in this module's memory only until the
 * page shows it once (never in storage, never fetched again: the box prints it only once).
 */
let freshRecoveryKey: string | null = null;

/** A generation's name (20240301T023000Z) as a time. */
function generationTime(g: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(g);
  return m ? fmtTime(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`) : g;
}

function typeName(t: string): string {
  return t === 'smb' ? S('typeSmb') : t === 'sftp' ? S('typeSftp') : t === 'dir' ? S('typeDir') : t;
}

function recoveryKeyCard(key: string): HTMLElement {
  const card = h('section', { class: 'card wide recovery-key', id: 'recovery-key', role: 'alert' }, h('h2', {}, S('keyTitle')), h('pre', { class: 'secret' }, key), h('p', {}, S('keyAdvice')));
  card.append(h('button', { type: 'button', class: 'secondary', onclick: () => card.remove() }, S('keyDone')));
  return card;
}

async function targetsCard(targets: Target[], rerender: () => Promise<void>): Promise<HTMLElement> {
  const status = h('div', { class: 'target-status' });
  const list = table(
    targets,
    [
      { head: S('name'), cell: (t) => t.name },
      { head: S('type'), cell: (t) => typeName(t.type) },
      { head: S('url'), cell: (t) => t.url },
      { head: S('user'), cell: (t) => t.user || S('empty') },
      {
        head: S('actions'),
        cell: (t) =>
          h(
            'div',
            { class: 'row' },
            actionButton(S('test'), async () => {
              say(status, '…');
              const r = await run(['backup', 'target', 'test', t.name]);
              say(status, r.ok ? S('testOk', { name: t.name }) : (r.error ?? ''), r.ok ? 'ok' : 'error');
            }, { class: 'secondary', 'data-test': t.name }),
            h('button', {
              type: 'button',
              class: 'danger',
              'data-del': t.name,
              onclick: () =>
                askConfirm(status, S('delAsk', { name: t.name }), S('delYes'), async () => {
                  const r = await run(['backup', 'target', 'del', t.name]);
                  if (!r.ok) return say(status, r.error ?? '', 'error');
                  await rerender();
                }),
            }, S('del')),
          ),
      },
    ],
    S('noTargets'),
  );

  // Adding a target: the password goes to the box on the command's standard input, never in argv (which the audit trail shows).
  const name = h('input', { id: 'bt-name', name: 'name', autocomplete: 'off', required: true });
  const type = h('select', { id: 'bt-type', name: 'type' }, (['smb', 'sftp', 'dir'] as const).map((t) => h('option', { value: t }, typeName(t))));
  const url = h('input', { id: 'bt-url', name: 'url', autocomplete: 'off', placeholder: S('urlHint') });
  const user = h('input', { id: 'bt-user', name: 'user', autocomplete: 'off' });
  const password = h('input', { id: 'bt-password', name: 'password', type: 'password', autocomplete: 'new-password' });
  const addStatus = h('div', {});
  const form = h(
    'form',
    { class: 'add-target', novalidate: true },
    h('h3', {}, S('addTarget')),
    h('div', { class: 'field' }, h('label', { for: 'bt-name' }, S('name')), name),
    h('div', { class: 'field' }, h('label', { for: 'bt-type' }, S('type')), type),
    h('div', { class: 'field' }, h('label', { for: 'bt-url' }, S('url')), url, h('small', {}, S('urlHint'))),
    h('div', { class: 'field' }, h('label', { for: 'bt-user' }, S('user')), user),
    h('div', { class: 'field' }, h('label', { for: 'bt-password' }, S('password')), password, h('small', {}, S('passwordHint'))),
    h('button', { type: 'submit', id: 'bt-add' }, S('add')),
    addStatus,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void (async () => {
      // Typed values as --name=value and the name after `--`: a value starting with -- stays a value.
      const argv = ['backup', 'target', 'add', `--type=${type.value}`, `--url=${url.value}`];
      if (user.value) argv.push(`--user=${user.value}`);
      argv.push('--', name.value);
      const r = await run(argv, password.value === '' ? undefined : password.value);
      password.value = '';
      if (!r.ok) return say(addStatus, r.error ?? '', 'error');
      freshRecoveryKey = (r.json as { recoveryKey?: string } | undefined)?.recoveryKey ?? null;
      await rerender();
    })();
  });
  return h('section', { class: 'card wide', id: 'backup-targets' }, h('h2', {}, S('targets')), list, status, form);
}

function lastCard(st: Status, rerender: () => Promise<void>): HTMLElement {
  const out = h('div', {});
  const l = st.last;
  const body = h(
    'div',
    { id: 'backup-last' },
    l
      ? facts([
          [S('when'), fmtTime(l.at)],
          [S('target'), l.target],
          [S('generation'), h('span', { class: 'generation' }, l.generation)],
          [S('files'), fmtNumber(l.files)],
          [S('size'), fmtBytes(l.bytes)],
          [S('sent'), fmtBytes(l.sentBytes)],
          [S('duration'), `${(l.durationMs / 1000).toFixed(1)} s`],
        ])
      : h('p', { class: 'empty' }, S('lastNone')),
    facts([
      [S('next'), st.next ? fmtTime(st.next) : S('notScheduled')],
      ...(st.failure ? ([[S('failure'), h('span', { class: 'msg error' }, `${fmtTime(st.failure.at)} ${st.failure.target}: ${st.failure.kind}: ${st.failure.message}`)]] as [string, HTMLElement][]) : []),
      ...(st.verify ? ([[S('lastVerify'), S('verifyLine', { at: fmtTime(st.verify.at), target: st.verify.target, checked: st.verify.checked, bad: st.verify.bad })]] as [string, string][]) : []),
      ...(st.running ? ([[S('runningNow'), st.running]] as [string, string][]) : []),
    ]),
  );
  const button = actionButton(S('runNow'), async () => {
    say(out, '…');
    const r = await run(['backup', 'run']);
    if (!r.ok) return say(out, r.error ?? '', 'error');
    await rerender();
  }, { id: 'backup-run' });
  return section(S('last'), body, h('div', { class: 'row' }, button), out);
}

async function generationsCard(targets: Target[]): Promise<{ card: HTMLElement; names: Map<string, string[]> }> {
  const names = new Map<string, string[]>();
  const body = h('div', { id: 'backup-generations' });
  for (const t of targets) {
    const r = await run(['backup', 'generations', '--target', t.name]);
    body.append(h('h3', {}, t.name));
    if (!r.ok) {
      body.append(h('p', { class: 'msg error' }, S('unreachable', { error: r.error ?? '' })));
      continue;
    }
    const gens = [...((r.json as { generations: string[] }[])[0]?.generations ?? [])].reverse();
    names.set(t.name, gens);
    body.append(table(gens, [{ head: S('generation'), cell: (g) => h('span', { class: 'generation' }, g) }, { head: S('when'), cell: (g) => generationTime(g) }], S('noGenerations')));
  }
  return { card: section(S('generations'), body), names };
}

function verifyCard(): HTMLElement {
  const full = h('input', { type: 'checkbox', id: 'verify-full' });
  const out = h('div', { id: 'verify-result' });
  const button = actionButton(S('verifyRun'), async () => {
    say(out, '…');
    const r = await run(['backup', 'verify', ...(full.checked ? ['--full'] : [])]);
    const results = r.json as { target: string; generation: string | null; checked: number; bad: { path: string; reason: string }[] }[] | undefined;
    if (!results) return say(out, r.error ?? '', 'error');
    out.replaceChildren(
      ...results.flatMap((v) => [
        h('p', { class: `msg ${v.bad.length ? 'error' : 'ok'}` }, S('verifyResult', { target: v.target, generation: v.generation ?? S('empty'), checked: v.checked, bad: v.bad.length })),
        v.bad.length ? table(v.bad, [{ head: S('badFile'), cell: (b) => b.path }, { head: S('badReason'), cell: (b) => b.reason }], '') : null,
      ].filter((x): x is HTMLElement => x !== null)),
    );
  }, { id: 'verify-run' });
  return section(S('verify'), h('p', {}, S('verifyHelp')), h('div', { class: 'row' }, h('label', {}, full, ' ', S('verifyAll')), button), out);
}

function browseCard(targets: Target[], generations: Map<string, string[]>): HTMLElement {
  const user = h('input', { id: 'browse-user', placeholder: 'name@example.com', autocomplete: 'off' });
  const target = h('select', { id: 'browse-target' }, targets.map((t) => h('option', { value: t.name }, t.name)));
  const gen = h('select', { id: 'browse-gen' });
  const fillGens = () => gen.replaceChildren(h('option', { value: '' }, S('newest')), ...(generations.get(target.value) ?? []).map((g) => h('option', { value: g }, `${generationTime(g)} (${g})`)));
  target.addEventListener('change', fillGens);
  fillGens();
  const out = h('div', { id: 'browse-result' });
  const opts = () => [`--target=${target.value}`, ...(gen.value ? [`--generation=${gen.value}`] : [])];
  const show = async () => {
    say(out, '…');
    const r = await run(['backup', 'browse', ...opts(), '--', user.value.trim()]);
    if (!r.ok) return say(out, r.error ?? '', 'error');
    const b = r.json as { target: string; generation: string; messages: { id: string; folder: string; size: number; date: string | null; from: string; subject: string }[] };
    const line = h('div', {});
    out.replaceChildren(
      h('p', {}, S('browseCount', { n: b.messages.length, user: user.value.trim(), generation: b.generation, target: b.target })),
      line,
      table(
        b.messages,
        [
          { head: S('date'), cell: (m) => fmtTime(m.date) },
          { head: S('folder'), cell: (m) => m.folder },
          { head: S('from'), cell: (m) => m.from },
          { head: S('subject'), cell: (m) => m.subject },
          { head: S('size'), cell: (m) => fmtBytes(m.size) },
          {
            head: S('actions'),
            cell: (m) =>
              actionButton(S('fetch'), async () => {
                const f = await run(['backup', 'fetch', `--target=${b.target}`, `--generation=${b.generation}`, '--', user.value.trim(), m.id]);
                const res = f.json as { path: string; already: boolean } | undefined;
                if (!f.ok || !res) return say(line, f.error ?? '', 'error');
                say(line, S(res.already ? 'already' : 'fetched', { path: res.path }), 'ok');
              }, { class: 'secondary' }),
          },
        ],
        S('noMessages'),
      ),
    );
  };
  const form = h('form', { class: 'row', novalidate: true }, h('div', { class: 'field' }, h('label', { for: 'browse-user' }, S('browseUser')), user), h('div', { class: 'field' }, h('label', { for: 'browse-target' }, S('target')), target), h('div', { class: 'field' }, h('label', { for: 'browse-gen' }, S('browseGen')), gen), h('button', { type: 'submit', id: 'browse-run' }, S('browseRun')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void show();
  });
  return h('section', { class: 'card wide' }, h('h2', {}, S('browse')), form, out);
}

const stateBadge = (r: Restore) => badge(S(`st_${r.state}` as 'st_none'), r.state === 'done' ? (r.lost ? 'warn' : 'ok') : r.state === 'running' ? 'ok' : r.state === 'none' ? 'idle' : 'bad');

/** The restore's progress as facts; the element carries its state and percent for a reader in a hurry (and the tests). */
function restoreProgress(r: Restore): HTMLElement {
  const el = h('div', { id: 'restore-progress', 'data-state': r.state, 'data-percent': r.percent ?? '' });
  if (r.state === 'none') {
    el.append(h('p', { class: 'empty' }, S('st_none')));
    return el;
  }
  const bar = h('progress', { max: 100 });
  bar.value = r.percent ?? 0;
  el.append(
    facts([
      [S('state'), stateBadge(r)],
      [S('progress'), [bar, h('span', { class: 'restore-percent' }, `${r.percent ?? 0}%`)]],
      [S('target'), `${r.target ?? ''} (${r.generation ?? ''})`],
      [S('files'), `${fmtNumber(r.filesDone ?? 0)} / ${fmtNumber(r.filesTotal ?? 0)}`],
      [S('bytes'), `${fmtBytes(r.bytesDone ?? 0)} / ${fmtBytes(r.bytesTotal ?? 0)}`],
      ...(r.currentUser ? ([[S('nowUser'), r.currentUser]] as [string, string][]) : []),
      ...(r.running && r.etaSeconds != null ? ([[S('eta'), S('minutes', { n: Math.max(1, Math.ceil(r.etaSeconds / 60)) })]] as [string, string][]) : []),
      [S('started'), fmtTime(r.startedAt)],
      ...(r.finishedAt ? ([[S('finished'), fmtTime(r.finishedAt)]] as [string, string][]) : []),
      [S('lost'), r.lost ? h('span', { class: 'msg error restore-lost' }, fmtNumber(r.lost)) : S('lostNone')],
      ...(r.lastError ? ([[S('lastError'), r.lastError]] as [string, string][]) : []),
    ]),
  );
  if (r.lostPaths?.length) el.append(h('ul', { class: 'lost-paths' }, r.lostPaths.map((p) => h('li', {}, p))));
  return el;
}

function restoreCard(root: HTMLElement, first: Restore, targets: Target[], generations: Map<string, string[]>): HTMLElement {
  const progress = h('div', {}, restoreProgress(first));
  // While a restore runs its progress is asked for every 2 s; the timer ends with the page.
  let timer: number | null = null;
  const poll = () => {
    if (timer !== null) return;
    timer = window.setInterval(() => {
      if (!root.isConnected) {
        window.clearInterval(timer!);
        timer = null;
        return;
      }
      void run(['restore', 'status'], undefined, { background: true }).then((r) => {
        if (!r.ok || !root.isConnected) return;
        const now = r.json as Restore;
        progress.replaceChildren(restoreProgress(now));
        if (!now.running) {
          window.clearInterval(timer!);
          timer = null;
        }
      });
    }, 2000);
  };
  if (first.running) poll();

  const target = h('select', { id: 'restore-target' }, targets.map((t) => h('option', { value: t.name }, t.name)));
  const gen = h('select', { id: 'restore-gen' });
  const fillGens = () => gen.replaceChildren(h('option', { value: '' }, S('newest')), ...(generations.get(target.value) ?? []).map((g) => h('option', { value: g }, `${generationTime(g)} (${g})`)));
  target.addEventListener('change', fillGens);
  fillGens();
  const ask = h('div', {});
  const go = h('button', {
    type: 'button',
    id: 'restore-start',
    class: 'danger',
    onclick: () =>
      askConfirm(ask, S('restoreAsk', { target: target.value, generation: gen.value || S('newest') }), S('restoreYes'), async () => {
        const r = await run(['restore', 'start', '--from', target.value, ...(gen.value ? ['--generation', gen.value] : [])]);
        if (!r.ok) return say(ask, r.error ?? '', 'error');
        say(ask, S('restoreStarted'), 'ok');
        const now = await runJson<Restore>(['restore', 'status']);
        progress.replaceChildren(restoreProgress(now));
        poll();
      }),
  }, S('restoreGo'));
  const start = targets.length
    ? h('div', {}, h('h3', {}, S('startRestore')), h('p', {}, S('restoreHelp')), h('div', { class: 'row' }, h('div', { class: 'field' }, h('label', { for: 'restore-target' }, S('from_')), target), h('div', { class: 'field' }, h('label', { for: 'restore-gen' }, S('browseGen')), gen), go), ask)
    : null;
  return h('section', { class: 'card wide', id: 'restore' }, h('h2', {}, S('restore')), progress, start);
}

export const backupPage: Page = {
  id: 'backup',
  title: () => S('title'),
  async render(root) {
    const rerender = async () => {
      root.replaceChildren();
      await backupPage.render(root);
    };
    const [targets, status] = await Promise.all([runJson<Target[]>(['backup', 'target', 'list']), runJson<Status>(['backup', 'status'])]);
    const key = freshRecoveryKey;
    freshRecoveryKey = null;
    const [tcard, schedule, gens] = await Promise.all([
      targetsCard(targets, rerender),
      configForm([
        { key: 'backup.schedule.enabled', label: S('enabled') },
        { key: 'backup.schedule.at', label: S('at') },
        { key: 'backup.keep.daily', label: S('keepDaily') },
        { key: 'backup.keep.weekly', label: S('keepWeekly') },
        { key: 'backup.keep.monthly', label: S('keepMonthly') },
        { key: 'backup.verifyDays', label: S('verifyDays') },
      ]),
      generationsCard(targets),
    ]);
    root.append(
      ...(key ? [recoveryKeyCard(key)] : []),
      lastCard(status, rerender),
      gens.card,
      tcard,
      section(S('schedule'), schedule),
      verifyCard(),
      restoreCard(root, status.restore, targets, gens.names),
      ...(targets.length ? [browseCard(targets, gens.names)] : []),
    );
  },
};
