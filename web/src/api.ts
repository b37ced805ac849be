// The box's JSON API: the session, and commands through the one command layer. The CSRF token
// lives in memory only (never in a cookie or in storage another page could read).
let csrf = '';

export interface RunResult {
  ok: boolean;
  text?: string;
  json?: unknown;
  error?: string;
  exitCode?: number;
}

export class NotLoggedIn extends Error {}

/** A request the page makes by itself (a refresh, a progress poll): it keeps the session, but does not count as the administrator being there. */
const BACKGROUND = 'X-MLSD-Background';

async function request(method: string, url: string, body?: unknown, background = false): Promise<Response> {
  const headers: Record<string, string> = {};
  if (background) headers[BACKGROUND] = '1';
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf;
  const res = await fetch(url, { method, headers, body: body === undefined ? null : JSON.stringify(body), credentials: 'same-origin' });
  if (res.status === 401 && url !== '/api/login') throw new NotLoggedIn();
  return res;
}

export async function session(): Promise<{ user: string } | null> {
  const res = await fetch('/api/session', { credentials: 'same-origin' });
  if (!res.ok) return null;
  const s = (await res.json()) as { user: string; csrf: string };
  csrf = s.csrf;
  return s;
}

/** Logs in; on refusal the status (401 wrong password, 429 locked out or busy) and the server's words. */
export async function login(user: string, password: string): Promise<{ ok: true } | { ok: false; error: string; status: number; busy?: boolean; retryAfterSeconds?: number }> {
  const res = await request('POST', '/api/login', { user, password });
  const body = (await res.json().catch(() => ({}))) as { csrf?: string; error?: string; busy?: boolean; retryAfterSeconds?: number };
  if (!res.ok || !body.csrf) return { ok: false, error: body.error ?? `HTTP ${res.status}`, status: res.status, busy: body.busy, retryAfterSeconds: body.retryAfterSeconds };
  csrf = body.csrf;
  return { ok: true };
}

export async function logout(): Promise<void> {
  await request('POST', '/api/logout', {}).catch(() => undefined);
  csrf = '';
}

/** Runs a command (argv as on the CLI); a refusal comes back as { ok: false, error }. */
export async function run(argv: string[], stdin?: string, o: { background?: boolean } = {}): Promise<RunResult> {
  const res = await request('POST', '/api/run', stdin === undefined ? { argv } : { argv, stdin }, o.background);
  const body = (await res.json().catch(() => ({ ok: false, error: `HTTP ${res.status}` }))) as RunResult;
  if (!res.ok && body.ok === undefined) return { ok: false, error: body.error ?? `HTTP ${res.status}` };
  return body;
}

/** A command's JSON answer, or a thrown Error carrying its refusal. */
export async function runJson<T>(argv: string[], o: { background?: boolean } = {}): Promise<T> {
  const r = await run(argv, undefined, o);
  if (!r.ok) throw new Error(r.error ?? 'failed');
  return r.json as T;
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await request('GET', url);
  if (!res.ok) throw new Error(((await res.json().catch(() => ({}))) as { error?: string }).error ?? `HTTP ${res.status}`);
  return (await res.json()) as T;
}
