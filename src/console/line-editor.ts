// A terminal line editor for the serial console: bytes from the terminal in, bytes to echo out
// and whole lines when Enter is pressed. It is fed anything a serial line can carry (noise on a
// cable, a pasted binary, a terminal's escape sequences), so it keeps to printable characters,
// bounds the line, and ignores what it does not know; it never throws.

export const MAX_LINE = 512;
const HISTORY = 50;
const BEL = '\x07';

export interface EditorOutput {
  /** Bytes to write back to the terminal (echo, cursor moves, bell). */
  echo: string;
  /** Lines completed by Enter, in order. */
  lines: string[];
}

type EscState = 'none' | 'esc' | 'csi' | 'ss3';

export class LineEditor {
  private chars: string[] = [];
  private cursor = 0;
  /** Secret entry: nothing of the line is echoed, and it is not kept in the history. */
  secret = false;
  private history: string[] = [];
  /** Index into history while browsing with up/down; history.length = the line being typed. */
  private browse = 0;
  private draft: string[] = [];
  private esc: EscState = 'none';
  private csiParam = '';
  /** A CR was the last byte: a following LF is the same Enter (CRLF terminals). */
  private lastCr = false;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });

  /** Starts a fresh line (after a prompt). */
  reset(secret = false): void {
    this.chars = [];
    this.cursor = 0;
    this.secret = secret;
    this.browse = this.history.length;
    this.esc = 'none';
  }

  feed(chunk: Buffer): EditorOutput {
    const out: EditorOutput = { echo: '', lines: [] };
    // Control bytes are all ASCII, so decoding the chunk whole is safe; a multi-byte character
    // split across chunks is kept by the streaming decoder.
    const text = this.decoder.decode(chunk, { stream: true });
    for (const ch of text) this.key(ch, out);
    return out;
  }

  private key(ch: string, out: EditorOutput): void {
    const code = ch.codePointAt(0)!;
    const cr = this.lastCr;
    this.lastCr = false;
    if (this.esc !== 'none') return this.escape(ch, out);
    switch (code) {
      case 0x0d:
        this.lastCr = true;
        return this.enter(out);
      case 0x0a:
        if (cr) return;
        return this.enter(out);
      case 0x1b:
        this.esc = 'esc';
        return;
      case 0x7f:
      case 0x08:
        return this.backspace(out);
      case 0x15: // Ctrl-U: erase the line
        return this.replaceLine([], out);
      case 0x03: // Ctrl-C: abandon the line
        out.echo += '^C\r\n';
        out.lines.push('\x03');
        this.reset(this.secret);
        return;
      case 0x01: // Ctrl-A, Ctrl-E: start, end of line
        return this.moveTo(0, out);
      case 0x05:
        return this.moveTo(this.chars.length, out);
    }
    // Every other control character, and the C1 range, is dropped: it would drive the terminal.
    if (code < 0x20 || (code >= 0x80 && code < 0xa0) || code === 0xfffd) return;
    if (this.chars.length >= MAX_LINE) {
      // One bell per chunk, not per character: a pasted megabyte must not echo a megabyte of
      // bells, which a slow terminal cannot drain (the write would time out and reset the line).
      if (!out.echo.endsWith(BEL)) out.echo += BEL;
      return;
    }
    this.chars.splice(this.cursor, 0, ch);
    this.cursor++;
    if (this.secret) return;
    const tail = this.chars.slice(this.cursor).join('');
    out.echo += ch + tail + '\b'.repeat(tail.length);
  }

  /** ESC [ A/B/C/D (and ESC O A..D, as some terminals send them): arrows; ESC [ 3 ~: delete. Others are swallowed whole. */
  private escape(ch: string, out: EditorOutput): void {
    if (this.esc === 'esc') {
      this.esc = ch === '[' ? 'csi' : ch === 'O' ? 'ss3' : 'none';
      this.csiParam = '';
      return;
    }
    if (this.esc === 'csi' && /[0-9;]/.test(ch)) {
      // Bounded, so that ESC [ and a megabyte of digits is no memory sink.
      if (this.csiParam.length < 16) this.csiParam += ch;
      return;
    }
    this.esc = 'none';
    const code = ch.codePointAt(0)!;
    if (code < 0x40 || code > 0x7e) return;
    if (this.secret) return;
    if (ch === 'A') return this.historyStep(-1, out);
    if (ch === 'B') return this.historyStep(1, out);
    if (ch === 'C') return this.moveTo(this.cursor + 1, out);
    if (ch === 'D') return this.moveTo(this.cursor - 1, out);
    if (ch === 'H') return this.moveTo(0, out);
    if (ch === 'F') return this.moveTo(this.chars.length, out);
    if (ch === '~' && this.csiParam === '3' && this.cursor < this.chars.length) {
      this.chars.splice(this.cursor, 1);
      this.redrawTail(out, 1);
    }
  }

  private enter(out: EditorOutput): void {
    const line = this.chars.join('');
    out.echo += '\r\n';
    out.lines.push(line);
    if (!this.secret && line.trim() !== '' && this.history[this.history.length - 1] !== line) {
      this.history.push(line);
      if (this.history.length > HISTORY) this.history.shift();
    }
    this.reset(this.secret);
  }

  private backspace(out: EditorOutput): void {
    if (this.cursor === 0) return;
    this.chars.splice(this.cursor - 1, 1);
    this.cursor--;
    if (this.secret) return;
    out.echo += '\b';
    this.redrawTail(out, 1);
  }

  /** Rewrites from the cursor to the end, blanks `erased` cells past it, and returns the cursor. */
  private redrawTail(out: EditorOutput, erased: number): void {
    const tail = this.chars.slice(this.cursor).join('');
    out.echo += tail + ' '.repeat(erased) + '\b'.repeat(tail.length + erased);
  }

  private moveTo(pos: number, out: EditorOutput): void {
    if (this.secret || pos < 0 || pos > this.chars.length || pos === this.cursor) return;
    if (pos < this.cursor) out.echo += '\b'.repeat(this.cursor - pos);
    else out.echo += this.chars.slice(this.cursor, pos).join('');
    this.cursor = pos;
  }

  private replaceLine(chars: string[], out: EditorOutput): void {
    const old = this.chars.length;
    if (!this.secret) {
      this.moveTo(0, out);
      out.echo += chars.join('') + ' '.repeat(Math.max(0, old - chars.length)) + '\b'.repeat(Math.max(0, old - chars.length));
    }
    this.chars = chars;
    this.cursor = chars.length;
  }

  private historyStep(dir: -1 | 1, out: EditorOutput): void {
    const to = this.browse + dir;
    if (to < 0 || to > this.history.length) return void (out.echo += BEL);
    if (this.browse === this.history.length) this.draft = this.chars;
    this.browse = to;
    this.replaceLine(to === this.history.length ? this.draft : [...this.history[to]!], out);
  }
}
