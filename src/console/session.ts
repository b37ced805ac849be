// One serial console: the login prompt, then a shell over the command layer. Nothing but a
// login is read before the administrator has logged in; input that arrives while a login is
// being checked, a failed-login wait runs or a command runs is dropped, not typed ahead, so a
// script on the cable cannot queue guesses behind the wait.
import type { CommandSpec } from '../commands/registry.js';
import { usageOf } from '../commands/registry.js';
import type { ControlRequest, ControlResponse } from '../commands/control.js';
import type { Clock, Timer } from '../core/clock.js';
import type { EventInput } from '../events/events.js';
import type { Logger } from '../log/logger.js';
import { LineEditor } from './line-editor.js';
import { TEXTS, ZH_SUMMARIES, type ConsoleLang } from './texts.js';
import { tokenize } from './tokenize.js';

export interface ConsoleSettings {
  lang: ConsoleLang;
  idleMinutes: number;
  freeFailures: number;
  maxDelaySeconds: number;
}

export interface ConsoleDeps {
  write(text: string): void;
  run(req: ControlRequest): Promise<ControlResponse>;
  specs(): CommandSpec[];
  verify(user: string, password: string): Promise<boolean>;
  settings(): ConsoleSettings;
  hostname(): string;
  emit(ev: EventInput): void;
  log: Logger;
  clock: Clock;
  device: string;
}

type State = 'login' | 'password' | 'shell' | 'secret' | 'busy';

/** Printable text only, for anything shown on the terminal: no escape sequence gets through. */
export function printable(s: string, max = Infinity): string {
  const clean = s.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?');
  return clean.length > max ? clean.slice(0, max) + '...' : clean;
}

export class ConsoleSession {
  private readonly editor = new LineEditor();
  private state: State = 'busy';
  private user = '';
  /** Failed logins in a row, across sessions; a successful login clears it. */
  private failures = 0;
  private idle: Timer | null = null;
  /** The command waiting for its secret (user add, admin passwd). */
  private pending: string[] | null = null;
  private closed = false;
  /** A failed-login wait is running: no login prompt before it ends, whatever happens to the line. */
  private waiting = false;

  constructor(private readonly d: ConsoleDeps) {}

  private get t() {
    return TEXTS[this.d.settings().lang];
  }

  private out(text: string): void {
    if (!this.closed) this.d.write(text.replace(/\r?\n/g, '\r\n'));
  }

  /** The terminal is there (the line opened): banner and login prompt. */
  begin(): void {
    this.out(`\n${this.t.banner(printable(this.d.hostname(), 64))}\n\n`);
    if (!this.waiting) this.promptLogin();
  }

  /** The line was lost: whoever was logged in is logged out. */
  hangUp(): void {
    if (this.state === 'shell' || this.state === 'secret') this.logout('hangup');
    this.state = 'busy';
  }

  close(): void {
    this.closed = true;
    this.d.clock.clearTimeout(this.idle);
  }

  feed(chunk: Buffer): void {
    if (this.closed || this.state === 'busy') return;
    if (this.state !== 'login') this.touch();
    const { echo, lines } = this.editor.feed(chunk);
    if (echo) this.out(echo);
    // One line at a time: the first Enter hands over, what follows it in the chunk is dropped.
    const line = lines[0];
    if (line === undefined) return;
    void this.line(line).catch((err: Error) => {
      this.d.log.error({ evt: 'console.error', err: err.message }, 'console line failed');
      if (this.state === 'busy') this.promptLogin();
    });
  }

  private promptLogin(): void {
    this.d.clock.clearTimeout(this.idle);
    this.state = 'login';
    this.editor.reset(false);
    this.out(`${printable(this.d.hostname(), 64)} ${this.t.login}`);
  }

  private prompt(): void {
    // The idle time counts from each prompt too: a timer that fired while a command ran did nothing.
    this.touch();
    this.state = 'shell';
    this.editor.reset(false);
    this.out(`admin@${printable(this.d.hostname(), 64)}> `);
  }

  /** Restarts the idle timer: any key counts as activity. */
  private touch(): void {
    this.d.clock.clearTimeout(this.idle);
    const ms = Math.round(this.d.settings().idleMinutes * 60_000);
    this.idle = this.d.clock.setTimeout(() => this.idleOut(), ms);
    this.idle.unref();
  }

  private idleOut(): void {
    if (this.closed) return;
    if (this.state === 'shell' || this.state === 'secret') {
      this.out(`\n${this.t.idleLogout}\n\n`);
      this.logout('idle');
      this.promptLogin();
    } else if (this.state === 'password') {
      this.out('\n');
      this.promptLogin();
    }
  }

  private logout(reason: 'exit' | 'idle' | 'hangup'): void {
    this.d.clock.clearTimeout(this.idle);
    this.pending = null;
    this.d.log.info({ evt: 'console.logout', device: this.d.device, reason });
    this.d.emit({ kind: 'console.logout', severity: 'info', text: `serial console: admin logged out (${reason})`, account: 'admin' });
  }

  private async line(line: string): Promise<void> {
    switch (this.state) {
      case 'login':
        if (line.trim() === '' || line === '\x03') return this.promptLogin();
        this.user = line.trim();
        this.state = 'password';
        this.editor.reset(true);
        this.touch();
        return this.out(this.t.password);
      case 'password':
        // Ctrl-C abandons the login: no password was tried, so no failure is counted.
        if (line === '\x03') return this.promptLogin();
        return this.checkLogin(line);
      case 'shell':
        return this.command(line);
      case 'secret':
        return this.secretGiven(line);
    }
  }

  private async checkLogin(password: string): Promise<void> {
    this.state = 'busy';
    this.d.clock.clearTimeout(this.idle);
    const user = this.user;
    this.user = '';
    const ok = await this.d.verify(user, password);
    if (this.closed) return;
    if (ok) {
      this.failures = 0;
      this.d.log.info({ evt: 'console.login', device: this.d.device });
      this.d.emit({ kind: 'console.login', severity: 'info', text: 'serial console: admin logged in', account: 'admin' });
      this.out(`${this.t.welcome}\n`);
      this.touch();
      return this.prompt();
    }
    this.failures++;
    const shown = printable(user, 64);
    const s = this.d.settings();
    const over = this.failures - s.freeFailures;
    const waitS = over >= 0 ? Math.min(2 ** over, s.maxDelaySeconds) : 0;
    this.d.emit({
      kind: 'console.loginFailed',
      severity: 'warning',
      text: `serial console: failed login as "${shown}" (${this.failures} in a row${waitS ? `; next attempt in ${waitS} s` : ''})`,
      data: { user: shown, failures: this.failures, waitSeconds: waitS, device: this.d.device },
    });
    this.out(`\n${this.t.loginIncorrect}\n`);
    if (!waitS) return this.promptLogin();
    this.out(`${this.t.wait(waitS)}\n`);
    // Input during the wait is dropped (state busy), so the wait bounds the guessing rate.
    this.waiting = true;
    const t = this.d.clock.setTimeout(() => {
      this.waiting = false;
      if (!this.closed) this.promptLogin();
    }, waitS * 1000);
    t.unref();
  }

  private async command(line: string): Promise<void> {
    if (line === '\x03') return this.prompt();
    let argv: string[];
    try {
      argv = tokenize(line);
    } catch {
      this.out(`${this.t.unknownQuote}\n`);
      return this.prompt();
    }
    if (argv.length === 0) return this.prompt();
    const [first] = argv;
    if (argv.length === 1 && (first === 'exit' || first === 'logout' || first === 'quit')) {
      this.out(`${this.t.loggedOut}\n\n`);
      this.logout('exit');
      return this.promptLogin();
    }
    if (first === 'help' || first === '?') {
      this.out(this.help());
      return this.prompt();
    }
    const spec = this.specOf(argv);
    if (spec?.stdin) {
      // The CLI's --password-stdin: here the secret is asked for, without echo.
      this.pending = argv.filter((a) => a !== '--password-stdin');
      this.state = 'secret';
      this.editor.reset(true);
      return this.out(this.t.newPassword);
    }
    return this.runCommand({ argv: argv.filter((a) => a !== '--json'), json: argv.includes('--json') });
  }

  private async secretGiven(secret: string): Promise<void> {
    const argv = this.pending;
    this.pending = null;
    if (!argv || secret === '\x03') return this.prompt();
    return this.runCommand({ argv, stdin: secret });
  }

  private async runCommand(req: ControlRequest): Promise<void> {
    this.state = 'busy';
    this.d.log.info({ evt: 'console.command', device: this.d.device, command: printable(req.argv.slice(0, 2).join(' '), 40) });
    const res = await this.d.run(req);
    if (this.closed) return;
    if (this.state !== 'busy') return; // logged out (idle, hang-up) while it ran
    const text = res.ok ? (req.json ? JSON.stringify(res.json ?? null, null, 2) : res.text) : `error: ${res.error}`;
    // Output can carry what others typed (an address, a subject): no escape sequence reaches the terminal.
    this.out(`${printable(text)}\n`);
    this.prompt();
  }

  /** The longest registered command name that argv starts with. */
  private specOf(argv: string[]): CommandSpec | undefined {
    let best: CommandSpec | undefined;
    for (const s of this.d.specs()) {
      const words = s.name.split(' ');
      if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.name.split(' ').length)) best = s;
    }
    return best;
  }

  private help(): string {
    const lang = this.d.settings().lang;
    const rows = this.d.specs().map((s) => {
      const usage = usageOf(s);
      const summary = lang === 'zh-TW' ? (ZH_SUMMARIES[s.name] ?? s.summary) : s.summary;
      return `  ${usage}\n      ${summary}`;
    });
    return [this.t.helpHeader, ...rows, ...this.t.helpBuiltins.map((b) => `  ${b}`), ''].join('\n');
  }
}
