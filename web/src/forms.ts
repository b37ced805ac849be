// Forms for settings, built from the config schema the box serves (/api/schema): the input kind
// and its limits come from the schema, the value from `config get`, and a save is `config set`
// per changed key, so the box checks every value against the same schema as the CLI does and a
// refusal names the key.
import { getJson, run } from './api.js';
import { h, say } from './dom.js';
import { strings } from './i18n.js';

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  default?: unknown;
  description?: string;
}

const S = strings({
  en: { save: 'Save', saved: 'Saved.', savedRestart: 'Saved; takes effect at the next start: {keys}', nothing: 'Nothing changed.', onePerLine: 'one per line', refused: 'Not saved: {error}', yes: 'on' },
  'zh-TW': { save: '儲存', saved: '已儲存。', savedRestart: '已儲存；下次啟動後生效：{keys}', nothing: '沒有變更。', onePerLine: '每行一個', refused: '未儲存：{error}', yes: '啟用' },
});

let schemaP: Promise<JsonSchema> | null = null;
const schema = () => (schemaP ??= getJson<JsonSchema>('/api/schema'));

function subSchema(root: JsonSchema, key: string): JsonSchema | null {
  let cur: JsonSchema | undefined = root;
  for (const part of key.split('.')) {
    cur = cur?.properties?.[part] ?? cur?.anyOf?.find((a) => a.properties?.[part])?.properties?.[part];
    if (!cur) return null;
  }
  return cur;
}

function valueAt(doc: unknown, key: string): unknown {
  let cur = doc;
  for (const part of key.split('.')) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[part] : undefined;
  return cur;
}

export interface FieldSpec {
  key: string;
  label: string;
  /** Shown under the field, in the reader's language. */
  hint?: string;
  /** Names of an enum's values in the reader's language (the value itself is what is saved). */
  choices?: Record<string, string>;
}

type Field = { spec: FieldSpec; read(): unknown; initial: unknown; error: HTMLElement };

function typeOf(s: JsonSchema): string {
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== 'null') : s.type;
  return t ?? (s.anyOf ? 'string' : 'json');
}

function input(spec: FieldSpec, s: JsonSchema, value: unknown): { el: HTMLElement; read(): unknown } {
  const id = `f-${spec.key.replace(/\./g, '-')}`;
  const t = typeOf(s);
  if (t === 'boolean') {
    const el = h('input', { type: 'checkbox', id, name: spec.key });
    el.checked = value === true;
    return { el, read: () => el.checked };
  }
  if (s.enum) {
    const el = h('select', { id, name: spec.key }, s.enum.map((v) => h('option', { value: String(v) }, spec.choices?.[String(v)] ?? String(v))));
    el.value = String(value ?? '');
    return { el, read: () => el.value };
  }
  if (t === 'number' || t === 'integer') {
    const el = h('input', { type: 'number', id, name: spec.key, step: t === 'integer' ? 1 : 'any', min: s.minimum ?? null, max: s.maximum ?? null });
    el.value = value === undefined || value === null ? '' : String(value);
    // A number the browser cannot read is sent as text, so the box refuses it with the key named.
    return { el, read: () => (el.value.trim() !== '' && Number.isFinite(Number(el.value)) ? Number(el.value) : el.value) };
  }
  if (t === 'array' && s.items && ['string', 'number'].includes(typeOf(s.items))) {
    const el = h('textarea', { id, name: spec.key, rows: 3, placeholder: S('onePerLine') });
    el.value = Array.isArray(value) ? value.join('\n') : '';
    const num = typeOf(s.items) === 'number';
    return { el, read: () => el.value.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => (num && Number.isFinite(Number(l)) ? Number(l) : l)) };
  }
  if (t === 'string') {
    const el = h('input', { type: 'text', id, name: spec.key, autocomplete: 'off' });
    el.value = typeof value === 'string' ? value : '';
    return { el, read: () => el.value };
  }
  // Lists of objects (routes, rules): edited as JSON, checked by the box like everything else.
  const el = h('textarea', { id, name: spec.key, rows: 6, class: 'json' });
  el.value = JSON.stringify(value ?? null, null, 2);
  return {
    el,
    read: () => {
      try {
        return JSON.parse(el.value) as unknown;
      } catch {
        return el.value;
      }
    },
  };
}

/** A form for some config keys; `onSaved` runs after a save that changed something. */
export async function configForm(fields: FieldSpec[], onSaved?: () => void): Promise<HTMLFormElement> {
  const [root, doc] = await Promise.all([schema(), run(['config', 'get'])]);
  const current = doc.ok ? doc.json : {};
  const built: Field[] = [];
  // novalidate: the box is the one judge of a value (the same schema as the CLI), and says which key is wrong.
  const form = h('form', { class: 'config', novalidate: true });
  for (const spec of fields) {
    const s = subSchema(root, spec.key) ?? {};
    const value = valueAt(current, spec.key);
    const { el, read } = input(spec, s, value);
    const error = h('span', { class: 'field-error', role: 'alert' });
    built.push({ spec, read, initial: JSON.stringify(read()), error });
    form.append(h('div', { class: 'field' }, h('label', { for: el.id }, spec.label), el, spec.hint ? h('small', {}, spec.hint) : null, error));
  }
  const status = h('div', { class: 'form-status' });
  form.append(h('button', { type: 'submit' }, S('save')), status);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void (async () => {
      let changed = 0;
      let failed = false;
      const restart: string[] = [];
      for (const f of built) {
        f.error.textContent = '';
        const now = JSON.stringify(f.read());
        if (now === f.initial) continue;
        const r = await run(['config', 'set', f.spec.key, now]);
        if (!r.ok) {
          failed = true;
          f.error.textContent = r.error ?? '';
          continue;
        }
        changed++;
        f.initial = now;
        if ((r.json as { restartNeeded?: boolean } | undefined)?.restartNeeded) restart.push(f.spec.key);
      }
      if (failed) return say(status, S('refused', { error: built.map((f) => f.error.textContent).filter(Boolean).join('; ') }), 'error');
      if (changed === 0) return say(status, S('nothing'));
      say(status, restart.length ? S('savedRestart', { keys: restart.join(', ') }) : S('saved'), 'ok');
      onSaved?.();
    })();
  });
  return form;
}
