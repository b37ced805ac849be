// What the serial console says, in English and Traditional Chinese (config console.lang).
// Command summaries come from the command specs (English); `help` in zh-TW shows this table's
// wording where it has one, the spec's otherwise.

export type ConsoleLang = 'en' | 'zh-TW';

export interface ConsoleTexts {
  banner: (host: string) => string;
  login: string;
  password: string;
  loginIncorrect: string;
  wait: (seconds: number) => string;
  welcome: string;
  idleLogout: string;
  loggedOut: string;
  helpHeader: string;
  helpBuiltins: string[];
  unknownQuote: string;
  newPassword: string;
}

export const TEXTS: Record<ConsoleLang, ConsoleTexts> = {
  en: {
    banner: (host) => `mlsd serial console on ${host}`,
    login: 'login: ',
    password: 'Password: ',
    loginIncorrect: 'Login incorrect',
    wait: (s) => `Too many failed logins: wait ${s} s`,
    welcome: 'Logged in. Type "help" for the commands, "exit" to log out.',
    idleLogout: 'Idle too long: logged out',
    loggedOut: 'Logged out',
    helpHeader: 'Commands:',
    helpBuiltins: ['help                show this list', 'exit | logout       log out'],
    unknownQuote: 'unterminated quote',
    newPassword: 'New password: ',
  },
  'zh-TW': {
    banner: (host) => `mlsd 序列主控台（${host}）`,
    login: '帳號: ',
    password: '密碼: ',
    loginIncorrect: '登入失敗',
    wait: (s) => `登入失敗次數過多：請等待 ${s} 秒`,
    welcome: '已登入。輸入「help」查看指令，輸入「exit」登出。',
    idleLogout: '閒置過久，已自動登出',
    loggedOut: '已登出',
    helpHeader: '指令：',
    helpBuiltins: ['help                顯示本清單', 'exit | logout       登出'],
    unknownQuote: '引號未成對',
    newPassword: '新密碼: ',
  },
};

/** Traditional Chinese summaries of the commands, by name. */
export const ZH_SUMMARIES: Record<string, string> = {
  status: '顯示系統狀態',
  'user add': '新增郵件使用者（接著輸入密碼）',
  'user passwd': '變更使用者密碼（接著輸入密碼）',
  'user del': '刪除郵件使用者',
  'user list': '列出郵件使用者',
  'user unlock': '解除使用者的登入鎖定',
  'user suspend': '暫停使用者寄信（帳號遭盜用時）',
  'alias add': '新增別名',
  'alias del': '刪除別名',
  'alias list': '列出別名',
  'config get': '讀取設定值',
  'config set': '設定設定值（JSON 格式）',
  'events list': '列出事件',
  'queue list': '列出寄送佇列',
  'queue flush': '立即重試整個佇列',
  'queue retry': '立即重試一封郵件',
  'queue delete': '從佇列刪除一封郵件',
  'dkim show': '顯示網域的 DKIM DNS 紀錄',
  'quarantine list': '列出隔離區郵件',
  'quarantine show': '顯示隔離區郵件',
  'quarantine release': '放行隔離區郵件',
  'quarantine delete': '刪除隔離區郵件',
  'ha status': '顯示高可用（HA）狀態',
  'ha switchover': '切換到另一台主機',
  'ha promote': '強制本機成為主要主機',
  'admin passwd': '設定管理員密碼（網頁管理與序列主控台）',
  'admin reset': '將管理員密碼重設為新的隨機密碼並顯示',
  'network show': '顯示本機的區域網路設定',
  'network set': '設定本機的區域網路位址、子網路遮罩與閘道（不會複製到 HA 另一台）',
  'system reboot': '重新啟動本機（需加 --confirm）',
  'system shutdown': '關閉本機電源（需加 --confirm）',
  'alarm list': '列出尚未確認的嚴重事件',
  'alarm ack': '確認一個警報（依 ID），或不加 ID 確認目前全部警報',
  'panel press': '按下前面板按鈕（僅限模擬主機板：up、down、enter、esc）',
  'panel screen': '顯示前面板 LCD 目前的畫面',
  'panel leds': '顯示前面板指示燈的狀態（熄、亮、慢閃、快閃）',
};
