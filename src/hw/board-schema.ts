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

export const boardSchema = z.strictObject({
  model: name.describe('The model name; the same as the file name'),
  description: z.string().min(1),
  adapter: z.enum(['sim', 'linux']).describe('Which hardware adapters the daemon uses'),
  paths: z.strictObject({ configDir: z.string().min(1), dataDir: z.string().min(1) }),
  serial: z.strictObject({
    console: serialLine.describe('The serial console (login prompt)'),
    heartbeat: serialLine.optional().describe('The HA null-modem heartbeat cable'),
    lcd: serialLine.optional().describe('The front-panel LCD'),
  }),
  gpio: z.strictObject({
    chip: z.string().min(1).optional(),
    buttons: z.strictObject({ up: pin, down: pin, enter: pin, esc: pin }),
    leds: z.record(z.string().regex(/^[a-z][a-z0-9-]*$/), pin),
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
