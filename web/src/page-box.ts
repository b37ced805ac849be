// Box: the HA pair (and a switchover), the data disk with its SMART details, the LAN settings,
// the certificate (shown, and a new one installed), and the event log with the audit trail.
import { run } from './api.js';
import { askConfirm } from './confirm.js';
import { actionButton, badge, facts, h, say, section, table } from './dom.js';
import { fmtBytes, fmtNumber, fmtTime, strings } from './i18n.js';
import type { Page } from './pages.js';

const S = strings({
  en: {
    title: 'Box',
    ha: 'High availability',
    haOff: 'This box is not part of an HA pair.',
    role: 'This box',
    peer: 'Peer',
    links: 'Links',
    serial: 'serial',
    network: 'network',
    replication: 'Replication',
    oneDisk: 'Messages on one disk only',
    config: 'Configuration',
    cfgSame: 'same on both boxes',
    cfgDiffers: 'differs from the peer',
    cfgUnknown: 'peer not heard',
    lastFailover: 'Last failover',
    none: 'none',
    switchover: 'Switch over…',
    switchAsk: 'Hand the mail service to the standby box now? Connections in progress are cut and retried by the senders.',
    switchYes: 'Yes, switch over',
    disk: 'Data disk',
    health: 'Health',
    healthy: 'healthy',
    failing: 'FAILING',
    unknown: 'unknown',
    missing: 'missing',
    notRead: 'not read yet',
    model: 'Model',
    serialNo: 'Serial number',
    device: 'Device',
    capacity: 'Capacity',
    temperature: 'Temperature',
    hot: 'too hot',
    space: 'Space',
    spaceLine: '{free} free of {total} ({used}% used)',
    smart: 'SMART overall',
    passed: 'passed',
    failed: 'FAILED',
    realloc: 'Reallocated sectors',
    pending: 'Pending sectors',
    offline: 'Offline uncorrectable',
    hours: 'Power-on hours',
    nvmeWarn: 'NVMe critical warning',
    nvmeUsed: 'NVMe wear (% used)',
    polled: 'Last read',
    readError: 'Could not be read',
    lan: 'Network',
    iface: 'Interface',
    address: 'Address',
    netmask: 'Netmask',
    gateway: 'Gateway',
    apply: 'Apply…',
    lanAsk: 'Change this box’s LAN address? If the new address is not reachable from here, this page is cut off.',
    lanYes: 'Yes, change it',
    lanDone: 'LAN settings applied.',
    cert: 'Certificate',
    subject: 'Subject',
    issuer: 'Issuer',
    names: 'Names',
    valid: 'Valid',
    validRange: '{from} to {to}',
    expired: 'expired',
    selfSigned: 'self-signed',
    fingerprint: 'SHA-256 fingerprint',
    install: 'Install a certificate',
    certPem: 'Certificate chain (PEM): the box’s certificate first, then the intermediates',
    keyPem: 'Private key (PEM, without passphrase)',
    orFile: 'or choose a file',
    installGo: 'Install',
    installed: 'Installed. The web admin presents it from the next connection on; SMTP from the next start of the mail service.',
    events: 'Logs and events',
    filter: 'Show',
    fAll: 'all events',
    fAudit: 'changes (audit trail)',
    fWarn: 'warnings and critical',
    fCrit: 'critical only',
    time: 'Time',
    severity: 'Severity',
    sev_info: 'info',
    sev_warning: 'warning',
    sev_critical: 'critical',
    kind: 'Kind',
    what: 'What',
    noEvents: 'No events.',
    who: '{who} via {face} from {from}',
    face_web: 'web admin',
    face_console: 'serial console',
    face_cli: 'command line',
    face_panel: 'front panel',
    refused: 'refused: {error}',
    oldNew: '{old} → {new}',
  },
  'zh-TW': {
    title: '主機',
    ha: '高可用性（HA）',
    haOff: '此主機不屬於 HA 配對。',
    role: '本機',
    peer: '對端主機',
    links: '連線',
    serial: '序列埠',
    network: '網路',
    replication: '複寫',
    oneDisk: '僅存於單一磁碟的郵件',
    config: '設定',
    cfgSame: '兩台主機相同',
    cfgDiffers: '與對端主機不同',
    cfgUnknown: '未收到對端主機訊號',
    lastFailover: '最近一次切換',
    none: '無',
    switchover: '切換…',
    switchAsk: '現在將郵件服務交給備援主機嗎？進行中的連線會中斷，由寄件端重試。',
    switchYes: '是，切換',
    disk: '資料磁碟',
    health: '健康狀態',
    healthy: '良好',
    failing: '即將故障',
    unknown: '未知',
    missing: '不存在',
    notRead: '尚未讀取',
    model: '型號',
    serialNo: '序號',
    device: '裝置',
    capacity: '容量',
    temperature: '溫度',
    hot: '過熱',
    space: '空間',
    spaceLine: '可用 {free}，共 {total}（已用 {used}%）',
    smart: 'SMART 整體評估',
    passed: '通過',
    failed: '未通過',
    realloc: '重新配置的磁區',
    pending: '待處理磁區',
    offline: '離線無法修正',
    hours: '通電時數',
    nvmeWarn: 'NVMe 嚴重警告',
    nvmeUsed: 'NVMe 耗損（已用 %）',
    polled: '最近讀取',
    readError: '無法讀取',
    lan: '網路',
    iface: '介面',
    address: '位址',
    netmask: '子網路遮罩',
    gateway: '閘道',
    apply: '套用…',
    lanAsk: '要變更本機的區域網路位址嗎？若從這裡連不到新位址，此頁面將會中斷。',
    lanYes: '是，變更',
    lanDone: '已套用區域網路設定。',
    cert: '憑證',
    subject: '主體',
    issuer: '簽發者',
    names: '名稱',
    valid: '有效期間',
    validRange: '{from} 至 {to}',
    expired: '已過期',
    selfSigned: '自簽',
    fingerprint: 'SHA-256 指紋',
    install: '安裝憑證',
    certPem: '憑證鏈（PEM）：本機憑證在前，其後為中繼憑證',
    keyPem: '私密金鑰（PEM，無密碼保護）',
    orFile: '或選擇檔案',
    installGo: '安裝',
    installed: '已安裝。網頁管理介面自下一個連線起使用；SMTP 於郵件服務下次啟動時使用。',
    events: '紀錄與事件',
    filter: '顯示',
    fAll: '所有事件',
    fAudit: '變更（稽核紀錄）',
    fWarn: '警告與嚴重',
    fCrit: '僅嚴重',
    time: '時間',
    severity: '嚴重性',
    sev_info: '資訊',
    sev_warning: '警告',
    sev_critical: '嚴重',
    kind: '種類',
    what: '內容',
    noEvents: '沒有事件。',
    who: '{who} 經由{face}，來自 {from}',
    face_web: '網頁管理介面',
    face_console: '序列主控台',
    face_cli: '命令列',
    face_panel: '前面板',
    refused: '遭拒絕：{error}',
    oldNew: '{old} → {new}',
  },
});

interface Ha {
  nodeId: string;
  role: string;
  epoch: number;
  peer: { node: string | null; role: string | null; configMatches: boolean | null; links: { serial: string; network: string }; lastHeardMs: number | null };
  linkFault: string;
  replication: string;
  oneDiskOnly: number;
  lastFailover: { at: string; role: string; reason: string } | null;
}

interface Disk {
  polledAt: string | null;
  disk: {
    device: string;
    present: boolean;
    model: string;
    serial: string;
    sizeBytes: number | null;
    interface: string;
    smart: { passed: boolean | null; reallocatedSectors: number | null; pendingSectors: number | null; offlineUncorrectable: number | null; powerOnHours: number | null; temperatureC: number | null; nvmeCriticalWarning: number | null; nvmePercentageUsed: number | null } | null;
    messages: string[];
  } | null;
  space: { totalBytes: number; availableBytes: number } | null;
  usedPercent: number | null;
  failing: boolean;
  hot: boolean;
  error: string | null;
}

interface Lan {
  interface: string;
  address: string;
  netmask: string;
  gateway: string;
}

interface Cert {
  subject: string;
  issuer: string;
  subjectAltNames: string[];
  validFrom: string;
  validTo: string;
  expired: boolean;
  selfSigned: boolean;
  fingerprint256: string;
}

interface Ev {
  id: string;
  time: string;
  kind: string;
  severity: 'info' | 'warning' | 'critical';
  text: string;
  data?: Record<string, unknown>;
}

/** A card whose command failed (a standby cannot answer some): the box's own words. */
function failed(title: string, error: string | undefined): HTMLElement {
  return section(title, h('p', { class: 'msg error' }, error ?? ''));
}

function haCard(r: { ok: boolean; json?: unknown; error?: string }, rerender: () => Promise<void>): HTMLElement {
  if (!r.ok) return section(S('ha'), h('p', { class: /not part of an HA pair/.test(r.error ?? '') ? 'empty' : 'msg error' }, /not part of an HA pair/.test(r.error ?? '') ? S('haOff') : (r.error ?? '')));
  const s = r.json as Ha;
  const out = h('div', {});
  const cfg = s.peer.configMatches === null ? S('cfgUnknown') : s.peer.configMatches ? S('cfgSame') : S('cfgDiffers');
  return section(
    S('ha'),
    facts([
      [S('role'), [badge(s.role, s.role === 'active' ? 'ok' : s.role === 'standby' ? 'idle' : 'warn'), ` ${s.nodeId}`]],
      [S('peer'), `${s.peer.node ?? '?'} (${s.peer.role ?? S('unknown')})`],
      [S('links'), [badge(`${S('serial')}: ${s.peer.links.serial}`, s.peer.links.serial === 'down' ? 'bad' : 'ok'), ' ', badge(`${S('network')}: ${s.peer.links.network}`, s.peer.links.network === 'up' ? 'ok' : 'bad')]],
      [S('replication'), s.replication],
      ...(s.role === 'active' ? ([[S('oneDisk'), badge(fmtNumber(s.oneDiskOnly), s.oneDiskOnly ? 'warn' : 'ok')]] as [string, HTMLElement][]) : []),
      [S('config'), cfg],
      [S('lastFailover'), s.lastFailover ? `${fmtTime(s.lastFailover.at)} (${s.lastFailover.role}: ${s.lastFailover.reason})` : S('none')],
    ]),
    h('div', { class: 'row' }, h('button', {
      type: 'button',
      class: 'danger',
      id: 'ha-switchover',
      onclick: () =>
        askConfirm(out, S('switchAsk'), S('switchYes'), async () => {
          const res = await run(['ha', 'switchover']);
          if (!res.ok) return say(out, res.error ?? '', 'error');
          say(out, res.text ?? '', 'ok');
          window.setTimeout(() => void rerender(), 1500);
        }),
    }, S('switchover'))),
    out,
  );
}

function diskCard(r: { ok: boolean; json?: unknown; error?: string }): HTMLElement {
  if (!r.ok) return failed(S('disk'), r.error);
  const s = r.json as Disk;
  const d = s.disk;
  const m = d?.smart ?? null;
  const health = !s.polledAt ? badge(S('notRead'), 'idle') : s.error ? badge(S('readError'), 'bad') : !d?.present ? badge(S('missing'), 'bad') : s.failing ? badge(S('failing'), 'bad') : m?.passed === null || !m ? badge(S('unknown'), 'warn') : badge(S('healthy'), 'ok');
  const num = (label: string, v: number | null | undefined): [string, string][] => (v === null || v === undefined ? [] : [[label, fmtNumber(v)]]);
  return h(
    'section',
    { class: 'card', id: 'box-disk' },
    h('h2', {}, S('disk')),
    facts([
      [S('health'), health],
      ...(s.error ? ([[S('readError'), s.error]] as [string, string][]) : []),
      ...(d?.present
        ? ([
            [S('model'), d.model],
            [S('serialNo'), d.serial || '?'],
            [S('device'), `${d.device} (${d.interface})`],
            [S('capacity'), d.sizeBytes !== null ? fmtBytes(d.sizeBytes) : S('unknown')],
          ] as [string, string][])
        : d
          ? ([[S('device'), d.messages.join('; ') || S('missing')]] as [string, string][])
          : []),
      ...(m
        ? ([
            [S('smart'), m.passed === null ? badge(S('unknown'), 'warn') : m.passed ? badge(S('passed'), 'ok') : badge(S('failed'), 'bad')],
            ...(m.temperatureC !== null ? [[S('temperature'), s.hot ? [`${m.temperatureC} °C `, badge(S('hot'), 'bad')] : `${m.temperatureC} °C`]] : []),
          ] as [string, string | HTMLElement | (string | HTMLElement)[]][])
        : []),
      ...num(S('realloc'), m?.reallocatedSectors),
      ...num(S('pending'), m?.pendingSectors),
      ...num(S('offline'), m?.offlineUncorrectable),
      ...num(S('hours'), m?.powerOnHours),
      ...num(S('nvmeWarn'), m?.nvmeCriticalWarning),
      ...num(S('nvmeUsed'), m?.nvmePercentageUsed),
      ...(s.space ? ([[S('space'), S('spaceLine', { free: fmtBytes(s.space.availableBytes), total: fmtBytes(s.space.totalBytes), used: Math.round(s.usedPercent ?? 0) })]] as [string, string][]) : []),
      [S('polled'), fmtTime(s.polledAt)],
    ]),
  );
}

function lanCard(r: { ok: boolean; json?: unknown; error?: string }, rerender: () => Promise<void>): HTMLElement {
  if (!r.ok) return failed(S('lan'), r.error);
  const s = r.json as Lan;
  const field = (id: string, label: string, value: string) => {
    const el = h('input', { id: `lan-${id}`, name: id, autocomplete: 'off', inputmode: 'decimal' });
    el.value = value;
    return { el, row: h('div', { class: 'field' }, h('label', { for: `lan-${id}` }, label), el) };
  };
  const address = field('address', S('address'), s.address);
  const netmask = field('netmask', S('netmask'), s.netmask);
  const gateway = field('gateway', S('gateway'), s.gateway);
  const out = h('div', {});
  const form = h('form', { novalidate: true }, address.row, netmask.row, gateway.row, h('button', { type: 'submit' }, S('apply')), out);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    askConfirm(out, S('lanAsk'), S('lanYes'), async () => {
      const res = await run(['network', 'set', '--address', address.el.value.trim(), '--netmask', netmask.el.value.trim(), '--gateway', gateway.el.value.trim()]);
      if (!res.ok) return say(out, res.error ?? '', 'error');
      await rerender();
    });
  });
  return section(S('lan'), facts([[S('iface'), s.interface]]), form);
}

/** A textarea for a PEM, with a file input that fills it (the PEM is only ever text in a textarea). */
function pemInput(id: string, label: string): { el: HTMLTextAreaElement; row: HTMLElement } {
  const el = h('textarea', { id, rows: 5, class: 'json', spellcheck: 'false', autocomplete: 'off' });
  const file = h('input', { type: 'file', id: `${id}-file`, accept: '.pem,.crt,.cer,.key,text/plain' });
  file.addEventListener('change', () => {
    const f = file.files?.[0];
    if (f && f.size < 1 << 16) void f.text().then((t) => (el.value = t));
  });
  return { el, row: h('div', { class: 'field' }, h('label', { for: id }, label), el, h('small', {}, S('orFile')), file) };
}

function certCard(r: { ok: boolean; json?: unknown; error?: string }, rerender: () => Promise<void>): HTMLElement {
  const shown = r.ok
    ? (() => {
        const c = r.json as Cert;
        return facts([
          [S('subject'), c.subject],
          [S('issuer'), [c.issuer, c.selfSigned ? [' ', badge(S('selfSigned'), 'warn')] : []].flat()],
          [S('names'), c.subjectAltNames.join(', ') || S('none')],
          [S('valid'), [S('validRange', { from: fmtTime(c.validFrom), to: fmtTime(c.validTo) }), c.expired ? [' ', badge(S('expired'), 'bad')] : []].flat()],
          [S('fingerprint'), h('code', { id: 'cert-fingerprint' }, c.fingerprint256)],
        ]);
      })()
    : h('p', { class: 'msg error' }, r.error ?? '');
  const cert = pemInput('cert-pem', S('certPem'));
  const key = pemInput('key-pem', S('keyPem'));
  const out = h('div', { id: 'cert-result' });
  const install = actionButton(S('installGo'), async () => {
    const res = await run(['tls', 'install'], `${cert.el.value.trim()}\n${key.el.value.trim()}\n`);
    if (!res.ok) return say(out, res.error ?? '', 'error');
    key.el.value = '';
    await rerender();
  }, { id: 'cert-install' });
  return h('section', { class: 'card', id: 'box-cert' }, h('h2', {}, S('cert')), shown, h('h3', {}, S('install')), cert.row, key.row, install, out);
}

function faceName(face: unknown): string {
  return face === 'web' || face === 'console' || face === 'cli' || face === 'panel' ? S(`face_${face}`) : String(face ?? '?');
}

/** An audit event as who / from where / what / old → new; any other event as its text. */
function eventWhat(e: Ev): HTMLElement | string {
  const d = e.data;
  if (e.kind !== 'admin.change' || !d) return e.text;
  const change = d.key !== undefined && d.ok === true ? h('div', { class: 'audit-change' }, h('code', {}, String(d.key)), ': ', S('oldNew', { old: JSON.stringify(d.old) ?? '—', new: JSON.stringify(d.new) ?? '—' })) : null;
  const refusal = d.ok === false ? h('div', { class: 'msg error' }, S('refused', { error: e.text.replace(/^.* refused: /, '') })) : null;
  return h('div', { class: 'audit' }, h('div', { class: 'audit-who' }, S('who', { who: String(d.who ?? '?'), face: faceName(d.face), from: String(d.from ?? '?') })), h('code', { class: 'audit-what' }, String(d.argv ?? '')), change, refusal);
}

function eventsCard(r: { ok: boolean; json?: unknown; error?: string }): HTMLElement {
  if (!r.ok) return failed(S('events'), r.error);
  // The log keeps oldest first; the newest matters most.
  const all = [...(r.json as Ev[])].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
  const filter = h('select', { id: 'events-filter' }, h('option', { value: 'all' }, S('fAll')), h('option', { value: 'audit' }, S('fAudit')), h('option', { value: 'warn' }, S('fWarn')), h('option', { value: 'critical' }, S('fCrit')));
  const body = h('div', {});
  const sevKind = (s: Ev['severity']) => (s === 'critical' ? 'bad' : s === 'warning' ? 'warn' : 'idle');
  const show = () => {
    const f = filter.value;
    const rows = all.filter((e) => f === 'all' || (f === 'audit' && e.kind === 'admin.change') || (f === 'warn' && e.severity !== 'info') || (f === 'critical' && e.severity === 'critical'));
    body.replaceChildren(
      table(
        rows,
        [
          { head: S('time'), cell: (e) => fmtTime(e.time) },
          { head: S('severity'), cell: (e) => badge(S(`sev_${e.severity}` as 'sev_info'), sevKind(e.severity)) },
          { head: S('kind'), cell: (e) => h('code', {}, e.kind) },
          { head: S('what'), cell: (e) => eventWhat(e) },
        ],
        S('noEvents'),
      ),
    );
  };
  filter.addEventListener('change', show);
  show();
  return h('section', { class: 'card wide', id: 'box-events' }, h('h2', {}, S('events')), h('div', { class: 'row' }, h('label', { for: 'events-filter' }, S('filter')), filter), body);
}

export const boxPage: Page = {
  id: 'box',
  title: () => S('title'),
  async render(root) {
    const rerender = async () => {
      root.replaceChildren();
      await boxPage.render(root);
    };
    const [ha, disk, lan, cert, events] = await Promise.all([run(['ha', 'status']), run(['disk', 'status']), run(['network', 'show']), run(['tls', 'show']), run(['events', 'list'])]);
    root.append(haCard(ha, rerender), diskCard(disk), lanCard(lan, rerender), certCard(cert, rerender), eventsCard(events));
  },
};
