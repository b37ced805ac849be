// The front panel: buttons (debounced) drive the menu, the menu and the status cycle fill the
// LCD, and the LEDs show what the last poll of `status --json` found. A face like the console:
// it runs on both HA roles, and everything it reads or does goes through the command layer.
import type { ControlRequest, ControlResponse } from '../commands/control.js';
import type { Clock, Timer } from '../core/clock.js';
import type { ButtonName, GpioPanel, LedName } from '../hw/gpio.js';
import type { CharacterDisplay } from '../hw/lcd.js';
import type { Logger } from '../log/logger.js';
import { Debouncer } from './debounce.js';
import { panelFacts, type PanelFacts } from './facts.js';
import { Blinker, ledPatterns, type LedPattern } from './leds.js';
import { Menu, type MenuSettings } from './menu.js';

export interface PanelSettings extends MenuSettings {
  debounceMs: number;
  pollSeconds: number;
}

export interface PanelDeps {
  gpio: GpioPanel;
  display: CharacterDisplay;
  /** Runs what the menus do (a change reaches the HA standby before it returns). */
  run(req: ControlRequest): Promise<ControlResponse>;
  /** Runs the polls (`status`, `network show`): read only, so nothing is pushed to the standby
   *  every few seconds, and a slow standby does not freeze the screen. Defaults to run. */
  query?(req: ControlRequest): Promise<ControlResponse>;
  settings(): PanelSettings;
  /** The configured hostname (a standby's status carries none). */
  hostname(): string;
  adminPort: number;
  clock: Clock;
  log: Logger;
}

/** What happened to a press: handled by the menu, or dropped while a command was running. */
export type PressOutcome = 'handled' | 'dropped';

/** The timer reads the LAN settings on every this many polls (a minute at the default 5 s). */
const LAN_POLL_EVERY = 12;

export class Panel {
  private readonly debouncer: Debouncer;
  private readonly blinker: Blinker;
  private readonly menu: Menu;
  private facts: PanelFacts;
  private polling: Promise<void> = Promise.resolve();
  private pollTimer: Timer | null = null;
  private handling: Promise<void> | null = null;
  private pressWaiters: ((o: PressOutcome) => void)[] = [];
  private stopped = false;
  /** Timer polls since the LAN settings were last read. */
  private polls = 0;
  /** Debounced presses counted so far (handled or dropped). */
  private counted = 0;

  constructor(private readonly d: PanelDeps) {
    this.facts = panelFacts(null, null, d.hostname());
    this.blinker = new Blinker(d.gpio, d.clock);
    this.debouncer = new Debouncer(d.clock, () => d.settings().debounceMs, (b) => this.pressed(b));
    this.menu = new Menu({
      run: (argv) => this.run(argv),
      facts: () => this.facts,
      refresh: () => this.refresh(),
      settings: () => d.settings(),
      adminPort: d.adminPort,
      cols: d.display.cols,
      rows: d.display.rows,
      clock: d.clock,
      changed: () => this.redraw(),
    });
  }

  async start(): Promise<void> {
    this.d.gpio.onButton((b, closed) => this.debouncer.edge(b, closed));
    this.d.display.backlight(true);
    this.blinker.start();
    this.menu.start();
    this.redraw();
    await this.refresh();
    this.armPoll();
  }

  /** The screen as the LCD shows it. */
  screen(): string[] {
    return this.d.display.screen();
  }

  /** Each LED's pattern and whether it is lit right now. */
  leds(): Record<LedName, { pattern: LedPattern; on: boolean }> {
    const patterns = this.blinker.current();
    const on = this.d.gpio.leds();
    const out = {} as Record<LedName, { pattern: LedPattern; on: boolean }>;
    for (const led of Object.keys(patterns) as LedName[]) out[led] = { pattern: patterns[led], on: on[led] };
    return out;
  }

  /** How many debounced presses have been counted since the start. */
  get pressesCounted(): number {
    return this.counted;
  }

  /** Resolves when the next debounced press has been handled (screen redrawn) or dropped; null after timeoutMs. */
  nextPress(timeoutMs: number): Promise<PressOutcome | null> {
    return new Promise((resolve) => {
      const t = this.d.clock.setTimeout(() => {
        this.pressWaiters = this.pressWaiters.filter((w) => w !== done);
        resolve(null);
      }, timeoutMs);
      const done = (o: PressOutcome) => {
        this.d.clock.clearTimeout(t);
        resolve(o);
      };
      this.pressWaiters.push(done);
    });
  }

  /** Polls `status --json` (and the LAN address) now; never throws. Polls run one after another. */
  refresh(lan = true): Promise<void> {
    // A poll that throws (a bug) is logged and the chain goes on: the screens never freeze.
    this.polling = this.polling.then(() => this.pollOnce(lan)).catch((err: Error) => this.d.log.error({ evt: 'panel.poll.fail', err: err.message }, 'panel poll failed'));
    return this.polling;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.d.clock.clearTimeout(this.pollTimer);
    this.debouncer.stop();
    this.menu.stop();
    this.blinker.stop();
    await this.handling?.catch(() => undefined);
    await this.polling;
    this.d.display.show([]);
    this.d.display.backlight(false);
    await this.d.display.close();
    await this.d.gpio.close();
  }

  private pressed(button: ButtonName): void {
    if (this.stopped) return;
    this.counted++;
    // Who pressed what, when: the buttons act on the box (reboot, switchover) as the console does.
    this.d.log.info({ evt: 'panel.press', button }, 'front-panel button pressed');
    // Whoever waits for "the next press" gets this press's outcome, not a later one's.
    const waiters = this.pressWaiters;
    this.pressWaiters = [];
    const settle = (o: PressOutcome) => {
      for (const w of waiters) w(o);
    };
    if (this.handling) {
      // A command from an earlier press is running: a press now would act on a screen the
      // person cannot see yet. Dropped, as the console drops typing while a command runs.
      this.d.log.info({ evt: 'panel.press.dropped', button }, 'button pressed while a command runs: ignored');
      return settle('dropped');
    }
    const done = (async () => {
      try {
        await this.menu.press(button);
      } catch (err) {
        // The menu catches command failures itself; anything else is a bug worth a log line, not a dead panel.
        this.d.log.error({ evt: 'panel.press.fail', button, err: (err as Error).message }, 'panel could not handle a press');
      }
      this.redraw();
    })();
    this.handling = done;
    void done.finally(() => {
      this.handling = null;
      settle('handled');
    });
  }

  private redraw(): void {
    if (!this.stopped) this.d.display.show(this.menu.lines());
  }

  private async run(argv: string[]): Promise<ControlResponse> {
    const res = await this.d.run({ argv, json: true });
    // The command's words only: values (an address) are in the command's own log and event.
    const words = argv.filter((a) => !a.startsWith('-')).slice(0, 2).join(' ');
    if (res.ok) this.d.log.info({ evt: 'panel.command', command: words }, 'command run from the front panel');
    // The refusal quotes what was typed (an address), never a secret: no panel command takes one.
    else this.d.log.info({ evt: 'panel.command.refused', command: words, err: res.error }, 'front-panel command refused');
    return res;
  }

  private armPoll(): void {
    if (this.stopped) return;
    this.pollTimer = this.d.clock.setTimeout(() => {
      // The LAN settings change only by `network set` (after which the menu refreshes them): the
      // timer reads them every LAN_POLL_EVERY polls, not every few seconds (on a box that is two
      // `ip` processes per read).
      this.polls = (this.polls + 1) % LAN_POLL_EVERY;
      void this.refresh(this.polls === 0).then(() => this.armPoll());
    }, this.d.settings().pollSeconds * 1000);
    this.pollTimer.unref();
  }

  private async pollOnce(lan: boolean): Promise<void> {
    if (this.stopped) return;
    const quiet = async (argv: string[]): Promise<ControlResponse> => {
      try {
        return await (this.d.query ?? this.d.run)({ argv, json: true });
      } catch (err) {
        return { ok: false, error: (err as Error).message };
      }
    };
    const [status, network] = await Promise.all([quiet(['status']), lan ? quiet(['network', 'show']) : null]);
    const before = this.facts;
    const address = network ? (network.ok ? network.json : null) : { address: before.address };
    const next = panelFacts(status.ok ? status.json : null, address, this.d.hostname(), status.ok ? null : status.error);
    this.facts = next;
    if (next.pollError !== null && before.pollError === null) this.d.log.error({ evt: 'panel.poll.fail', err: next.pollError }, 'panel could not read the status');
    // Mail moved since the last poll: the activity LED flashes until the next one.
    const moved = next.serving && before.serving && next.traffic !== before.traffic;
    this.blinker.set(ledPatterns(next, moved));
    this.redraw();
  }
}
