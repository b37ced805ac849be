// The serialport adapter of SerialLine over real pseudo-terminals joined by socat (the cable):
// data both ways, a cut cable seen by a reading end and by a write-only end, a cable that stops
// draining (socat paused) turned into a write timeout instead of a hang, and a device that
// appears after the line was started. Every wait is on something the line does (data, a state
// change, a log event), bounded so that a failure names what did not happen.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log/logger.js';
import { SerialLineError, type SerialErrorKind, type SerialLine } from '../../src/hw/serial.js';
import { serialportLine } from '../../src/hw/serialport-line.js';
import { removeDir } from '../helpers/daemon-process.js';
import { startPtyPair, type PtyPair } from '../helpers/socat.js';

const REOPEN_MS = 50;
const WAIT_MS = 3000;

let dir = '';
const cleanups: (() => Promise<void>)[] = [];
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mlsd-serial-'));
});
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await removeDir(dir);
});

async function pair(name: string): Promise<PtyPair> {
  const p = await startPtyPair(dir, name);
  cleanups.push(() => p.stop());
  return p;
}

type LogEvent = { level: number; evt?: string; reason?: string };
const WARN = 40;
const DEBUG = 20;

/** A line under test with everything it did: data read, state changes, log events. */
class Probe {
  readonly line: SerialLine;
  text = '';
  readonly states: { open: boolean; reason?: string }[] = [];
  readonly events: LogEvent[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(device: string, o: { reads: boolean } = { reads: true }) {
    const destination = { write: (s: string) => (this.events.push(JSON.parse(s) as LogEvent), this.wake()) };
    this.line = serialportLine(device, 115200, createLogger({ level: 'debug', destination }), { reopenMs: REOPEN_MS });
    this.line.onState((open, reason) => (this.states.push({ open, reason }), this.wake()));
    if (o.reads) this.read();
    cleanups.push(() => this.line.stop());
    this.line.start();
  }

  read(): void {
    this.line.onData((c) => ((this.text += c.toString('latin1')), this.wake()));
  }

  /** Resolves once cond() holds, looking again at each thing the line does. */
  until(what: string, cond: () => boolean, ms = WAIT_MS): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => cond() && (done(), resolve());
      const t = setTimeout(() => (done(), reject(new Error(`${this.line.device}: no ${what} within ${ms} ms`))), ms);
      const done = () => (clearTimeout(t), this.waiters.delete(check));
      this.waiters.add(check);
    });
  }

  opened(): Promise<void> {
    return this.until('open', () => this.line.isOpen);
  }

  received(s: string): Promise<void> {
    return this.until(JSON.stringify(s), () => this.text.includes(s));
  }

  /** The state changes since the first `from` ones. */
  statesSince(from: number): { open: boolean; reason?: string }[] {
    return this.states.slice(from);
  }

  logged(evt: string, level?: number): LogEvent[] {
    return this.events.filter((e) => e.evt === evt && (level === undefined || e.level === level));
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

const refusedAs = (kind: SerialErrorKind) => (err: unknown) => {
  assert.ok(err instanceof SerialLineError, String(err));
  assert.equal(err.kind, kind, err.message);
  return true;
};

test('two lines over a socat pair exchange data both ways, raw', async () => {
  const p = await pair('both');
  const a = new Probe(p.a);
  const b = new Probe(p.b);
  await Promise.all([a.opened(), b.opened()]);
  assert.deepEqual(a.statesSince(0), [{ open: true, reason: undefined }]);
  assert.equal(a.logged('serial.open').length, 1);

  await a.line.write('ping from a\n', 1000);
  await b.received('ping from a\n');
  // CR, NUL and 8-bit bytes pass untouched: no ICRNL, no ISTRIP, no echo back to a.
  const binary = Buffer.from([0x00, 0x0d, 0x0a, 0xff, 0x7f]);
  await b.line.write(binary, 1000);
  await a.received(binary.toString('latin1'));
  await b.line.write('pong from b\n', 1000);
  await a.received('pong from b\n');
  assert.equal(a.text, binary.toString('latin1') + 'pong from b\n');
  assert.equal(b.text, 'ping from a\n');
});

test('a cut is seen at once by a reading end and by a write-only end on its next write; after restore both reopen by themselves', async () => {
  const p = await pair('cut');
  const r = new Probe(p.a);
  const w = new Probe(p.b, { reads: false });
  await Promise.all([r.opened(), w.opened()]);
  await w.line.write('before the cut\n', 1000);
  await r.received('before the cut\n');

  const [rFrom, wFrom] = [r.states.length, w.states.length];
  await p.cut();
  await r.until('loss', () => r.statesSince(rFrom).some((s) => !s.open));
  assert.equal(w.line.isOpen, true, 'a line that does not read has nothing to tell it yet');
  assert.deepEqual(w.statesSince(wFrom), []);

  await assert.rejects(w.line.write('into the cut\n', 1000), refusedAs('writeFailed'));
  assert.equal(w.line.isOpen, false);
  const wLoss = w.statesSince(wFrom);
  assert.equal(wLoss.length, 1, 'the loss is reported once');
  assert.equal(wLoss[0]?.open, false);
  assert.match(wLoss[0]?.reason ?? '', /EIO/);
  assert.equal(r.statesSince(rFrom).length, 1, 'the loss is reported once');
  await assert.rejects(w.line.write('while closed\n', 1000), refusedAs('notOpen'));

  // While the devices are away the lines retry quietly: one warning, then debug.
  await r.until('three failed reopens', () => r.logged('serial.openFailed').length >= 3);
  assert.equal(r.logged('serial.openFailed', WARN).length, 1);
  assert.equal(r.logged('serial.openFailed', DEBUG).length, r.logged('serial.openFailed').length - 1);
  assert.equal(r.logged('serial.openFailed')[0]?.reason, 'no such device');

  await p.restore();
  await Promise.all([r.opened(), w.opened()]);
  w.read(); // the write-only end starts reading on the open line
  await w.line.write('after restore, from w\n', 1000);
  await r.received('after restore, from w\n');
  await r.line.write('after restore, from r\n', 1000);
  await w.received('after restore, from r\n');
  assert.deepEqual(
    r.statesSince(rFrom).map((s) => s.open),
    [false, true],
  );
  assert.deepEqual(
    w.statesSince(wFrom).map((s) => s.open),
    [false, true],
  );
});

test('a cable that stops draining (socat paused) fails a continuous writer by its timeout, and the line carries data again after resume', async () => {
  const p = await pair('pause');
  const r = new Probe(p.a);
  const w = new Probe(p.b, { reads: false });
  await Promise.all([r.opened(), w.opened()]);

  const from = w.states.length;
  p.pause();
  const chunk = Buffer.alloc(4096, 0x2e);
  let failure: unknown = null;
  let writes = 0;
  // Bounded: the pty and socat buffer some 100 KiB, far below 1000 chunks.
  while (failure === null && writes < 1000) {
    writes++;
    await w.line.write(chunk, 300).catch((err: unknown) => (failure = err));
  }
  assert.ok(writes > 1, 'the first writes fill the buffers and succeed');
  refusedAs('writeTimeout')(failure);
  assert.equal(w.logged('serial.writeTimeout', WARN).length, 1);
  const loss = w.statesSince(from)[0];
  assert.equal(loss?.open, false);
  assert.match(loss?.reason ?? '', /blocked for 300 ms/);

  p.resume();
  await w.opened();
  await w.line.write('after resume\n', 1000);
  await r.received('after resume\n');
});

test('a line started on a device that does not exist yet opens once it appears', async () => {
  const l = new Probe(join(dir, 'late-a'));
  await l.until('two failed opens', () => l.logged('serial.openFailed').length >= 2);
  assert.equal(l.line.isOpen, false);
  assert.deepEqual(l.states, []);
  assert.equal(l.logged('serial.openFailed', WARN).length, 1);

  const p = await pair('late');
  await l.opened();
  const peer = new Probe(p.b);
  await peer.opened();
  await peer.line.write('hello late line\n', 1000);
  await l.received('hello late line\n');
});
