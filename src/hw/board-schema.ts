import { z } from 'zod';

// The one schema every board/<model>.json must satisfy. A new hardware model is one JSON file
// that passes it; the daemon refuses to start on a board file that does not, naming the key.
// Strict objects throughout: a misspelt key in a board file is a pin or a device silently not
// used, which is worse than a start that stops.

const name = z.string().regex(/^[a-z0-9-]+$/, 'expected a lower-case name such as mls-1000');
const pin = z.number().int().min(0).max(1023);
const serialLine = z
  .strictObject({
    device: z.string().min(1).describe('Device path (/dev/ttyS0); "pty" on the sim board: none unless the config names one'),
    baud: z.number().int().min(1200).max(921600),
  })
  .describe('One serial line');

// The LCD: a serial line and what the display is. `protocol` names the command set the adapter
// speaks (src/hw/lcd-mtxorb.ts); another display family is another literal here and an adapter.
const lcd = serialLine
  .extend({
    protocol: z.literal('mtxorb').describe('The command set: mtxorb (Matrix Orbital LK series)'),
    cols: z.number().int().min(16).max(40).describe('Characters per row (16 at least: the LAN editor shows 15 digits and dots on one row)'),
    rows: z.number().int().min(1).max(4).describe('Rows'),
  })
  .describe('The front-panel LCD');

export const boardSchema = z.strictObject({
  model: name.describe('The model name; the same as the file name'),
  description: z.string().min(1),
  adapter: z.enum(['sim', 'linux']).describe('Which hardware adapters the daemon uses'),
  paths: z.strictObject({ configDir: z.string().min(1), dataDir: z.string().min(1) }),
  serial: z.strictObject({
    console: serialLine.describe('The serial console (login prompt)'),
    heartbeat: serialLine.optional().describe('The HA null-modem heartbeat cable'),
    lcd: lcd.optional(),
  }),
  gpio: z.strictObject({
    chip: z.string().min(1).optional(),
    buttons: z.strictObject({ up: pin, down: pin, enter: pin, esc: pin }),
    // Exactly the LEDs of src/hw/gpio.ts (LEDS): the panel drives each, so each needs a pin.
    leds: z.strictObject({ status: pin, ha: pin, disk: pin, activity: pin }),
    buttonsActiveLow: z.boolean().optional().describe('A pressed button reads low (pull-ups, the usual wiring); default true'),
  }).superRefine((gpio, ctx) => {
    // Two functions on one pin is a wiring mistake the daemon could not notice otherwise.
    const seen = new Map<number, string>();
    for (const [group, pins] of [['buttons', gpio.buttons], ['leds', gpio.leds]] as const) {
      for (const [key, p] of Object.entries(pins)) {
        const other = seen.get(p);
        if (other) ctx.addIssue({ code: 'custom', path: [group, key], message: `pin ${p} is already ${other}` });
        seen.set(p, `${group}.${key}`);
      }
    }
  }),
  dataDisk: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('folder'), path: z.string().min(1) }),
    z.strictObject({ kind: z.literal('block'), device: z.string().min(1), partition: z.string().min(1), mountPoint: z.string().min(1) }),
  ]),
  network: z.strictObject({ lan: z.string().min(1).optional(), ha: z.string().min(1).optional() }).optional(),
  // Checked against the config schema when the first config is made from them.
  defaults: z.record(z.string(), z.unknown()),
});

export type Board = z.infer<typeof boardSchema>;
