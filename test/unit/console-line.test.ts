import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LineEditor, MAX_LINE } from '../../src/console/line-editor.js';
import { tokenize } from '../../src/console/tokenize.js';

const typed = (e: LineEditor, s: string | Buffer) => e.feed(Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8'));

test('line editor: backspace, Ctrl-U, arrows, delete, CRLF as one Enter', () => {
  const e = new LineEditor();
  assert.deepEqual(typed(e, 'statxx\x7f\x08us\r\n').lines, ['status']);
  assert.deepEqual(typed(e, 'junk\x15user list\r').lines, ['user list']);
  assert.deepEqual(typed(e, 'satus\x1b[D\x1b[D\x1b[D\x1b[Dt\r').lines, ['status']);
  assert.deepEqual(typed(e, 'abcd\x1b[D\x1b[D\x1b[3~\r').lines, ['abd']);
  assert.deepEqual(typed(e, '\x1bOA\r').lines, ['abd']);
});

test('line editor: history with up and down', () => {
  const e = new LineEditor();
  typed(e, 'one\rtwo\r');
  e.reset();
  assert.deepEqual(typed(e, '\x1b[A\x1b[A\r').lines, ['one']);
  e.reset();
  assert.deepEqual(typed(e, 'dr\x1b[A\x1b[B\r').lines, ['dr']);
});

test('line editor: a secret is never echoed nor kept in the history', () => {
  const e = new LineEditor();
  e.reset(true);
  const out = typed(e, 'hunter22\x7f2\r');
  assert.deepEqual(out.lines, ['hunter22']);
  assert.equal(out.echo, '\r\n');
  e.reset(false);
  assert.deepEqual(typed(e, '\x1b[A\r').lines, ['']);
});

test('line editor: hostile input is bounded and never echoes control characters', () => {
  const e = new LineEditor();
  const long = typed(e, 'A'.repeat(MAX_LINE * 4) + '\r');
  assert.equal(long.lines[0]!.length, MAX_LINE);
  const ctl = typed(e, '\x1b]0;title\x07\x1b[2J\x00\x04\x9b\r');
  assert.doesNotMatch(ctl.echo, /\x1b|\x00|\x9b/);
  for (let i = 0; i < 20; i++) {
    const out = typed(e, randomBytes(4096));
    assert.doesNotMatch(out.echo, /[\x00-\x06\x0e-\x1f\x1b]/);
    for (const l of out.lines) assert.ok(l.length <= MAX_LINE);
  }
});

test('tokenize: blanks, quotes, backslashes; an unterminated quote throws', () => {
  assert.deepEqual(tokenize('  config   set hostname \'"a.test"\' '), ['config', 'set', 'hostname', '"a.test"']);
  assert.deepEqual(tokenize('a "b \\" c" d\\ e'), ['a', 'b " c', 'd e']);
  assert.deepEqual(tokenize(''), []);
  assert.throws(() => tokenize('config set x "y'), /unterminated/);
  assert.throws(() => tokenize("x 'y"), /unterminated/);
});

test('line editor: a pasted megabyte past the line limit echoes one bell per chunk, not one per character', () => {
  const e = new LineEditor();
  const out = e.feed(Buffer.from('A'.repeat(1_000_000)));
  assert.equal(out.echo, 'A'.repeat(MAX_LINE) + '\x07');
  assert.equal(e.feed(Buffer.from('BBB')).echo, '\x07');
  assert.deepEqual(e.feed(Buffer.from('\r')).lines, ['A'.repeat(MAX_LINE)]);
});
