// Two languages, zh-TW and en. Each page keeps its own table of strings; the type makes the
// Chinese table name every key the English one has, so no string is left untranslated.
export type Lang = 'en' | 'zh-TW';

const STORE_KEY = 'mlsd.lang';

/** The language chosen on this browser, else Traditional Chinese when the browser prefers Chinese. */
function initialLang(): Lang {
  const saved = localStorage.getItem(STORE_KEY);
  if (saved === 'en' || saved === 'zh-TW') return saved;
  const first = (navigator.languages?.[0] ?? navigator.language ?? '').toLowerCase();
  return first === 'zh' || first.startsWith('zh-') ? 'zh-TW' : 'en';
}

let current: Lang = initialLang();
const listeners: (() => void)[] = [];

export function lang(): Lang {
  return current;
}

export function setLang(l: Lang): void {
  current = l;
  localStorage.setItem(STORE_KEY, l);
  document.documentElement.lang = l;
  for (const fn of listeners) fn();
}

export function onLangChange(fn: () => void): void {
  listeners.push(fn);
}

export type Table<K extends string> = { en: Record<K, string>; 'zh-TW': Record<K, string> };

/** A page's strings: `S('title')` in the current language; `{name}` placeholders filled from `vars`. */
export function strings<K extends string>(table: Table<K>): (key: K, vars?: Record<string, string | number>) => string {
  return (key, vars) => {
    const text = table[current][key] ?? table.en[key] ?? key;
    return vars ? text.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m)) : text;
  };
}

/** Numbers and times as the reader's language writes them. */
export function fmtNumber(n: number): string {
  return n.toLocaleString(current);
}

export function fmtTime(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined || iso === '') return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString(current, { dateStyle: 'short', timeStyle: 'short' });
}

export function fmtBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(n < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}
