// `panel press | panel screen | panel leds`: the sim board's buttons and the LCD over the command
// layer, for tests and for a person trying `make run`. They run on a standby too: the panel does.
import type { CommandSpec } from '../commands/registry.js';
import { BUTTONS, type ButtonName, type SimGpioPanel } from '../hw/gpio.js';
import type { Panel } from './panel.js';

export interface PanelCommandDeps {
  panel: Panel;
  /** The sim adapter, null on a board with real buttons. */
  sim: SimGpioPanel | null;
  board: string;
  debounceMs(): number;
}

/** How long `panel press` waits for its press to be handled (a switchover may take a while);
 *  under the CLI's 30 s wait for an answer, so the CLI hears why rather than a timeout. */
const PRESS_TIMEOUT_MS = 25_000;

export function panelCommands(deps: () => PanelCommandDeps | null): CommandSpec[] {
  const live = (): PanelCommandDeps => {
    const d = deps();
    if (!d) throw new Error('the front panel is not running (panel.enabled is false, or the daemon is still starting)');
    return d;
  };
  return [
    {
      name: 'panel press',
      summary: 'press a front-panel button on the sim board (up, down, enter, esc); prints the screen after it',
      args: [{ name: 'BUTTON', required: true }],
      standby: true,
      run: async (input) => {
        const d = live();
        const button = input.arg('BUTTON');
        if (!(BUTTONS as readonly string[]).includes(button)) throw new Error(`panel press: no button "${button.slice(0, 20)}" (buttons: ${BUTTONS.join(', ')})`);
        if (!d.sim) throw new Error(`panel press: the buttons of board ${d.board} are real; press them`);
        const counted = d.panel.pressesCounted;
        const handled = d.panel.nextPress(PRESS_TIMEOUT_MS);
        // Held well past the debounce time, with bounce: the press the debouncer must count once,
        // while the contact is held. Presses of one button made at the same time (several
        // commands at once) chatter into one another and may count as one, as fingers would:
        // a press that no count came from answers so rather than waiting for one.
        await d.sim.press(button as ButtonName, { holdMs: d.debounceMs() * 2 + 10 });
        // The finger is off the button only once the open contact has settled: a press made by
        // the next command at once (a script, a test) would otherwise land in this release's
        // debounce window and not count, which no finger is quick enough to do.
        await new Promise((r) => setTimeout(r, d.debounceMs() + 5));
        if (d.panel.pressesCounted === counted) throw new Error('panel press: not counted: the contact did not settle (another press of the button at the same time)');
        const outcome = await handled;
        if (outcome === null) throw new Error('panel press: the press was not handled in time');
        if (outcome === 'dropped') throw new Error('panel press: ignored, the panel is running a command');
        const rows = d.panel.screen();
        return { text: rows.join('\n'), json: { rows } };
      },
    },
    {
      name: 'panel screen',
      summary: 'what the front-panel LCD shows now',
      standby: true,
      run: () => {
        const rows = live().panel.screen();
        return { text: rows.join('\n'), json: { rows } };
      },
    },
    {
      name: 'panel leds',
      summary: 'the front-panel LEDs: pattern (off, steady, slow, fast) and whether lit now',
      standby: true,
      run: () => {
        const leds = live().panel.leds();
        const text = Object.entries(leds)
          .map(([name, l]) => `${name.padEnd(8)} ${l.pattern.padEnd(6)} ${l.on ? 'lit' : 'dark'}`)
          .join('\n');
        return { text, json: leds };
      },
    },
  ];
}
