// Dashboard: the first page after login. Mail in and out per hour and per day, the queue and the
// thresholds near their limits, the HA pair, the disk, backup and restore, the DNSBL watch, and
// the newest events, from three commands asked in parallel (`mail stats`, `status`, `events
// list`), refreshed every 30 s while the page is on screen.
import { runJson, NotLoggedIn } from './api.js';
import { barChart, type ChartBucket } from './chart.js';
import { badge, facts, h, section, table } from './dom.js';
import { fmtNumber, fmtTime, lang, strings } from './i18n.js';
import type { Page } from './pages.js';

const S = strings({
  en: {
    title: 'Dashboard',
    traffic: 'Mail traffic',
    hours: 'Last 24 hours (per hour, local time)',
    days: 'Last 30 days (per day, box time zone {tz})',
    mailIn: 'In',
    mailOut: 'Out',
    summary: '{in} in, {out} out, {failed} failed',
    in24: 'In, last 24 h',
    out24: 'Out, last 24 h',
    failed24: 'Failed, last 24 h',
    queue: 'Queue',
    queued: 'Messages in the queue',
    recipientsQueued: 'Recipients waiting',
    deferred: 'Recipients deferred',
    held: 'Held',
    spoolPending: 'Accepted, not yet queued',
    queueOk: 'flowing',
    queueDeferred: 'deferred mail',
    near: 'Near limits',
    nearNone: 'No counter is near its limit.',
    limit: 'Threshold',
    who: 'Address or login',
    used: 'Used',
    reached: 'reached',
    close: 'close',
    ha: 'High availability',
    haOff: 'HA is not enabled on this box.',
    role: 'This box',
    peer: 'Peer',
    peerUnknown: 'not heard yet',
    links: 'Links',
    serial: 'serial',
    network: 'network',
    lastHeard: 'Last heard',
    secondsAgo: '{n} s ago',
    replication: 'Replication',
    oneDisk: 'Messages on one disk only',
    atRisk: 'at risk',
    inSync: 'in sync',
    notInSync: 'not in sync',
    disk: 'Disk',
    diskMissing: 'no data disk',
    diskFailing: 'failing',
    diskHealthy: 'healthy',
    diskFull: 'nearly full',
    used2: 'Used',
    backup: 'Backup',
    backupNone: 'Not set up: add a backup target on the Backup page.',
    lastBackup: 'Last good backup',
    never: 'none yet',
    generation: 'Generation',
    target: 'Target',
    next: 'Next',
    lastError: 'Last run failed',
    backupOk: 'ok',
    backupFailed: 'failed',
    backupNever: 'no backup yet',
    running: 'running',
    restore: 'Restore',
    restoreNone: 'No restore running.',
    restoreDone: 'done',
    restoreRetrying: 'waiting for the target',
    progress: 'Progress',
    files: 'Files',
    dnsbl: 'Blacklists (DNSBL)',
    dnsblNone: 'No address is watched.',
    address: 'Address',
    label: 'Which',
    state: 'State',
    listedOn: 'Listed on',
    listed: 'listed',
    clear: 'clear',
    own: 'this box',
    alarms: 'Alarms',
    alarmsNone: 'none unacknowledged',
    alarmsSome: '{n} unacknowledged',
    latest: 'Latest',
    events: 'Newest events',
    eventsNone: 'No events yet.',
    time: 'Time',
    severity: 'Severity',
    kind: 'Kind',
    text: 'What happened',
    info: 'info',
    warning: 'warning',
    critical: 'critical',
    notHere: 'Not shown on this box (it is not serving).',
    updated: 'Updated {time}; refreshed every 30 s.',
    refreshFailed: 'Refresh failed: {error}',
    active: 'active',
    standby: 'standby',
    unreachable: 'unreachable',
    up: 'up',
    down: 'down',
    notConfigured: 'not configured',
    perIpMessagesPerMinute: 'Messages per address per minute',
    perIpRecipientsPerMinute: 'Recipients per address per minute',
    perIpMessagesPerDay: 'Messages per address per day',
    perAccountMessagesPerDay: 'Messages per login per day',
    perAccountNewRecipientsPerDay: 'New recipients per login per day',
    perIpConnectionsPerMinute: 'Connections per address per minute',
    perIpConcurrentConnections: 'Open connections per address',
    perSubnetConcurrentConnections: 'Open connections per network',
  },
  'zh-TW': {
    title: '儀表板',
    traffic: '郵件流量',
    hours: '最近 24 小時（每小時，本地時間）',
    days: '最近 30 天（每日，主機時區 {tz}）',
    mailIn: '收信',
    mailOut: '寄出',
    summary: '收信 {in}、寄出 {out}、失敗 {failed}',
    in24: '收信（24 小時）',
    out24: '寄出（24 小時）',
    failed24: '失敗（24 小時）',
    queue: '佇列',
    queued: '佇列中的郵件',
    recipientsQueued: '等待中的收件者',
    deferred: '延遲的收件者',
    held: '暫停',
    spoolPending: '已收下、尚未入佇列',
    queueOk: '順暢',
    queueDeferred: '有延遲郵件',
    near: '接近門檻',
    nearNone: '沒有計數接近門檻。',
    limit: '門檻',
    who: '位址或登入帳號',
    used: '已用',
    reached: '已達上限',
    close: '接近',
    ha: '高可用性',
    haOff: '此主機未啟用高可用性。',
    role: '本機',
    peer: '對端',
    peerUnknown: '尚未收到訊息',
    links: '連線',
    serial: '序列埠',
    network: '網路',
    lastHeard: '最後收到',
    secondsAgo: '{n} 秒前',
    replication: '同步',
    oneDisk: '僅存於一顆磁碟的郵件',
    atRisk: '有風險',
    inSync: '已同步',
    notInSync: '未同步',
    disk: '磁碟',
    diskMissing: '沒有資料磁碟',
    diskFailing: '故障中',
    diskHealthy: '健康',
    diskFull: '即將用滿',
    used2: '使用率',
    backup: '備份',
    backupNone: '尚未設定：請在「備份」頁面新增備份目標。',
    lastBackup: '最近一次成功備份',
    never: '尚無',
    generation: '世代',
    target: '目標',
    next: '下次',
    lastError: '上次執行失敗',
    backupOk: '正常',
    backupFailed: '失敗',
    backupNever: '尚未備份',
    running: '執行中',
    restore: '還原',
    restoreNone: '目前沒有進行中的還原。',
    restoreDone: '已完成',
    restoreRetrying: '等待目標恢復',
    progress: '進度',
    files: '檔案',
    dnsbl: '黑名單（DNSBL）',
    dnsblNone: '沒有監看中的位址。',
    address: '位址',
    label: '類別',
    state: '狀態',
    listedOn: '列於',
    listed: '已列入',
    clear: '未列入',
    own: '本機',
    alarms: '警報',
    alarmsNone: '沒有未確認的警報',
    alarmsSome: '{n} 個未確認',
    latest: '最新',
    events: '最新事件',
    eventsNone: '尚無事件。',
    time: '時間',
    severity: '嚴重程度',
    kind: '類型',
    text: '內容',
    info: '資訊',
    warning: '警告',
    critical: '嚴重',
    notHere: '此主機未提供服務，不顯示此項。',
    updated: '更新於 {time}；每 30 秒重新整理。',
    refreshFailed: '重新整理失敗：{error}',
    active: '主要',
    standby: '備援',
    unreachable: '無法連線',
    up: '正常',
    down: '中斷',
    notConfigured: '未設定',
    perIpMessagesPerMinute: '每個位址每分鐘郵件數',
    perIpRecipientsPerMinute: '每個位址每分鐘收件者數',
    perIpMessagesPerDay: '每個位址每日郵件數',
    perAccountMessagesPerDay: '每個登入帳號每日郵件數',
    perAccountNewRecipientsPerDay: '每個登入帳號每日新收件者數',
    perIpConnectionsPerMinute: '每個位址每分鐘連線數',
    perIpConcurrentConnections: '每個位址同時連線數',
    perSubnetConcurrentConnections: '每個網段同時連線數',
  },
});
type Key = Parameters<typeof S>[0];

interface Counts {
  in: number;
  out: number;
  failed: number;
}
interface MailStats {
  timezone: string;
  hours: (Counts & { start: string })[];
  days: (Counts & { date: string })[];
}
interface NearLimit {
  limit: string;
  ip?: string;
  account?: string;
  count: number;
  max: number;
}
interface Status {
  spoolPending?: number;
  queue?: { messages: number; held: number; recipients: { queued: number; deferred: number } };
  thresholds?: { nearLimit: NearLimit[] };
  ha?: {
    role: string;
    peer: { node: string | null; role: string | null; links: { serial: string; network: string }; lastHeardMs: number | null };
    replication: string;
    oneDiskOnly: number;
  };
  disk?: { summary: string; usedPercent: number | null; failing: boolean; present: boolean };
  backup?: { targets: number; last: string | null; generation: number | null; target: string | null; next: string | null; running: string | null; lastError: { at: string; target: string; kind: string; message: string } | null };
  restore?: { running: boolean; state: string; percent: number | null; target?: string; filesDone?: number; filesTotal?: number; lastError?: string | null };
  dnsbl?: { ip: string; label: string; listed: boolean; zones: { zone: string; state: string }[] }[];
  alarms?: { unacknowledged: number; latest: string | null };
}
interface EventRow {
  time: string;
  kind: string;
  severity: 'info' | 'warning' | 'critical';
  text: string;
}
interface Data {
  stats: MailStats;
  status: Status;
  events: EventRow[];
}

const REFRESH_MS = 30_000;

/** A known word from the box (a role, a link state) in the reader's language; anything else as it came. */
function word(w: string | null | undefined): string {
  const map: Record<string, Key> = { active: 'active', standby: 'standby', unreachable: 'unreachable', up: 'up', down: 'down', 'not configured': 'notConfigured', info: 'info', warning: 'warning', critical: 'critical', own: 'own' };
  if (w === null || w === undefined) return '—';
  const k = map[w];
  return k ? S(k) : w;
}

function limitName(key: string): string {
  const k = key.replace(/^thresholds\./, '');
  const known = ['perIpMessagesPerMinute', 'perIpRecipientsPerMinute', 'perIpMessagesPerDay', 'perAccountMessagesPerDay', 'perAccountNewRecipientsPerDay', 'perIpConnectionsPerMinute', 'perIpConcurrentConnections', 'perSubnetConcurrentConnections'];
  return known.includes(k) ? S(k as Key) : key;
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

function sum(rows: Counts[], k: keyof Counts): number {
  return rows.reduce((a, r) => a + r[k], 0);
}

function trafficCard(stats: MailStats): HTMLElement {
  // The hours come as UTC hour starts: shown in the browser's own time.
  const hours: ChartBucket[] = stats.hours.map((r) => {
    const d = new Date(r.start);
    return { key: r.start, label: `${two(d.getHours())}:00`, name: d.toLocaleString(lang(), { month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }), in: r.in, out: r.out };
  });
  // The days are calendar days in the box's time zone: shown as dates, not converted.
  const days: ChartBucket[] = stats.days.map((r) => {
    const [, m, d] = r.date.split('-');
    return { key: r.date, label: `${Number(m)}/${Number(d)}`, name: r.date, in: r.in, out: r.out };
  });
  const summary = (rows: Counts[]) => S('summary', { in: fmtNumber(sum(rows, 'in')), out: fmtNumber(sum(rows, 'out')), failed: fmtNumber(sum(rows, 'failed')) });
  const chart = (id: string, title: string, buckets: ChartBucket[], rows: Counts[], every: number) =>
    h('figure', { class: 'chart-box', 'data-chart': id }, h('figcaption', {}, title), barChart(buckets, { title, summary: summary(rows), inLabel: S('mailIn'), outLabel: S('mailOut'), labelEvery: every, fmt: fmtNumber }));
  const failed = sum(stats.hours, 'failed');
  return h(
    'section',
    { class: 'card wide', id: 'dash-traffic' },
    h('h2', {}, S('traffic')),
    h('p', { class: 'legend' }, h('span', { class: 'swatch in' }), S('mailIn'), ' ', h('span', { class: 'swatch out' }), S('mailOut')),
    h('div', { class: 'charts' }, chart('hours', S('hours'), hours, stats.hours, 4), chart('days', S('days', { tz: stats.timezone }), days, stats.days, 5)),
    facts([
      [S('in24'), fmtNumber(sum(stats.hours, 'in'))],
      [S('out24'), fmtNumber(sum(stats.hours, 'out'))],
      [S('failed24'), [fmtNumber(failed), ' ', failed > 0 ? badge(S('backupFailed'), 'warn') : null]],
    ]),
  );
}

function notServing(title: string, id: string): HTMLElement {
  return h('section', { class: 'card', id }, h('h2', {}, title), h('p', { class: 'empty' }, S('notHere')));
}

function card(id: string, title: string, ...children: Parameters<typeof section>[1][]): HTMLElement {
  const s = section(title, ...children);
  s.id = id;
  return s;
}

function queueCard(st: Status): HTMLElement {
  const q = st.queue;
  if (!q) return notServing(S('queue'), 'dash-queue');
  const deferred = q.recipients.deferred;
  return card(
    'dash-queue',
    S('queue'),
    h('p', {}, deferred > 0 || q.held > 0 ? badge(S('queueDeferred'), 'warn') : badge(S('queueOk'), 'ok')),
    facts([
      [S('queued'), fmtNumber(q.messages)],
      [S('recipientsQueued'), fmtNumber(q.recipients.queued)],
      [S('deferred'), fmtNumber(deferred)],
      [S('held'), fmtNumber(q.held)],
      [S('spoolPending'), fmtNumber(st.spoolPending ?? 0)],
    ]),
  );
}

function nearCard(st: Status): HTMLElement {
  const near = st.thresholds?.nearLimit ?? [];
  return card(
    'dash-near',
    S('near'),
    table(
      near,
      [
        { head: S('limit'), cell: (r) => limitName(r.limit) },
        { head: S('who'), cell: (r) => r.ip ?? r.account ?? '—' },
        { head: S('used'), cell: (r) => [`${fmtNumber(r.count)} / ${fmtNumber(r.max)} `, r.count >= r.max ? badge(S('reached'), 'bad') : badge(S('close'), 'warn')] },
      ],
      S('nearNone'),
    ),
  );
}

function haCard(st: Status): HTMLElement {
  const ha = st.ha;
  if (!ha) return card('dash-ha', S('ha'), h('p', { class: 'empty' }, badge(S('notConfigured'), 'idle'), ' ', S('haOff')));
  const p = ha.peer;
  const inSync = ha.replication.startsWith('in sync');
  return card(
    'dash-ha',
    S('ha'),
    facts([
      [S('role'), badge(word(ha.role), ha.role === 'active' || ha.role === 'standby' ? 'ok' : 'warn')],
      [S('peer'), [p.node ?? S('peerUnknown'), ' ', badge(word(p.role), p.role === 'unreachable' || p.role === null ? 'bad' : 'ok')]],
      [S('links'), `${S('network')}: ${word(p.links.network)} · ${S('serial')}: ${word(p.links.serial)}`],
      [S('lastHeard'), p.lastHeardMs === null ? '—' : S('secondsAgo', { n: fmtNumber(Math.round(p.lastHeardMs / 1000)) })],
      // The box's own words follow the badge (they name the replication's state in detail).
      [S('replication'), [badge(inSync ? S('inSync') : S('notInSync'), inSync ? 'ok' : 'warn'), ' ', lang() === 'en' ? ha.replication : null]],
      [S('oneDisk'), [fmtNumber(ha.oneDiskOnly), ' ', ha.oneDiskOnly > 0 ? badge(S('atRisk'), 'warn') : null]],
    ]),
  );
}

/** The box's own English detail under a translated badge: shown to English readers only (the badge says it in Chinese). */
function boxWords(text: string): HTMLElement | null {
  return lang() === 'en' ? h('p', { class: 'detail' }, text) : null;
}

function diskCard(st: Status): HTMLElement {
  const d = st.disk;
  if (!d) return notServing(S('disk'), 'dash-disk');
  const pct = d.usedPercent;
  const [text, kind] = !d.present ? [S('diskMissing'), 'bad' as const] : d.failing ? [S('diskFailing'), 'bad' as const] : pct !== null && pct >= 90 ? [S('diskFull'), 'warn' as const] : [S('diskHealthy'), 'ok' as const];
  const bar = pct === null ? null : h('progress', { max: 100, value: pct });
  return card('dash-disk', S('disk'), h('p', {}, badge(text, kind)), facts([[S('used2'), pct === null ? '—' : [`${fmtNumber(pct)}% `, bar]]]), boxWords(d.summary));
}

function backupCard(st: Status): HTMLElement {
  const b = st.backup;
  if (!b) return notServing(S('backup'), 'dash-backup');
  if (b.targets === 0) return card('dash-backup', S('backup'), h('p', {}, badge(S('notConfigured'), 'warn')), h('p', { class: 'empty' }, S('backupNone')));
  const state = b.lastError ? badge(S('backupFailed'), 'bad') : b.last ? badge(S('backupOk'), 'ok') : badge(S('backupNever'), 'warn');
  return card(
    'dash-backup',
    S('backup'),
    h('p', {}, state, b.running ? [' ', badge(S('running'), 'idle')] : null),
    facts([
      [S('lastBackup'), b.last ? fmtTime(b.last) : S('never')],
      [S('target'), b.target ?? '—'],
      [S('generation'), b.generation === null ? '—' : fmtNumber(b.generation)],
      [S('next'), fmtTime(b.next)],
      ...(b.lastError ? ([[S('lastError'), `${fmtTime(b.lastError.at)} · ${b.lastError.target}: ${b.lastError.message}`]] as [string, string][]) : []),
    ]),
  );
}

function restoreCard(st: Status): HTMLElement {
  const r = st.restore;
  if (!r) return notServing(S('restore'), 'dash-restore');
  if (r.state === 'none') return card('dash-restore', S('restore'), h('p', { class: 'empty' }, S('restoreNone')));
  const kind = r.state === 'done' ? 'ok' : r.state === 'retrying' ? 'warn' : r.running ? 'idle' : 'bad';
  const label = r.state === 'done' ? S('restoreDone') : r.state === 'retrying' ? S('restoreRetrying') : r.running ? S('running') : r.state;
  return card(
    'dash-restore',
    S('restore'),
    h('p', {}, badge(label, kind)),
    h('progress', { max: 100, value: r.percent ?? 0 }),
    facts([
      [S('progress'), r.percent === null ? '—' : `${fmtNumber(r.percent)}%`],
      [S('files'), `${fmtNumber(r.filesDone ?? 0)} / ${fmtNumber(r.filesTotal ?? 0)}`],
      [S('target'), r.target ?? '—'],
      ...(r.lastError ? ([[S('lastError'), r.lastError]] as [string, string][]) : []),
    ]),
  );
}

function dnsblCard(st: Status): HTMLElement {
  const rows = st.dnsbl ?? [];
  return card(
    'dash-dnsbl',
    S('dnsbl'),
    table(
      rows,
      [
        { head: S('address'), cell: (r) => r.ip },
        { head: S('label'), cell: (r) => word(r.label) },
        { head: S('state'), cell: (r) => (r.listed ? badge(S('listed'), 'bad') : badge(S('clear'), 'ok')) },
        { head: S('listedOn'), cell: (r) => r.zones.filter((z) => z.state === 'listed').map((z) => z.zone).join(', ') || '—' },
      ],
      S('dnsblNone'),
    ),
  );
}

function alarmsCard(st: Status): HTMLElement | null {
  const a = st.alarms;
  if (!a) return null;
  return card(
    'dash-alarms',
    S('alarms'),
    h('p', {}, a.unacknowledged > 0 ? badge(S('alarmsSome', { n: fmtNumber(a.unacknowledged) }), 'bad') : badge(S('alarmsNone'), 'ok')),
    a.latest ? facts([[S('latest'), a.latest]]) : null,
  );
}

function eventsCard(events: EventRow[]): HTMLElement {
  const sev = { info: 'idle', warning: 'warn', critical: 'bad' } as const;
  const s = card(
    'dash-events',
    S('events'),
    table(
      events,
      [
        { head: S('time'), cell: (e) => fmtTime(e.time) },
        { head: S('severity'), cell: (e) => badge(word(e.severity), sev[e.severity] ?? 'idle') },
        { head: S('kind'), cell: (e) => e.kind },
        { head: S('text'), cell: (e) => e.text },
      ],
      S('eventsNone'),
    ),
  );
  s.classList.add('wide');
  return s;
}

/** `background`: the 30-s refresh, which must not keep an unattended session alive. */
async function load(background = false): Promise<Data> {
  // In parallel: one round trip's wait, not three.
  const [stats, status, events] = await Promise.all([
    runJson<MailStats>(['mail', 'stats'], { background }),
    runJson<Status>(['status'], { background }),
    runJson<EventRow[]>(['events', 'list', '--limit', '10'], { background }),
  ]);
  return { stats, status, events };
}

function draw(root: HTMLElement, data: Data): void {
  const st = data.status;
  root.replaceChildren(
    trafficCard(data.stats),
    queueCard(st),
    nearCard(st),
    haCard(st),
    diskCard(st),
    backupCard(st),
    restoreCard(st),
    dnsblCard(st),
    ...[alarmsCard(st)].filter((x): x is HTMLElement => x !== null),
    eventsCard(data.events),
    h('p', { class: 'msg info wide', id: 'dash-updated', role: 'status' }, S('updated', { time: fmtTime(Date.now()) })),
  );
}

export const dashboardPage: Page = {
  id: 'dashboard',
  title: () => S('title'),
  async render(root) {
    draw(root, await load());
    // Refreshed while shown; the timer ends itself once this page's element left the document
    // (another page, a language switch, a logout).
    const timer = setInterval(() => {
      if (!root.isConnected) return clearInterval(timer);
      load(true).then(
        (data) => {
          if (root.isConnected) draw(root, data);
        },
        (err: Error) => {
          if (err instanceof NotLoggedIn) return location.reload();
          const line = root.querySelector('#dash-updated');
          if (line) line.textContent = S('refreshFailed', { error: err.message });
        },
      );
    }, REFRESH_MS);
  },
};
