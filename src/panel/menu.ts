// The panel's state machine: the status cycle, the menu, and the pages the menu opens. Four
// buttons drive it: Up/Down move, Enter selects or confirms, Esc goes back. Everything it does
// to the box is a command of the one command layer (`run`), so the LCD can do nothing the CLI
// cannot, and a command's refusal or failure is shown, never a crash of the panel.
// Time comes from the injected clock: the cycle and the menu timeout are tested on a ManualClock.
import type { Clock, Timer } from '../core/clock.js';
import type { ControlResponse } from '../commands/control.js';
import type { ButtonName } from '../hw/gpio.js';
import type { PanelFacts } from './facts.js';
import { LanEditor, type Lan } from './lan-editor.js';
import { statusScreens } from './screens.js';
import { row, wrap } from './text.js';

export interface MenuSettings {
  cycleSeconds: number;
  menuTimeoutSeconds: number;
}

export interface MenuDeps {
  /** Runs argv through the command layer. */
  run(argv: string[]): Promise<ControlResponse>;
  /** What the last poll found. */
  facts(): PanelFacts;
  /** Polls now (after an action that changes what the status shows). */
  refresh(): Promise<void>;
  settings(): MenuSettings;
  /** The web admin's HTTPS port, for the Admin URL page. */
  adminPort: number;
  cols: number;
  rows: number;
  clock: Clock;
  /** Called when the screen changed without a press (cycle, timeout, a command's answer). */
  changed(): void;
}

/** A page the menu opened: its rows, and what Enter and Esc do there. */
interface Page {
  lines: string[];
  enter?: () => void | Promise<void>;
  esc: () => void;
  /** Held longer than the menu timeout (a new password: time to write it down), but not for ever:
   *  an unattended box in a shared rack must not show its admin password to whoever passes. */
  sticky?: boolean;
}

type View = { kind: 'status'; index: number } | { kind: 'menu'; index: number } | { kind: 'edit'; editor: LanEditor } | { kind: 'page'; page: Page } | { kind: 'busy'; lines: string[] };

interface Item {
  label: string;
  open(): void | Promise<void>;
}

/** How long a sticky page (the new admin password) stays without a press. */
export const STICKY_PAGE_MS = 5 * 60_000;

export class Menu {
  private view: View = { kind: 'status', index: 0 };
  private cycleTimer: Timer | null = null;
  private idleTimer: Timer | null = null;
  private readonly items: Item[];
  /** After stop(): a command that answers late (the panel waits for it) arms no timer again. */
  private stopped = false;

  constructor(private readonly d: MenuDeps) {
    this.items = [
      { label: 'Network', open: () => this.network() },
      { label: 'Admin URL', open: () => this.adminUrl() },
      { label: 'Alarms', open: () => this.alarms() },
      { label: 'HA switchover', open: () => this.switchover() },
      { label: 'Reset admin passwd', open: () => this.resetPassword() },
      { label: 'Reboot', open: () => this.power('reboot', 'Reboot') },
      { label: 'Shut down', open: () => this.power('shutdown', 'Shut down') },
    ];
  }

  start(): void {
    this.armCycle();
  }

  stop(): void {
    this.stopped = true;
    this.d.clock.clearTimeout(this.cycleTimer);
    this.d.clock.clearTimeout(this.idleTimer);
    this.cycleTimer = this.idleTimer = null;
  }

  /** Where the panel is: 'status', 'menu', 'edit', 'page' or 'busy'. */
  get where(): View['kind'] {
    return this.view.kind;
  }

  /** One debounced press. Presses while a command runs are ignored (the screen says it is working). */
  async press(button: ButtonName): Promise<void> {
    const v = this.view;
    if (v.kind === 'busy') return;
    switch (v.kind) {
      case 'status': {
        const n = this.screens().length;
        if (button === 'enter') this.go({ kind: 'menu', index: 0 });
        else if (button === 'esc') this.go({ kind: 'status', index: 0 });
        else this.go({ kind: 'status', index: (v.index + (button === 'down' ? 1 : n - 1)) % n });
        return;
      }
      case 'menu': {
        const n = this.items.length;
        if (button === 'esc') this.go({ kind: 'status', index: 0 });
        else if (button === 'enter') await this.items[v.index]!.open();
        else this.go({ kind: 'menu', index: (v.index + (button === 'down' ? 1 : n - 1)) % n });
        return;
      }
      case 'edit':
        return this.editPress(v.editor, button);
      case 'page':
        if (button === 'esc') v.page.esc();
        else if (button === 'enter' && v.page.enter) await v.page.enter();
        // Up/Down on a page: nothing, but the press still counts as activity.
        else this.go(v);
        return;
    }
  }

  /** The rows to show now. */
  lines(): string[] {
    const { cols, rows } = this.d;
    const v = this.view;
    switch (v.kind) {
      case 'status': {
        const all = this.screens();
        return all[v.index % all.length]!;
      }
      case 'menu': {
        const start = Math.max(0, v.index - (rows - 1));
        return this.items.slice(start, start + rows).map((it, i) => row(`${start + i === v.index ? '>' : ' '}${it.label}`, cols));
      }
      case 'edit': {
        const e = v.editor;
        const caret = ' '.repeat(e.column) + '^';
        const title = { address: 'LAN address', netmask: 'LAN netmask', gateway: 'LAN gateway' }[e.field];
        return rows >= 4 ? [title, e.shown(), caret, row('Up/Dn Ent> Esc<', cols)] : [e.shown(), caret];
      }
      case 'page':
        return v.page.lines.slice(0, rows);
      case 'busy':
        return v.lines;
    }
  }

  private screens(): string[][] {
    return statusScreens(this.d.facts(), this.d.cols, this.d.rows);
  }

  /** Shows `view`; restarts the menu timeout (outside the status cycle) and the cycle (inside). */
  private go(view: View): void {
    this.view = view;
    this.d.clock.clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.stopped) return;
    if (view.kind === 'status') {
      this.armCycle();
      return;
    }
    this.d.clock.clearTimeout(this.cycleTimer);
    this.cycleTimer = null;
    const timeoutMs = this.d.settings().menuTimeoutSeconds * 1000;
    this.idleTimer = this.d.clock.setTimeout(() => this.idle(), view.kind === 'page' && view.page.sticky ? Math.max(timeoutMs, STICKY_PAGE_MS) : timeoutMs);
    this.idleTimer.unref();
  }

  private idle(): void {
    const v = this.view;
    // A command under way: wait another round.
    if (v.kind === 'busy') return this.go(v);
    this.go({ kind: 'status', index: 0 });
    this.d.changed();
  }

  private armCycle(): void {
    this.d.clock.clearTimeout(this.cycleTimer);
    if (this.stopped) return;
    this.cycleTimer = this.d.clock.setTimeout(() => {
      const v = this.view;
      if (v.kind !== 'status') return;
      this.view = { kind: 'status', index: (v.index + 1) % this.screens().length };
      this.armCycle();
      this.d.changed();
    }, this.d.settings().cycleSeconds * 1000);
    this.cycleTimer.unref();
  }

  private page(lines: string[], rest: Omit<Page, 'lines'>): void {
    this.go({ kind: 'page', page: { lines: lines.map((l) => row(l, this.d.cols)), ...rest } });
  }

  private toMenu = (label: string) => () => this.go({ kind: 'menu', index: Math.max(0, this.items.findIndex((i) => i.label === label)) });

  /** Runs argv with "working" on the screen; a refusal or failure becomes a page, `ok` gets the answer. */
  private async command(argv: string[], working: string, back: () => void, ok: (res: { text: string; json?: unknown }) => void | Promise<void>): Promise<void> {
    this.go({ kind: 'busy', lines: [row(working, this.d.cols)] });
    this.d.changed();
    let res: ControlResponse;
    try {
      res = await this.d.run(argv);
    } catch (err) {
      res = { ok: false, error: (err as Error).message };
    }
    if (res.ok) await ok(res);
    else this.failed(res.error, back);
    this.d.changed();
  }

  /** A command's error: its first two rows, then the way back. */
  private failed(error: string, back: () => void): void {
    const { cols, rows } = this.d;
    // Two rows are little: the command's name (the person just chose it) and option dashes go.
    const plain = error.replace(/^(mlsd: )?([a-z]+ )?[a-z]+: /, '').replace(/^--([a-z-]+): /, '$1: ');
    const text = wrap(plain, cols, Math.max(1, Math.min(2, rows - 1)));
    this.page(['Refused:', ...text, 'Esc: back'], { esc: back });
  }

  // -- Network ---------------------------------------------------------------------------------

  private network(): Promise<void> {
    const back = this.toMenu('Network');
    return this.command(['network', 'show'], 'Reading network...', back, (res) => {
      const n = lanOf(res.json);
      this.page([`IP ${n.address}`, `NM ${n.netmask}`, `GW ${n.gateway}`, 'Enter: set LAN'], { esc: back, enter: () => this.edit(new LanEditor(n)) });
    });
  }

  private edit(editor: LanEditor): void {
    this.go({ kind: 'edit', editor });
  }

  private editPress(e: LanEditor, button: ButtonName): void | Promise<void> {
    if (button === 'up' || button === 'down') e.step(button === 'up' ? 1 : -1);
    else if (button === 'esc') {
      if (!e.back()) return this.network();
    } else if (!e.next()) return this.confirmLan(e);
    this.go({ kind: 'edit', editor: e });
  }

  private confirmLan(e: LanEditor): void {
    const lan = e.value();
    const retry = () => {
      e.toField('address');
      this.edit(e);
    };
    this.page(['Apply? Enter=yes', `IP ${lan.address}`, `NM ${lan.netmask}`, `GW ${lan.gateway}`], {
      esc: retry,
      enter: () =>
        this.command(['network', 'set', '--address', lan.address, '--netmask', lan.netmask, '--gateway', lan.gateway], 'Applying LAN...', retry, async (res) => {
          const applied = lanOf((res.json as { applied?: unknown } | undefined)?.applied ?? lan);
          this.page(['LAN set', `IP ${applied.address}`, `NM ${applied.netmask}`, `GW ${applied.gateway}`], { esc: this.toMenu('Network') });
          await this.d.refresh();
        }),
    });
  }

  // -- Admin URL -------------------------------------------------------------------------------

  private adminUrl(): Promise<void> {
    const back = this.toMenu('Admin URL');
    return this.command(['network', 'show'], 'Reading network...', back, (res) => {
      const address = lanOf(res.json).address;
      const port = this.d.adminPort === 443 ? '' : `:${this.d.adminPort}`;
      this.page(['Web admin:', ...wrap(`https://${address}${port}/`, this.d.cols, this.d.rows - 1)], { esc: back });
    });
  }

  // -- Alarms ----------------------------------------------------------------------------------

  private async alarms(): Promise<void> {
    const back = this.toMenu('Alarms');
    this.go({ kind: 'busy', lines: [row('Reading alarms...', this.d.cols)] });
    this.d.changed();
    await this.d.refresh();
    const a = this.d.facts().alarms;
    if (!a) return this.failed(this.d.facts().pollError ?? 'this box reports no alarms', back);
    if (a.unacknowledged === 0) return this.page(['Alarms: none new', ...wrap(a.latest ? `Last: ${a.latest}` : '', this.d.cols, 2)], { esc: back });
    this.page([`Alarms: ${a.unacknowledged} new`, ...wrap(a.latest ?? '', this.d.cols, 2), 'Enter: ack all'], {
      esc: back,
      enter: () =>
        this.command(['alarm', 'ack'], 'Acknowledging...', back, async (res) => {
          const n = (res.json as { acknowledged?: unknown } | undefined)?.acknowledged;
          this.page([`Acknowledged: ${typeof n === 'number' ? n : '?'}`, 'Esc: back'], { esc: back });
          await this.d.refresh();
        }),
    });
  }

  // -- Confirmed actions -----------------------------------------------------------------------

  private switchover(): void {
    const back = this.toMenu('HA switchover');
    this.page(['Start HA switchover?', 'Enter=yes Esc=no'], {
      esc: back,
      enter: () =>
        this.command(['ha', 'switchover'], 'Switching over...', back, async (res) => {
          this.page(['Switchover:', ...wrap(res.text, this.d.cols, this.d.rows - 1)], { esc: back });
          await this.d.refresh();
        }),
    });
  }

  private resetPassword(): void {
    const back = this.toMenu('Reset admin passwd');
    this.page(['Reset admin password', 'Enter=yes Esc=no'], {
      esc: back,
      enter: () =>
        this.page(['Really? The old one', 'stops working.', 'Enter=yes Esc=no'], {
          esc: back,
          enter: () =>
            this.command(['admin', 'reset'], 'Resetting...', back, (res) => {
              const pw = (res.json as { password?: unknown } | undefined)?.password;
              if (typeof pw !== 'string') return this.failed('admin reset gave no password', back);
              this.page(['New admin password:', ...wrap(pw, this.d.cols, Math.max(1, this.d.rows - 2)), 'Esc when noted'], { esc: back, sticky: true });
            }),
        }),
    });
  }

  private power(verb: 'reboot' | 'shutdown', label: string): void {
    const back = this.toMenu(label);
    this.page([`${label} the box?`, 'Enter=yes Esc=no'], {
      esc: back,
      enter: () => this.command(['system', verb, '--confirm'], `${label}...`, back, (res) => this.page([...wrap(res.text || `${label} requested`, this.d.cols, this.d.rows)], { esc: back })),
    });
  }
}

function lanOf(json: unknown): Lan {
  const o = (json ?? {}) as Record<string, unknown>;
  const s = (v: unknown) => (typeof v === 'string' && v ? v : '?');
  return { address: s(o.address), netmask: s(o.netmask), gateway: s(o.gateway) };
}
