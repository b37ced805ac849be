// The web admin's shell: the login, the navigation, the language switch, and a page per
// `#/name`. Pages render into a fresh element each time; a session that ended brings back the login.
import { login, logout, NotLoggedIn, session } from './api.js';
import { append, clear, h, say } from './dom.js';
import { lang, onLangChange, setLang, strings } from './i18n.js';
import { PAGES, type Page } from './pages.js';

const S = strings({
  en: {
    product: 'MLS mail server',
    user: 'User name',
    password: 'Password',
    login: 'Log in',
    logout: 'Log out',
    language: 'Language',
    loginTitle: 'Administrator login',
    failed: 'Login failed: {error}',
    wrong: 'Login failed: wrong user name or password.',
    locked: 'Too many failed logins from this network. Try again in {seconds} s.',
    busy: 'Too many logins at once. Try again in a moment.',
    loadFailed: 'This page could not be loaded: {error}',
    nav: 'Pages',
  },
  'zh-TW': {
    product: 'MLS 郵件伺服器',
    user: '使用者名稱',
    password: '密碼',
    login: '登入',
    logout: '登出',
    language: '語言',
    loginTitle: '管理者登入',
    failed: '登入失敗：{error}',
    wrong: '登入失敗：使用者名稱或密碼錯誤。',
    locked: '此網路登入失敗次數過多，請於 {seconds} 秒後再試。',
    busy: '同時登入的要求過多，請稍後再試。',
    loadFailed: '無法載入此頁面：{error}',
    nav: '頁面',
  },
});

const top = document.getElementById('top')!;
const app = document.getElementById('app')!;
let loggedIn = false;

function langSwitch(): HTMLElement {
  const sel = h('select', { id: 'lang', 'aria-label': S('language') }, h('option', { value: 'zh-TW' }, '繁體中文'), h('option', { value: 'en' }, 'English'));
  sel.value = lang();
  sel.addEventListener('change', () => setLang(sel.value === 'en' ? 'en' : 'zh-TW'));
  return sel;
}

function current(): Page {
  const id = location.hash.replace(/^#\/?/, '');
  return PAGES.find((p) => p.id === id) ?? PAGES[0]!;
}

function renderTop(): void {
  clear(top);
  const page = current();
  append(top, [
    h('span', { class: 'brand' }, S('product')),
    loggedIn
      ? h('nav', { 'aria-label': S('nav') }, PAGES.map((p) => h('a', { href: `#/${p.id}`, class: p === page ? 'active' : null, 'aria-current': p === page ? 'page' : null }, p.title())))
      : null,
    h('span', { class: 'spacer' }),
    langSwitch(),
    loggedIn ? h('button', { type: 'button', id: 'logout', onclick: () => void logout().then(showLogin) }, S('logout')) : null,
  ]);
}

function showLogin(): void {
  loggedIn = false;
  renderTop();
  document.title = `${S('loginTitle')} · mlsd`;
  const user = h('input', { id: 'user', name: 'user', autocomplete: 'username', value: 'admin', required: true });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const status = h('div', {});
  const form = h(
    'form',
    { class: 'card login' },
    h('h1', {}, S('loginTitle')),
    h('div', { class: 'field' }, h('label', { for: 'user' }, S('user')), user),
    h('div', { class: 'field' }, h('label', { for: 'password' }, S('password')), password),
    h('button', { type: 'submit', id: 'login' }, S('login')),
    status,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void login(user.value, password.value).then((r) => {
      password.value = '';
      if (r.ok) return show();
      // The box's refusals in the reader's language; anything else as the box said it.
      const text = r.status === 401 ? S('wrong') : r.status === 429 ? (r.busy ? S('busy') : S('locked', { seconds: r.retryAfterSeconds ?? '?' })) : S('failed', { error: r.error });
      say(status, text, 'error');
    });
  });
  app.replaceChildren(form);
  password.focus();
}

let renderSeq = 0;

async function show(): Promise<void> {
  // Not ready until this render has its data (a language switch re-renders the same page).
  delete document.body.dataset.ready;
  loggedIn = true;
  renderTop();
  const page = current();
  document.title = `${page.title()} · mlsd`;
  const seq = ++renderSeq;
  const root = h('div', { class: 'page', id: `page-${page.id}` });
  app.replaceChildren(root);
  try {
    await page.render(root);
    // Tests and the speed bench wait for this: the page has its data and answers clicks.
    if (seq === renderSeq) document.body.dataset.ready = page.id;
  } catch (err) {
    if (err instanceof NotLoggedIn) return showLogin();
    if (seq === renderSeq) say(root, S('loadFailed', { error: (err as Error).message }), 'error');
  }
}

async function boot(): Promise<void> {
  document.documentElement.lang = lang();
  onLangChange(() => (loggedIn ? void show() : showLogin()));
  window.addEventListener('hashchange', () => {
    delete document.body.dataset.ready;
    if (loggedIn) void show();
  });
  if (await session()) await show();
  else showLogin();
}

void boot();
