// Mail policy: who may relay, the sender-login rule, the thresholds that stop an outbreak, and
// who gets the alerts. Every field is a config key, saved through `config set`.
import { section } from './dom.js';
import { configForm } from './forms.js';
import { strings } from './i18n.js';
import type { Page } from './pages.js';

const S = strings({
  en: {
    title: 'Mail policy',
    relay: 'Relay control',
    relayIps: 'Client addresses allowed to relay',
    relayIpsHint: 'Addresses or ranges such as 192.168.1.0/24, one per line',
    relayDomains: 'Remote domains anyone may relay to',
    relayAuth: 'Logged-in senders may relay',
    localFromOutside: 'Our domain as sender from outside without login',
    localFromOutsideHint: 'Refuse: taken for a forgery; allow: for mailing lists that resend our users’ posts',
    reject: 'Refuse',
    allow: 'Allow',
    senderRule: 'Sender and login',
    senderLogin: 'A login may send only as addresses it owns',
    senderLoginHint: 'Refuse: mail whose login does not own its sender is refused',
    thresholds: 'Thresholds (0 = no limit)',
    ipMin: 'Messages per client address per minute',
    ipRcptMin: 'Recipients per client address per minute',
    ipDay: 'Messages per client address per day',
    acctDay: 'Messages per login per day',
    acctNewRcpt: 'New recipients per login per day (past it the account is suspended)',
    ipConnMin: 'Connections per client address per minute',
    ipConc: 'Open connections per client address',
    exemptIps: 'Addresses no threshold applies to',
    exemptAccounts: 'Logins no threshold applies to',
    alerts: 'Alerts',
    thresholdAlert: 'Mail the administrators when a threshold trips',
    adminEmails: 'Who gets alert mail',
    adminEmailsHint: 'Addresses, one per line',
  },
  'zh-TW': {
    title: '郵件政策',
    relay: '轉送控制',
    relayIps: '允許轉送的用戶端位址',
    relayIpsHint: '位址或網段，例如 192.168.1.0/24，每行一個',
    relayDomains: '任何人都可轉送到的外部網域',
    relayAuth: '已登入的寄件者可轉送',
    localFromOutside: '外部未登入者以本地網域為寄件者',
    localFromOutsideHint: '拒絕：視為偽造；允許：供轉發本地使用者貼文的郵遞論壇使用',
    reject: '拒絕',
    allow: '允許',
    senderRule: '寄件者與登入帳號',
    senderLogin: '登入帳號只能以自己的位址寄信',
    senderLoginHint: '拒絕：登入帳號不擁有寄件者位址時拒收',
    thresholds: '門檻（0 = 不限制）',
    ipMin: '每個用戶端位址每分鐘郵件數',
    ipRcptMin: '每個用戶端位址每分鐘收件者數',
    ipDay: '每個用戶端位址每日郵件數',
    acctDay: '每個登入帳號每日郵件數',
    acctNewRcpt: '每個登入帳號每日新收件者數（超過即停用帳號）',
    ipConnMin: '每個用戶端位址每分鐘連線數',
    ipConc: '每個用戶端位址同時連線數',
    exemptIps: '不受門檻限制的位址',
    exemptAccounts: '不受門檻限制的登入帳號',
    alerts: '警示',
    thresholdAlert: '觸發門檻時寄信通知管理者',
    adminEmails: '警示信收件者',
    adminEmailsHint: '位址，每行一個',
  },
});

export const policyPage: Page = {
  id: 'policy',
  title: () => S('title'),
  async render(root) {
    const [relay, sender, thresholds, alerts] = await Promise.all([
      configForm([
        { key: 'relay.allowIps', label: S('relayIps'), hint: S('relayIpsHint') },
        { key: 'relay.allowRecipientDomains', label: S('relayDomains') },
        { key: 'relay.allowAuthenticated', label: S('relayAuth') },
        { key: 'relay.localSenderFromOutside', label: S('localFromOutside'), hint: S('localFromOutsideHint'), choices: { reject: S('reject'), allow: S('allow') } },
      ]),
      configForm([{ key: 'senderLoginMismatch', label: S('senderLogin'), hint: S('senderLoginHint'), choices: { reject: S('reject'), allow: S('allow') } }]),
      configForm([
        { key: 'thresholds.perIpMessagesPerMinute', label: S('ipMin') },
        { key: 'thresholds.perIpRecipientsPerMinute', label: S('ipRcptMin') },
        { key: 'thresholds.perIpMessagesPerDay', label: S('ipDay') },
        { key: 'thresholds.perAccountMessagesPerDay', label: S('acctDay') },
        { key: 'thresholds.perAccountNewRecipientsPerDay', label: S('acctNewRcpt') },
        { key: 'thresholds.perIpConnectionsPerMinute', label: S('ipConnMin') },
        { key: 'thresholds.perIpConcurrentConnections', label: S('ipConc') },
        { key: 'thresholds.exemptIps', label: S('exemptIps') },
        { key: 'thresholds.exemptAccounts', label: S('exemptAccounts') },
      ]),
      configForm([
        { key: 'thresholds.alert', label: S('thresholdAlert') },
        { key: 'alerts.adminEmails', label: S('adminEmails'), hint: S('adminEmailsHint') },
      ]),
    ]);
    root.append(section(S('relay'), relay), section(S('senderRule'), sender), section(S('thresholds'), thresholds), section(S('alerts'), alerts));
  },
};
