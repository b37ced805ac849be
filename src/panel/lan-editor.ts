// The LAN editor's model: three IPv4 addresses as 12 digits each (192.168.001.010), a cursor on
// one digit. Four buttons are enough: Up/Down change the digit, Enter moves right, Esc moves
// left. What the digits spell is not judged here: `network set` is the one place that decides
// what a valid LAN setting is, and the panel shows its refusal.

export const LAN_FIELDS = ['address', 'netmask', 'gateway'] as const;
export type LanField = (typeof LAN_FIELDS)[number];
export type Lan = Record<LanField, string>;

const DIGITS = 12;

/** "192.168.1.10" → "192168001010"; anything that is not four octets of 1-3 digits → zeros. */
export function toDigits(address: string): string {
  const parts = address.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p))) return '0'.repeat(DIGITS);
  return parts.map((p) => p.padStart(3, '0')).join('');
}

/** "192168001010" → "192.168.1.10" (leading zeros dropped: "300" stays 300 for `network set` to refuse). */
export function fromDigits(digits: string): string {
  return [0, 3, 6, 9].map((i) => String(Number(digits.slice(i, i + 3)))).join('.');
}

/** "192168001010" → "192.168.001.010", as the editor shows it. */
export function dotted(digits: string): string {
  return [0, 3, 6, 9].map((i) => digits.slice(i, i + 3)).join('.');
}

export class LanEditor {
  private readonly digits: string[];
  /** The cursor over all three fields: 0..35. */
  private pos = 0;

  constructor(start: Lan) {
    this.digits = LAN_FIELDS.map((f) => toDigits(start[f]));
  }

  get field(): LanField {
    return LAN_FIELDS[Math.floor(this.pos / DIGITS)]!;
  }

  /** The cursor's column in the dotted form of the current field. */
  get column(): number {
    const p = this.pos % DIGITS;
    return p + Math.floor(p / 3);
  }

  shown(field: LanField = this.field): string {
    return dotted(this.digits[LAN_FIELDS.indexOf(field)]!);
  }

  value(): Lan {
    return { address: fromDigits(this.digits[0]!), netmask: fromDigits(this.digits[1]!), gateway: fromDigits(this.digits[2]!) };
  }

  /** Up (+1) or Down (-1) on the digit under the cursor, 9 wrapping to 0. */
  step(by: 1 | -1): void {
    const f = Math.floor(this.pos / DIGITS);
    const p = this.pos % DIGITS;
    const d = this.digits[f]!;
    const next = (Number(d[p]) + by + 10) % 10;
    this.digits[f] = d.slice(0, p) + String(next) + d.slice(p + 1);
  }

  /** Enter: the next digit; false when the last digit of the last field was passed (done). */
  next(): boolean {
    if (this.pos === DIGITS * LAN_FIELDS.length - 1) return false;
    this.pos++;
    return true;
  }

  /** Esc: the digit before; false when the cursor was on the first (leave the editor). */
  back(): boolean {
    if (this.pos === 0) return false;
    this.pos--;
    return true;
  }

  /** Back to the first digit of the current field (after a refusal, to correct it). */
  toField(field: LanField): void {
    this.pos = LAN_FIELDS.indexOf(field) * DIGITS;
  }
}
