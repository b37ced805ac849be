// Driving a daemon's front panel as a person does: `mlsd panel press` (over the control socket the CLI uses, or the CLI itself) on the sim
// board's buttons, and reading the screen both ways: `mlsd panel screen` and, when the daemon's
// LCD is on a pty pair, the LK emulator on the other end. Each press waits until the LCD shows
// what the command says the panel shows, so a test asserts the glass, not only the daemon's idea.
import assert from 'node:assert/strict';
import type { TestDaemon } from './daemon.js';
import { request, socketPath } from '../../src/commands/control.js';
import type { LcdEmulator } from './lcd-emulator.js';

export type Leds = Record<'status' | 'ha' | 'disk' | 'activity', { pattern: string; on: boolean }>;

export class PanelDriver {
  constructor(
    readonly d: TestDaemon,
    readonly lcd: LcdEmulator | null = null,
  ) {}

  /** Presses a button; returns the screen after it (trailing blanks trimmed), checked against the LCD. */
  async press(button: string): Promise<string[]> {
    // The control socket the CLI talks to, without a Node start per press: a menu walk is
    // dozens of presses. The CLI itself is driven by `cliPress` and by the tests' own d.cli calls.
    const res = await request(socketPath(this.d.configDir), { argv: ['panel', 'press', button], json: true });
    assert.ok(res.ok, `panel press ${button}: ${res.ok ? '' : res.error}`);
    return this.agree((res.json as { rows: string[] }).rows);
  }

  /** A press through the real CLI (`mlsd panel press BUTTON --json`). */
  async cliPress(button: string): Promise<string[]> {
    const r = await this.d.cli(['panel', 'press', button, '--json']);
    assert.equal(r.code, 0, `panel press ${button}: ${r.stderr}`);
    return this.agree(rowsOf(r, `panel press ${button}`));
  }

  async presses(...buttons: string[]): Promise<string[]> {
    let rows: string[] = [];
    for (const b of buttons) rows = await this.press(b);
    return rows;
  }

  /** `mlsd panel screen`, checked against the LCD. */
  async screen(): Promise<string[]> {
    const r = await this.d.cli(['panel', 'screen', '--json']);
    assert.equal(r.code, 0, `panel screen: ${r.stderr}`);
    return this.agree(rowsOf(r, 'panel screen'));
  }

  /** The screen as text, rows joined by newlines, trailing blanks trimmed. */
  async text(): Promise<string> {
    return (await this.screen()).join('\n');
  }

  async leds(): Promise<Leds> {
    const r = await this.d.cli(['panel', 'leds', '--json']);
    assert.equal(r.code, 0, `panel leds: ${r.stderr}`);
    return JSON.parse(r.stdout) as Leds;
  }

  /** The daemon's screen must be what the emulator decoded from the bytes on the line. */
  private async agree(rows: string[]): Promise<string[]> {
    if (this.lcd) {
      const same = (s: string[]) => s.length === rows.length && s.every((l, i) => l === rows[i]);
      await this.lcd.waitFor(same, 5000);
    }
    return rows.map((l) => l.trimEnd());
  }
}

function rowsOf(r: { code: number; stdout: string; stderr: string }, what: string): string[] {
  try {
    return (JSON.parse(r.stdout) as { rows: string[] }).rows;
  } catch {
    throw new Error(`${what}: not the JSON of a screen (exit ${r.code}): stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`);
  }
}
