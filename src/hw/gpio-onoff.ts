// The GpioPanel adapter of the Linux board, over onoff (the kernel's sysfs GPIO interface,
// /sys/class/gpio). Buttons are inputs watched on both edges with no debounce (the panel
// debounces, so that the sim can feed it real bounce and the same code runs on both); LEDs are
// outputs, driven high for on.
//
// The sysfs interface is deprecated in favour of the GPIO character device (libgpiod); the board
// file already names pins the character-device way, as line offsets on a chip (`gpio.chip`,
// e.g. gpiochip0), so a libgpiod adapter would read the same board keys. Here the chip's offset
// is turned into the sysfs number by adding the chip's base, which recent kernels allocate
// dynamically (512 and up), so it is read from sysfs rather than assumed to be 0.
//
// onoff is loaded by a dynamic import inside onoffGpioPanel(), so that importing this module (or
// running the sim board) never loads onoff or its native epoll binding.
//
// Not tested on hardware: this machine has no GPIO. What is tested is the chip base lookup on a
// sysfs tree made in a temporary folder, and the refusal when sysfs GPIO is absent.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Gpio } from 'onoff';
import type { Logger } from '../log/logger.js';
import type { Board } from './board.js';
import { BUTTONS, LEDS, type ButtonName, type GpioPanel, type LedName } from './gpio.js';

export interface OnoffOptions {
  /** Where sysfs is mounted; a test points it at a folder. */
  sysRoot?: string;
}

/**
 * The sysfs GPIO number of line 0 of `chip` (a character-device name, gpiochipN): its device
 * in /sys/bus/gpio/devices has a gpio/gpiochip<base> child when sysfs GPIO is built in. No chip
 * named: 0, the numbering of boards whose pins are global numbers already.
 */
export async function sysfsBase(chip: string | undefined, sysRoot = '/sys'): Promise<number> {
  if (chip === undefined) return 0;
  if (!/^gpiochip[0-9]+$/.test(chip)) throw new Error(`gpio: chip "${chip}" is not a GPIO chip name such as gpiochip0`);
  const dir = join(sysRoot, 'bus/gpio/devices', chip, 'gpio');
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    throw new Error(`gpio: chip ${chip} has no sysfs GPIO (${dir}): no such chip, or a kernel without CONFIG_GPIO_SYSFS`);
  }
  const sysfsChip = entries.find((e) => /^gpiochip[0-9]+$/.test(e));
  if (!sysfsChip) throw new Error(`gpio: chip ${chip} has no sysfs GPIO (${dir} is empty)`);
  const base = Number((await readFile(join(dir, sysfsChip, 'base'), 'utf8')).trim());
  if (!Number.isInteger(base) || base < 0) throw new Error(`gpio: chip ${chip}: unreadable base in ${join(dir, sysfsChip, 'base')}`);
  return base;
}

/** Opens every button and LED of the board; throws a one-line error naming the pin that failed. */
export async function onoffGpioPanel(gpio: Board['gpio'], log: Logger, opts: OnoffOptions = {}): Promise<GpioPanel> {
  const { Gpio: OnoffGpio } = await import('onoff');
  if (!OnoffGpio.accessible) {
    throw new Error('gpio: the sysfs GPIO interface (/sys/class/gpio/export) is not writable: no GPIO on this machine, or no permission');
  }
  const base = await sysfsBase(gpio.chip, opts.sysRoot);
  // Buttons are usually wired to ground with the pin pulled up, so a press reads low; onoff's
  // activeLow turns that into 1 = pressed. A board wired the other way says buttonsActiveLow false.
  const activeLow = gpio.buttonsActiveLow ?? true;
  const opened: Gpio[] = [];
  const open = (what: string, pin: number, make: (n: number) => Gpio): Gpio => {
    try {
      const g = make(base + pin);
      opened.push(g);
      return g;
    } catch (err) {
      for (const g of opened) safeUnexport(g);
      throw new Error(`gpio: ${what} (pin ${pin}, sysfs ${base + pin}): ${(err as Error).message}`);
    }
  };

  const buttonFns: ((button: ButtonName, pressed: boolean) => void)[] = [];
  for (const name of BUTTONS) {
    const g = open(`gpio.buttons.${name}`, gpio.buttons[name], (n) => new OnoffGpio(n, 'in', 'both', { debounceTimeout: 0, activeLow }));
    g.watch((err, value) => {
      if (err) return log.error({ evt: 'gpio.readFailed', button: name, err: err.message });
      for (const fn of buttonFns) {
        try {
          fn(name, value === 1);
        } catch (e) {
          log.error({ evt: 'gpio.listenerError', button: name, err: (e as Error).message });
        }
      }
    });
  }

  const leds = {} as Record<LedName, Gpio>;
  const levels = {} as Record<LedName, boolean>;
  /** LEDs whose last write failed: one error per LED until a write succeeds (a blinking LED would log on every blink). */
  const failing = new Set<LedName>();
  for (const name of LEDS) {
    // 'low': an output that starts off, with no glitch high on the way.
    leds[name] = open(`gpio.leds.${name}`, gpio.leds[name], (n) => new OnoffGpio(n, 'low'));
    levels[name] = false;
  }
  log.info({ evt: 'gpio.open', chip: gpio.chip ?? null, base, buttonsActiveLow: activeLow });

  return {
    onButton(fn) {
      buttonFns.push(fn);
    },
    setLed(led, on) {
      levels[led] = on;
      try {
        leds[led].writeSync(on ? 1 : 0);
        failing.delete(led);
      } catch (err) {
        if (!failing.has(led)) log.error({ evt: 'gpio.writeFailed', led, err: (err as Error).message });
        failing.add(led);
      }
    },
    leds() {
      return { ...levels };
    },
    async close() {
      for (const name of LEDS) {
        try {
          leds[name].writeSync(0); // a stopped daemon drives no LED
        } catch {
          // the pin is going away in any case
        }
      }
      for (const g of opened) safeUnexport(g);
      opened.length = 0;
    },
  };
}

function safeUnexport(g: Gpio): void {
  try {
    g.unwatchAll();
    g.unexport();
  } catch {
    // unexporting a pin that is gone already is nothing to report
  }
}
