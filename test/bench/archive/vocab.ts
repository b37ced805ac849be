/**
 * The corpus's words, most frequent first (their order is their Zipf rank), and the long
 * tails of names that make rare terms: a real archive is searched both for 報價 (in a large
 * share of all mail) and for one customer's name (in a few dozen messages).
 */

/** Two-character Traditional Chinese business words. */
export const ZH_COMMON: readonly string[] = (
  '報價 發票 合約 會議 出貨 訂單 付款 客戶 供應 採購 交期 品質 檢驗 樣品 規格 價格 折扣 數量 庫存 倉庫 ' +
  '物流 運費 報關 進口 出口 匯款 帳款 結帳 對帳 收據 預算 成本 利潤 營收 業績 銷售 行銷 市場 產品 型號 ' +
  '零件 材料 生產 製造 工廠 產能 排程 延誤 急件 確認 回覆 通知 附件 資料 文件 報告 簡報 企劃 專案 進度 ' +
  '會計 財務 稅務 審計 法務 人事 招募 面試 薪資 獎金 請假 加班 出差 差旅 住宿 機票 行程 拜訪 展覽 廠商 ' +
  '經銷 代理 授權 保固 維修 退貨 換貨 瑕疵 客訴 服務 支援 技術 系統 軟體 硬體 網路 資安 密碼 帳號 權限 ' +
  '備份 更新 升級 測試 驗收 交貨 包裝 標籤 棧板 貨櫃 船期 空運 海運 快遞 簽收 簽約 續約 解約 條款 協議 ' +
  '保密 責任 賠償 罰則 違約 仲裁 訴訟 律師 股東 董事 經理 主管 同仁 部門 單位 總部 據點 門市 通路 電商 ' +
  '平台 訂閱 會員 優惠 促銷 活動 廣告 品牌 設計 開發 研發 專利 商標 認證 標準 法規 環保 安全 衛生 稽核 ' +
  '改善 流程 制度 規定 政策 公告 說明 建議 意見 討論 決議 紀錄 議程 時間 地點 日期 截止 期限 提前 延期 ' +
  '取消 變更 調整 修正 新增 刪除 查詢 統計 分析 評估 預測 目標 策略 計畫 執行 追蹤 檢討 結案 月報 週報 ' +
  '季報 年度 上半 下半 季度 月底 年底 今天 明天 昨天 下週 上週 本週 謝謝 麻煩 辛苦 敬請 惠予 煩請 撥冗 ' +
  '參閱 查收 知悉 敬祝 順心 商祺 台北 新竹 台中 台南 高雄 桃園 上海 深圳 香港 東京 美國 日本 德國 越南 ' +
  '泰國 美金 台幣 歐元 日圓 匯率 利率 銀行 貸款 支票 現金 信用 額度 保險 理賠 稅額 發貨 到貨 缺貨 補貨 ' +
  '盤點 入庫 出庫 領料 退料 報廢 良率 不良 重工 模具 設備 機台 保養 停機 電力 水電 租金 合作 夥伴 協力 ' +
  '外包 委託 承攬 投標 標案 得標 開標 報名 議價 詢價 比價 估價 單價 總價 含稅 未稅 運送 寄送 收件 寄件 ' +
  '地址 電話 傳真 信箱 聯絡 窗口 負責 承辦 核准 簽核 審核 批准 駁回 退回 待辦 處理 完成 已經 尚未 目前 ' +
  '預計 盡快 儘速 務必 請問 感謝 抱歉 不便 配合 協助 提供 準備 安排 確定 同意'
).split(' ');

/** Chinese particles and connectives between the words (not searched for, but in the text). */
export const ZH_GLUE: readonly string[] = '的 了 是 在 和 與 及 並 將 已 請 我們 貴司 本公司 這 此 該 如 於 為 有 會 可 需 再'.split(' ');

const ZH_SURNAMES = '陳林黃張李王吳劉蔡楊許鄭謝郭洪邱曾廖賴徐周葉蘇莊呂江何蕭羅高潘簡朱鍾彭游詹胡施沈余盧'.split('');
const ZH_GIVEN = '志明淑芬雅婷家豪俊宏怡君建國美玲宗翰佩珊冠宇惠如柏廷欣怡承恩詩涵文彥秀蘭嘉玲信宏子軒品妤凱文'.split('');

/** Tail i of the Chinese names: a surname and two given-name characters (about 73,000). */
export const ZH_TAIL_N = ZH_SURNAMES.length * ZH_GIVEN.length * ZH_GIVEN.length;
export function zhTail(i: number): string {
  const g = ZH_GIVEN.length;
  return ZH_SURNAMES[Math.floor(i / (g * g)) % ZH_SURNAMES.length]! + ZH_GIVEN[Math.floor(i / g) % g]! + ZH_GIVEN[i % g]!;
}

/** English business lemmas with their inflections (the first form is the most used). */
export const EN_COMMON: readonly (readonly string[])[] = (
  'invoice invoices invoiced invoicing|order orders ordered ordering|shipment shipments|shipping ship shipped|' +
  'payment payments paid pay|quote quotation quotes quoted quotations|contract contracts contracted|meeting meetings|' +
  'price prices pricing priced|delivery deliveries deliver delivered|customer customers|supplier suppliers|' +
  'purchase purchases purchased purchasing|schedule schedules scheduled|confirm confirmed confirmation confirms|' +
  'attached attachment attachments|review reviewed reviews reviewing|report reports reported reporting|' +
  'budget budgets budgeted|cost costs costing|account accounts accounting|sample samples sampling|' +
  'specification specifications spec specs|product products|inventory inventories|warehouse warehouses|' +
  'freight|customs|export exports exported exporting|import imports imported importing|balance balances|' +
  'overdue|remittance remittances|receipt receipts|tax taxes taxed|audit audits audited auditing|' +
  'project projects|deadline deadlines|request requests requested requesting|approve approved approval approvals|' +
  'sign signed signature signatures|agreement agreements|renewal renew renewed|terms term|condition conditions|' +
  'quality|inspection inspections inspect inspected|defect defects defective|return returns returned|' +
  'refund refunds refunded|warranty warranties|repair repairs repaired|support supported|service services|' +
  'update updates updated updating|plan plans planned planning|forecast forecasts forecasting|sales|' +
  'marketing market markets|revenue revenues|margin margins|profit profits profitable|quarter quarterly quarters|' +
  'annual annually|monthly month months|weekly week weeks|team teams|manager managers management|department departments|' +
  'office offices|travel travelling traveled|visit visits visited visiting|exhibition exhibitions|' +
  'container containers|vessel vessels|courier couriers|tracking tracked|package packages packaging packaged|' +
  'label labels labeled|pallet pallets|stock stocks stocked|volume volumes|unit units|amount amounts|' +
  'currency currencies|rate rates|bank banks banking|transfer transfers transferred|credit credits credited|' +
  'reminder reminders remind reminded|issue issues|problem problems|solution solutions|proposal proposals proposed|' +
  'negotiation negotiate negotiated|compliance compliant|policy policies|security|password passwords|' +
  'system systems|software|license licenses licensed|server servers|network networks|backup backups|' +
  'vendor vendors|partner partners partnership|distributor distributors distribution|agent agents|' +
  'discount discounts discounted|estimate estimates estimated|certificate certificates certified|' +
  'mold molds|tooling|assembly assemblies assembled|component components|material materials|' +
  'production produce produced producing|capacity capacities|yield yields|prototype prototypes|' +
  'payroll|bonus bonuses|recruit recruiting recruited|interview interviews interviewed|training trained|' +
  'insurance insured|claim claims claimed|lawyer lawyers|dispute disputes|arbitration|confidential confidentiality|' +
  'Taipei|Hsinchu|Taichung|Kaohsiung|Shanghai|Shenzhen|Tokyo|Singapore|Germany|Vietnam'
)
  .split('|')
  .map((l) => l.split(' '));

export const EN_GLUE: readonly string[] = (
  'the the the and and to to of of a a in for for is is we we you you your our on with be will this that ' +
  'as by at from please are have has it can would could should not all any per'
).split(' ');

const EN_SYL_A = 'b c d f g h k l m n p r s t v z br kr st tr'.split(' ');
const EN_SYL_V = 'a e i o u ai ea io'.split(' ');
const EN_SYL_C = ['', 'n', 'r', 'l', 's', 'x', 'th', 'm'];

/** Tail i of the English names: made-up company and product names (about 110,000). */
export const EN_TAIL_N = (EN_SYL_A.length * EN_SYL_V.length) ** 2 * EN_SYL_C.length * EN_SYL_V.length;
export function enTail(i: number): string {
  const a = EN_SYL_A.length;
  const v = EN_SYL_V.length;
  const c = EN_SYL_C.length;
  const parts = [
    EN_SYL_A[i % a]!,
    EN_SYL_V[Math.floor(i / a) % v]!,
    EN_SYL_A[Math.floor(i / (a * v)) % a]!,
    EN_SYL_V[Math.floor(i / (a * v * a)) % v]!,
    EN_SYL_C[Math.floor(i / (a * v * a * v)) % c]!,
  ];
  const w = parts.join('');
  return w[0]!.toUpperCase() + w.slice(1);
}

/** Romanised first and last names for the addresses. */
export const FIRST = 'amy kevin jessica jason vivian eric grace tony cindy peter wendy david irene frank joyce allen sandy ryan tina leo'.split(' ');
export const LAST = 'chen lin huang chang lee wang wu liu tsai yang hsu cheng hsieh kuo hung'.split(' ');

/** The box's own domains, and the companies it writes to. */
export const LOCAL_DOMAINS = ['formosa-trading.test', 'ft-logistics.test', 'ft-tech.test'];
export const EXTERNAL_DOMAINS = (
  'acme-supply pacific-freight nippon-parts sh-electronics kaohsiung-steel hsinchu-semi evergreen-agency ' +
  'global-plastics taichung-machinery delta-components osaka-trading berlin-tools saigon-textiles bangkok-foods ' +
  'sg-logistics hk-finance tpe-law-office audit-partners northstar-bank island-insurance bluewave-software ' +
  'redleaf-packaging goldcoast-distribution summit-consulting harbor-customs-broker lotus-chemicals ' +
  'orient-cables jade-optics pearl-printing'
)
  .split(' ')
  .map((d) => `${d}.test`);
