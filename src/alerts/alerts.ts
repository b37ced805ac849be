import { randomBytes } from 'node:crypto';
import type { MlsdEvent, Severity } from '../events/events.js';
import type { Logger } from '../log/logger.js';

/**
 * Administrator alert mail. Every event passes through `handle`; the few kinds an
 * administrator must act on become a bilingual (English, Traditional Chinese) mail handed
 * to mlsd's own spool, so alerts need no outside relay and survive a restart like any mail.
 * A flood of the same event (one IP tripping a limit every second) must not become a flood
 * of mail, so each key mails at most once per period and the next mail says how many were
 * held back (kinds marked everyEvent, which report state changes, are exempt). Time comes
 * from the injected clock; there are no timers.
 */
export interface AlertSettings {
  enabled: boolean; // thresholds.alert
  adminEmails: string[]; // alerts.adminEmails
  periodMinutes: number; // at most one alert per key per period
}

/** Hands a finished RFC 5322 message to mlsd's own spool (so local admins get it in their Maildir, remote ones via the queue). */
export type AlertSink = (from: string, to: string[], message: Buffer) => Promise<void>;

interface KindText {
  severity: Severity;
  en: string;
  zh: string;
  /**
   * Mail every event, no per-key period: for state changes, which their source reports once
   * per change. Held back, a re-listing after a delisting mail would leave the admin
   * believing the last mail ("it is over").
   */
  everyEvent?: boolean;
}

// Fixed per kind rather than taken from ev.severity: the subject of a given kind always
// reads the same, so admins can filter on it.
const KINDS: Record<string, KindText> = {
  'threshold.warning': { severity: 'warning', en: '80% of a threshold reached', zh: '已達臨界值 80%' },
  'threshold.tripped': { severity: 'critical', en: 'threshold tripped', zh: '已達郵件管制臨界值' },
  'auth.lockout': { severity: 'warning', en: 'too many failed logins, locked out', zh: '登入失敗次數過多，已鎖定' },
  'account.suspended': { severity: 'critical', en: 'account suspended from sending', zh: '帳號已暫停寄信' },
  'dnsbl.listed': { severity: 'critical', en: 'address listed on a DNS blacklist', zh: 'IP 位址被列入 DNS 黑名單', everyEvent: true },
  'dnsbl.delisted': { severity: 'info', en: 'address no longer on a DNS blacklist', zh: 'IP 位址已自 DNS 黑名單移除', everyEvent: true },
  'routing.rerouted': { severity: 'warning', en: 'outbound mail switched to the smarthost', zh: '外寄郵件已改經轉寄主機 (smarthost) 寄出', everyEvent: true },
  'routing.restored': { severity: 'info', en: 'outbound mail sent directly again', zh: '外寄郵件已恢復直接寄送', everyEvent: true },
  // Once per alert period: an ISP that keeps refusing over its quota pauses the route again and again.
  'scan.compromised': { severity: 'critical', en: 'repeated spam or viruses from one account or PC', zh: '同一帳號或電腦多次寄出垃圾郵件或病毒' },
  'scan.engineFailure': { severity: 'warning', en: 'content scanning engine not answering', zh: '郵件掃描引擎沒有回應' },
  'scan.anomaly': { severity: 'warning', en: 'unusual outbound volume from an account', zh: '帳號外寄郵件量異常' },
  'smarthost.throttled': { severity: 'warning', en: 'the smarthost refuses mail over its quota; outbound mail paused', zh: '轉寄主機 (smarthost) 超過寄信額度，外寄郵件暫停' },
  'ha.linkFault': { severity: 'critical', en: 'HA link fault (one heartbeat link down)', zh: '備援連線故障（一條心跳線路中斷）', everyEvent: true },
  'ha.linkRestored': { severity: 'info', en: 'HA link restored', zh: '備援連線已恢復', everyEvent: true },
  'ha.failover': { severity: 'critical', en: 'HA failover: this box took over', zh: '備援切換：本機已接手服務', everyEvent: true },
  'ha.peerOutOfSync': { severity: 'warning', en: 'HA standby out of sync', zh: '備援備用機未同步', everyEvent: true },
  'ha.inSync': { severity: 'info', en: 'HA standby in sync again', zh: '備援備用機已同步', everyEvent: true },
  'ha.demoted': { severity: 'critical', en: 'HA: both boxes served alone; this one stepped down and merged', zh: '備援：兩台主機曾同時服務，本機已退回備用並合併郵件', everyEvent: true },
  'ha.fenced': { severity: 'critical', en: 'HA: this box cut itself off (no peer, no gateway)', zh: '備援：本機已停止服務（對方與閘道皆無回應）', everyEvent: true },
  'ha.merged': { severity: 'warning', en: 'HA: mail accepted by both boxes alone was merged', zh: '備援：兩台主機各自收下的郵件已合併', everyEvent: true },
  'ha.switchover': { severity: 'info', en: 'HA switchover', zh: '備援手動切換', everyEvent: true },
  // The HA node raises each alarm of the standby once (src/ha/peer-alarms.ts): mail each.
  'ha.peerAlarm': { severity: 'critical', en: 'HA: an alarm on the standby box', zh: '備援：備用機發生警報', everyEvent: true },
  // Stress that lasts is a flood someone must look at; a short burst is only in the event log.
  // The disk monitor emits once per change of state; temperature flaps, so it keeps the period.
  'disk.failurePredicted': { severity: 'critical', en: 'SMART predicts the data disk will fail', zh: 'SMART 預測資料硬碟即將故障', everyEvent: true },
  'disk.sectorsRising': { severity: 'warning', en: 'bad sectors on the data disk are rising', zh: '資料硬碟的壞軌數量持續增加', everyEvent: true },
  'disk.temperature': { severity: 'warning', en: 'the data disk is too hot', zh: '資料硬碟溫度過高' },
  'disk.usage': { severity: 'warning', en: 'the data disk is filling up', zh: '資料硬碟空間即將用盡', everyEvent: true },
  'disk.missing': { severity: 'critical', en: 'the data disk is missing', zh: '找不到資料硬碟', everyEvent: true },
  'disk.replaced': { severity: 'warning', en: 'the data disk was replaced', zh: '資料硬碟已更換', everyEvent: true },
  // Backups and restores (issue 15): each failure and each restore step is mailed as it happens.
  'backup.failed': { severity: 'critical', en: 'backup failed (NAS unreachable, full, or login refused)', zh: '遠端備份失敗（NAS 無法連線、空間已滿或登入被拒）', everyEvent: true },
  'backup.verifyFailed': { severity: 'critical', en: 'backup verification found damaged files', zh: '備份檢查發現檔案損毀', everyEvent: true },
  'backup.verify.failed': { severity: 'critical', en: 'backup verification could not run', zh: '無法執行備份檢查', everyEvent: true },
  'backup.manifestBad': { severity: 'warning', en: 'a backup generation on the target does not open', zh: '備份目標上有一份備份無法開啟', everyEvent: true },
  'disk.swapped': { severity: 'warning', en: 'a blank data disk replaced the old one: restoring from backup', zh: '已更換空白資料硬碟：正從備份還原', everyEvent: true },
  'disk.unknown': { severity: 'critical', en: 'the data disk holds data but is not this box\'s: not restored, please check', zh: '資料硬碟內有資料但不屬於本機：未自動還原，請檢查', everyEvent: true },
  'disk.foreign': { severity: 'critical', en: 'the data disk belongs to another box: not restored, please check', zh: '資料硬碟屬於另一台主機：未自動還原，請檢查', everyEvent: true },
  'disk.absent': { severity: 'critical', en: 'no data disk (or not mounted)', zh: '沒有資料硬碟（或未掛載）', everyEvent: true },
  'disk.older': { severity: 'warning', en: 'an earlier data disk of this box is back in use', zh: '本機先前的資料硬碟已重新使用', everyEvent: true },
  'restore.started': { severity: 'warning', en: 'restore from backup started', zh: '已開始從備份還原', everyEvent: true },
  'restore.retry': { severity: 'warning', en: 'restore waits for its backup target', zh: '還原正在等待備份目標', everyEvent: true },
  'restore.done': { severity: 'info', en: 'restore from backup complete', zh: '從備份還原已完成', everyEvent: true },
  'restore.failed': { severity: 'critical', en: 'restore from backup stopped', zh: '從備份還原已停止', everyEvent: true },
  'restore.nothing': { severity: 'critical', en: 'a restore is owed but no backup was found', zh: '需要還原但找不到備份', everyEvent: true },
  'smtp.stress.lasting': { severity: 'critical', en: 'SMTP under stress for a long time (connection flood?)', zh: 'SMTP 連線數長時間接近上限（疑似連線洪水攻擊）' },
};

interface KeyState {
  /** When the last mail for this key was handed to the sink (or is being handed); unset after a failed first try. */
  sentAt?: number;
  /** Reported as "suppressed since": the last successful mail, or when the key was first seen. */
  since: number;
  /** Events held back since `since`, not yet reported in a mail. */
  suppressed: number;
}

export class Alerter {
  private readonly settings: () => AlertSettings;
  private readonly hostname: () => string;
  private readonly sink: AlertSink;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly maxKeys: number;
  // Insertion order is the order of the last send attempt, so expired keys sit at the front.
  private readonly keys = new Map<string, KeyState>();

  constructor(deps: {
    settings: () => AlertSettings;
    hostname: () => string;
    sink: AlertSink;
    log: Logger;
    now?: () => Date;
    maxKeys?: number;
  }) {
    this.settings = deps.settings;
    this.hostname = deps.hostname;
    this.sink = deps.sink;
    this.log = deps.log;
    this.now = deps.now ?? (() => new Date());
    this.maxKeys = deps.maxKeys ?? 10000;
  }

  /**
   * Called for every event; decides whether it warrants a mail and sends at most one per key
   * per period. Never throws (logs errors). Resolves when the mail (if any) was handed to the
   * sink. `suppressed` is the count reported in the mail when sent, else the number held back
   * so far for this key (including this event).
   */
  async handle(ev: MlsdEvent): Promise<{ sent: boolean; suppressed: number }> {
    const kind = KINDS[ev.kind];
    if (!kind) return { sent: false, suppressed: 0 };
    let state: KeyState | undefined;
    let prevSentAt: number | undefined;
    let report = 0;
    try {
      const s = this.settings();
      if (!s.enabled || s.adminEmails.length === 0) return { sent: false, suppressed: 0 };
      const t = this.now().getTime();
      const periodMs = Math.max(0, s.periodMinutes) * 60_000;
      const key = [ev.kind, ev.ip ?? '', ev.account ?? '', ev.limit ?? ''].join('\n');
      state = this.keys.get(key);
      if (!kind.everyEvent && state?.sentAt !== undefined && t - state.sentAt < periodMs) {
        state.suppressed++;
        // Held back is a decision too: logged, so "no second mail" can be seen to have been decided.
        this.log.info({ evt: 'alert.suppressed', kind: ev.kind, key, suppressed: state.suppressed }, 'alert held back: one was mailed for this key within the period');
        return { sent: false, suppressed: state.suppressed };
      }
      // Claim the period before awaiting the sink, so events racing in while the mail is
      // being spooled count as suppressed instead of sending a second mail.
      if (!state) state = { since: t, suppressed: 0 };
      prevSentAt = state.sentAt;
      report = state.suppressed;
      state.sentAt = t;
      this.keys.delete(key);
      this.keys.set(key, state);
      this.prune(t, periodMs);

      const host = this.hostname();
      const from = `mlsd@${host}`;
      const to = [...s.adminEmails];
      // Loaded on the first alert only: the composer is megabytes of memory a quiet box never needs.
      const { default: MailComposer } = await import('nodemailer/lib/mail-composer');
      const message = await new MailComposer({
        from: { name: 'MLS mail server', address: from },
        to,
        subject: subjectOf(ev, kind),
        date: new Date(t),
        messageId: `<${t.toString(36)}.${randomBytes(6).toString('hex')}@${host}>`,
        headers: { 'Auto-Submitted': 'auto-generated', 'X-Mlsd-Event': ev.kind },
        text: bodyOf(ev, report, state.since),
      })
        .compile()
        .build();
      await this.sink(from, to, message);
      state.suppressed -= report; // events suppressed while the sink ran stay for the next mail
      state.since = t;
      this.log.info({ evt: 'alert.sent', kind: ev.kind, key, to, suppressed: report }, 'alert mailed to administrators');
      return { sent: true, suppressed: report };
    } catch (err) {
      // Give the period back: the next event of this key retries, and still reports the
      // events suppressed before this failure.
      if (state) state.sentAt = prevSentAt;
      this.log.error({ evt: 'alert.fail', kind: ev.kind, err: (err as Error)?.message ?? String(err) }, 'could not mail alert to administrators');
      return { sent: false, suppressed: 0 };
    }
  }

  /**
   * Bounds the key map: once over maxKeys, drops keys whose period has passed (they are at
   * the front), then the oldest ones even if still in their period, so thousands of distinct
   * IPs cannot grow it without limit. A dropped key just mails again on its next event.
   */
  private prune(t: number, periodMs: number): void {
    if (this.keys.size <= this.maxKeys) return;
    for (const [k, st] of this.keys) {
      if (st.sentAt !== undefined && t - st.sentAt < periodMs) break;
      this.keys.delete(k);
    }
    while (this.keys.size > this.maxKeys) this.keys.delete(this.keys.keys().next().value!);
  }
}

function subjectOf(ev: MlsdEvent, kind: KindText): string {
  const [en, zh] = kind.severity === 'critical' ? ['ALERT', '警示'] : kind.severity === 'warning' ? ['WARNING', '注意'] : ['NOTICE', '通知'];
  // The list in the subject: two mails for two lists must not read as one repeated.
  const zone = typeof ev.data?.zone === 'string' ? ev.data.zone : undefined;
  // Which standby, and which of its alarms: two of them must not read as one repeated.
  const peer = ev.kind === 'ha.peerAlarm' ? `${String(ev.data?.peer ?? '?')}: ${String(ev.data?.kind ?? '?')}` : undefined;
  const what = [ev.limit, ev.ip, zone, ev.account, peer].filter(Boolean).join(', ');
  return `[mlsd] ${en}: ${kind.en} / ${zh}：${kind.zh}${what ? ` (${what})` : ''}`;
}

/** Local time with its offset: admins read it without converting from UTC. */
export function formatTime(d: Date): string {
  const p = (n: number) => String(Math.trunc(Math.abs(n))).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ` +
    `${off < 0 ? '-' : '+'}${p(off / 60)}:${p(off % 60)}`
  );
}

function advice(ev: MlsdEvent): { en: string[]; zh: string[] } {
  const ip = ev.ip ?? '?';
  const account = ev.account ?? '?';
  if (ev.kind === 'auth.lockout') {
    return {
      en: [
        // An account lock carries no IP: it names every client that guessed at the account.
        ev.ip ? `Someone is guessing passwords from ${ip}.` : `Someone is guessing the password of ${account} (the clients are listed above).`,
        `If it is a legitimate user, check the password saved in their mail client.`,
        `The lock ends by itself after the lock period (auth.lockout.lockMinutes).`,
      ],
      zh: [
        ev.ip ? `有人正從 ${ip} 嘗試猜測密碼。` : `有人正在猜測 ${account} 的密碼（來源列於上方）。`,
        `若是合法使用者，請檢查其郵件軟體中儲存的密碼是否正確。`,
        `鎖定期間 (auth.lockout.lockMinutes) 結束後會自動解除。`,
      ],
    };
  }
  if (ev.kind === 'account.suspended') {
    return {
      en: [
        `The account cannot send until \`mlsd user unlock ${account}\`.`,
        `Its mailbox keeps receiving mail; its queued mail is held, not lost.`,
      ],
      zh: [
        `執行 \`mlsd user unlock ${account}\` 之前，此帳號無法寄信。`,
        `其信箱仍可正常收信；佇列中的郵件暫時保留，不會遺失。`,
      ],
    };
  }
  if (ev.kind === 'dnsbl.listed') {
    const zone = String(ev.data?.zone ?? '?');
    const label = String(ev.data?.label ?? 'own');
    if (label !== 'own') {
      return {
        en: [`${ip} is the ${label}'s address, not this server's own: mail sent through it may be refused. Tell whoever runs it (for the smarthost, the ISP).`],
        zh: [`${ip} 是 ${label} 的位址，並非本伺服器自己的位址：經由它寄出的郵件可能被拒收。請通知其管理者（smarthost 即為 ISP）。`],
      };
    }
    // Spamhaus PBL: not a spam listing but "this range should not send directly"; the
    // cause-hunting advice does not apply, the fix is with the ISP.
    const pbl = /spamhaus/.test(zone) && /\b127\.0\.0\.1[01]\b/.test(String(ev.data?.answer ?? ''));
    return {
      en: [
        'First find and stop the cause, or the list will add the address again: a compromised account (look for threshold or lockout alerts; change its password), an infected PC on the network sending mail directly (let only this server connect out to port 25 at the firewall), or an open relay (check relay.allowIps).',
        `Then request delisting at the ${zone} web site (the reason above usually gives the page); most lists also drop an address some time after the spam stops.`,
        ...(pbl ? ['127.0.0.10/127.0.0.11 on Spamhaus (PBL) means the ISP marked this address range as not meant to send mail directly: ask the ISP for a static address, or send through its smarthost.'] : []),
        'With dnsbl.autoReroute on (`mlsd config set dnsbl.autoReroute true`) and routing.smarthost set, mail normally sent directly goes through the smarthost while the address is listed.',
      ],
      zh: [
        '請先找出並排除原因，否則會再度被列入：帳號遭盜用（請留意臨界值或登入鎖定警示，並變更該帳號密碼）、網路上有中毒的電腦直接對外寄信（請在防火牆只允許本伺服器連出 25 埠），或成為開放轉寄 (open relay)（請檢查 relay.allowIps）。',
        `排除後，再到 ${zone} 的網站申請移除（上方原因說明通常附有網址）；多數黑名單在垃圾郵件停止一段時間後也會自動移除。`,
        ...(pbl ? ['Spamhaus 回應 127.0.0.10／127.0.0.11 (PBL) 表示 ISP 已將此位址區段標示為不應直接寄信：請向 ISP 申請固定 IP，或改經 ISP 的轉寄主機 (smarthost) 寄出。'] : []),
        '若開啟 dnsbl.autoReroute（`mlsd config set dnsbl.autoReroute true`）並設定 routing.smarthost，列入期間原本直接寄出的郵件會改經轉寄主機寄出。',
      ],
    };
  }
  if (ev.kind === 'dnsbl.delisted') {
    const still = Array.isArray(ev.data?.stillListedOn) ? (ev.data.stillListedOn as unknown[]).map(String) : [];
    return {
      en: [
        'Nothing to do for this list.',
        ...(still.length ? [`Still listed on ${still.join(', ')}: the alert for that list still applies.`] : []),
        'If the cause of the listing was not found, the address is likely to be listed again.',
      ],
      zh: [
        '此黑名單無需再處理。',
        ...(still.length ? [`仍列於 ${still.join(', ')}：該黑名單的警示仍然有效。`] : []),
        '若未找出被列入的原因，此位址很可能會再度被列入。',
      ],
    };
  }
  if (ev.kind === 'routing.rerouted') {
    return {
      en: [
        "Mail that would go directly to recipients' servers (routing.mode mx) now goes through routing.smarthost; it switches back by itself once no own address is listed.",
        "Mind the smarthost's limits (routing.smarthost.maxPerHour / maxPerDay): mail beyond them waits in the queue.",
        'The blacklist alert says what to do about the listing itself.',
      ],
      zh: [
        '原本直接寄往收件端伺服器的郵件 (routing.mode mx) 現改經 routing.smarthost 寄出；本機位址不再被列入黑名單後會自動切回。',
        '請留意轉寄主機的寄送上限 (routing.smarthost.maxPerHour / maxPerDay)：超過的郵件會在佇列中等候。',
        '黑名單本身的處理方式，請見黑名單警示信。',
      ],
    };
  }
  if (ev.kind.startsWith('backup.') || ev.kind.startsWith('restore.') || ['disk.swapped', 'disk.unknown', 'disk.foreign', 'disk.absent', 'disk.older'].includes(ev.kind)) return backupAdvice(ev.kind);
  if (ev.kind.startsWith('disk.')) return diskAdvice(ev.kind);
  if (ev.kind === 'ha.peerAlarm') {
    const peer = String(ev.data?.peer ?? '?');
    const kind = String(ev.data?.kind ?? '');
    return {
      en: [
        `The alarm is the standby box ${peer}'s own: \`mlsd alarm list\` on ${peer} shows it${kind.startsWith('disk.') ? ', `mlsd disk status` on it the disk' : ''}.`,
        `Once handled, acknowledge it there (\`mlsd alarm ack\` on ${peer}) and this one here (\`mlsd alarm ack\`).`,
      ],
      zh: [
        `此警報屬於備用機 ${peer}：請在 ${peer} 上執行 \`mlsd alarm list\` 查看${kind.startsWith('disk.') ? '，執行 `mlsd disk status` 查看硬碟狀態' : ''}。`,
        `處理完畢後，請在 ${peer} 上確認警報（\`mlsd alarm ack\`），並在本機確認此警報（\`mlsd alarm ack\`）。`,
      ],
    };
  }
  if (ev.kind === 'routing.restored') {
    return {
      en: ["Nothing to do: mail goes directly to recipients' servers again."],
      zh: ['無需處理：郵件已恢復直接寄往收件端伺服器。'],
    };
  }
  // threshold.warning / threshold.tripped. A daily counter resets at local midnight, a
  // per-minute one as its window slides; without a limit name both are mentioned.
  const name = (ev.limit ?? '<name>').replace(/^thresholds\./, '');
  const daily = /PerDay$/i.test(name);
  const sliding = !daily && ev.limit !== undefined;
  const en: string[] = [];
  const zh: string[] = [];
  if (ev.ip) {
    en.push(`Check the PC at ${ev.ip} for malware.`);
    zh.push(`請檢查 ${ev.ip} 這台電腦是否中毒或遭入侵。`);
  }
  if (ev.account) {
    en.push(`Change the password of ${ev.account}.`);
    zh.push(`請變更 ${ev.account} 的密碼。`);
  }
  en.push(
    daily ? 'The limit resets at local midnight.' : sliding ? 'The limit resets as the window slides.' : 'The limit resets as the window slides (per-minute limits) or at local midnight (daily limits).',
    `Change limits with \`mlsd config set thresholds.${name} N\`.`,
  );
  zh.push(
    daily ? '此限制於當地時間午夜重置。' : sliding ? '此限制隨時間視窗滑動而逐步解除。' : '此限制隨時間視窗滑動而解除（每分鐘限制），或於當地時間午夜重置（每日限制）。',
    `可用 \`mlsd config set thresholds.${name} N\` 調整限制。`,
  );
  return { en, zh };
}

type AdviceTable = Record<string, [string, string]>;

/** One line of advice by kind from a table (or its fallback), then where the details are. */
function tableAdvice(table: AdviceTable, kind: string, fallback: [string, string], details: [string, string]): { en: string[]; zh: string[] } {
  const [en, zh] = table[kind] ?? fallback;
  return { en: [en, details[0]], zh: [zh, details[1]] };
}

/** What to do about a backup or a restore (`mlsd backup status`, `mlsd restore status`). */
function backupAdvice(kind: string): { en: string[]; zh: string[] } {
  const a: AdviceTable = {
    'backup.failed': ['Check the NAS: is it on, is the share full, was its password changed? `mlsd backup target test NAME` checks it; the last complete backup stays as it was.', '請檢查 NAS：是否開機、分享空間是否已滿、密碼是否變更？可執行 `mlsd backup target test NAME` 檢查；上一份完整備份不受影響。'],
    'backup.verifyFailed': ['The damaged files are sent again at the next backup; if this repeats, the NAS disk may be failing.', '損毀的檔案會在下次備份時重新送出；若一再發生，NAS 的硬碟可能正在故障。'],
    'backup.verify.failed': ['Check the NAS (`mlsd backup target test NAME`).', '請檢查 NAS（`mlsd backup target test NAME`）。'],
    'disk.unknown': ['Check which disk is in the box; to restore onto it anyway: `mlsd restore start --from TARGET`.', '請確認主機內的硬碟；若仍要還原到此硬碟：`mlsd restore start --from TARGET`。'],
    'disk.foreign': ['Check which disk is in the box; to restore onto it anyway: `mlsd restore start --from TARGET`.', '請確認主機內的硬碟；若仍要還原到此硬碟：`mlsd restore start --from TARGET`。'],
    'disk.absent': ['Check the data disk, its cable and its mount; mail is not stored safely without it.', '請檢查資料硬碟、排線與掛載；沒有它郵件無法安全存放。'],
    'restore.retry': ['Bring the backup target (NAS) back; the restore goes on by itself.', '請讓備份目標 (NAS) 恢復連線；還原會自動繼續。'],
    'restore.failed': ['See `mlsd restore status`; fix the cause (the data disk full?), then `mlsd restore start --from TARGET` resumes it.', '請查看 `mlsd restore status`；排除原因（資料硬碟已滿？）後執行 `mlsd restore start --from TARGET` 繼續還原。'],
    'restore.nothing': ['Set up a backup target (`mlsd backup target add`) and back up; nothing could be restored this time.', '請設定備份目標（`mlsd backup target add`）並執行備份；此次無資料可還原。'],
  };
  return tableAdvice(a, kind, ['Mail is accepted meanwhile; follow it with `mlsd restore status`.', '期間仍可正常收信；可用 `mlsd restore status` 查看進度。'], ['Run `mlsd backup status` for the details.', '詳細資訊請執行 `mlsd backup status`。']);
}

/** What to do about the data disk (`mlsd disk status` shows it all). */
function diskAdvice(kind: string): { en: string[]; zh: string[] } {
  const a: AdviceTable = {
    'disk.failurePredicted': ['Replace the data disk soon: back up first (the mail on it is at risk).', '請儘快更換資料硬碟，並先完成備份（硬碟上的郵件有遺失風險）。'],
    'disk.sectorsRising': ['A disk whose bad sectors keep growing is wearing out: back up and plan its replacement.', '壞軌持續增加表示硬碟正在老化：請備份並安排更換。'],
    'disk.temperature': ['Check the fan, the air flow and the room temperature (disk.maxTemperatureC sets the limit).', '請檢查風扇、通風與機房溫度（上限由 disk.maxTemperatureC 設定）。'],
    'disk.usage': ['Free space: delete old mail or quarantine, or move mailboxes; at the highest level of disk.usageLevels new mail is refused (452 4.3.1, senders retry later).', '請釋放空間：刪除舊郵件或隔離區郵件；達到 disk.usageLevels 最高等級時將暫停收信（回應 452 4.3.1，寄件端稍後會重試）。'],
    'disk.missing': ['Check the data disk\'s cable and power; mail cannot be stored without it.', '請檢查資料硬碟的排線與電源；沒有硬碟就無法存放郵件。'],
    'disk.replaced': ['If you did not replace the disk, find out who did; if you did, restore the backup onto it.', '若並非您更換硬碟，請查明原因；若是您更換的，請將備份還原到新硬碟。'],
  };
  return tableAdvice(a, kind, ['Run `mlsd disk status`.', '請執行 `mlsd disk status`。'], ['Run `mlsd disk status` for the details.', '詳細資訊請執行 `mlsd disk status`。']);
}

function bodyOf(ev: MlsdEvent, suppressed: number, since: number): string {
  const at = new Date(ev.time);
  const when = Number.isNaN(at.getTime()) ? ev.time : formatTime(at);
  // Threshold events carry counts; others (a blacklist's answer and reason) are not counts.
  const counts = Object.values(ev.data ?? {}).every((v) => typeof v === 'number');
  const data = Object.entries(ev.data ?? {}).map(([k, v]) => `  ${k}: ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`);
  const facts = (ipL: string, acctL: string, limL: string) =>
    [ev.ip && `${ipL}${ev.ip}`, ev.account && `${acctL}${ev.account}`, ev.limit && `${limL}${ev.limit}`].filter((x): x is string => !!x);
  const { en, zh } = advice(ev);
  const sinceAt = formatTime(new Date(since));
  const lines = [
    `What happened: ${ev.text}`,
    `When: ${when}`,
    ...facts('IP: ', 'Account: ', 'Limit: '),
    ...(data.length ? [counts ? 'Counts:' : 'Details:', ...data] : []),
    ...(suppressed > 0 ? [`${suppressed} similar alert${suppressed === 1 ? ' was' : 's were'} suppressed since ${sinceAt}.`] : []),
    '',
    'What to do:',
    ...en.map((l) => `  - ${l}`),
    '',
    '----',
    '',
    `發生了什麼事：${ev.text}`,
    `時間：${when}`,
    ...facts('IP 位址：', '帳號：', '限制項目：'),
    ...(data.length ? [counts ? '計數：' : '詳細資料：', ...data] : []),
    ...(suppressed > 0 ? [`自 ${sinceAt} 以來，另有 ${suppressed} 則相同警示未寄出。`] : []),
    '',
    '建議處理方式：',
    ...zh.map((l) => `  - ${l}`),
    '',
    `-- mlsd (event ${ev.id}, ${ev.kind})`,
  ];
  // CRLF: the message goes into the spool as is, in wire form like mail received over SMTP.
  return lines.join('\r\n') + '\r\n';
}
