/**
 * Splits a console line into argv as a shell would, without expansion: words separated by
 * blanks, '...' taken as is, "..." with \" and \\, a backslash outside quotes escaping the next
 * character. So `config set hostname '"mail.example.test"'` passes a JSON string. Throws on an
 * unterminated quote.
 */
export function tokenize(line: string): string[] {
  const argv: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      if (inWord) argv.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) throw new Error('unterminated quote');
      cur += line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && (line[j + 1] === '"' || line[j + 1] === '\\')) j++;
        cur += line[j];
      }
      if (j >= line.length) throw new Error('unterminated quote');
      i = j;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
    } else cur += c;
  }
  if (inWord) argv.push(cur);
  return argv;
}
