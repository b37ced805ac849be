// Text for a character display: printable ASCII only (the character ROM has no other glyphs,
// and a byte such as 0xfe would be a device command), and wrapped to the display's width.

/** `s` with everything outside printable ASCII as '?', control characters included; one '?' per
 *  character (an emoji too), as the display's toRom shows it, so that the layout's widths hold. */
export function ascii(s: string): string {
  return s.replace(/[^\x20-\x7e]/gu, '?');
}

/**
 * `text` over at most `maxRows` rows of `cols` characters: broken at spaces where it can, long
 * words cut; what does not fit ends in "..." on the last row.
 */
export function wrap(text: string, cols: number, maxRows: number): string[] {
  const rows: string[] = [];
  let rest = ascii(text).replace(/\s+/g, ' ').trim();
  while (rest.length > 0 && rows.length < maxRows) {
    if (rest.length <= cols) {
      rows.push(rest);
      rest = '';
      break;
    }
    const space = rest.lastIndexOf(' ', cols);
    const cut = space > 0 ? space : cols;
    rows.push(rest.slice(0, cut));
    rest = rest.slice(cut).trimStart();
  }
  if (rest.length > 0 && rows.length > 0 && cols > 3) {
    const last = rows[rows.length - 1]!;
    rows[rows.length - 1] = (last.length > cols - 3 ? last.slice(0, cols - 3) : last) + '...';
  }
  return rows;
}

/** One row: `s` in ASCII, spaces kept, cut to `cols` (ending in "..." when cut). */
export function row(s: string, cols: number): string {
  const a = ascii(s);
  return a.length <= cols ? a : a.slice(0, Math.max(0, cols - 3)) + '...'.slice(0, cols);
}
