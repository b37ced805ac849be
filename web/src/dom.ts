// Building the page: elements are made and text is set with textContent, never innerHTML, so
// text from the box (a subject, a sender, an event) is shown as text and never parsed as HTML.
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((ev: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (k === 'class') el.className = String(v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

export function clear(el: Element): void {
  el.replaceChildren();
}

/** A section of a page with its heading. */
export function section(title: string, ...children: (Child | Child[])[]): HTMLElement {
  return h('section', { class: 'card' }, h('h2', {}, title), ...children);
}

/** A table of rows; each column names its header and how a row shows in it. */
export function table<R>(rows: R[], columns: { head: string; cell: (r: R) => Child | Child[] }[], empty: string): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, c.head)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) => h('td', {}, c.cell(r)))))),
    ),
  );
}

/** A line saying what happened: ok (green) or an error (red), replacing the last one in `where`. */
export function say(where: HTMLElement, text: string, kind: 'ok' | 'error' | 'info' = 'info'): void {
  where.replaceChildren(h('p', { class: `msg ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text));
}

/** A button that runs an async action, disabled while it runs. */
export function actionButton(label: string, action: () => Promise<void>, attrs: Attrs = {}): HTMLButtonElement {
  const b = h('button', { type: 'button', ...attrs }, label);
  b.addEventListener('click', () => {
    b.disabled = true;
    void action().finally(() => {
      b.disabled = false;
    });
  });
  return b;
}

/** A small "label: value" list. */
export function facts(pairs: [string, Child | Child[]][]): HTMLElement {
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]).flat());
}

/** A badge: ok, warn, bad. */
export function badge(text: string, kind: 'ok' | 'warn' | 'bad' | 'idle'): HTMLElement {
  return h('span', { class: `badge ${kind}` }, text);
}
