import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, readFile, writeFile, readdir } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { pino } from 'pino';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { DkimKeys } from '../../src/delivery/dkim.js';

const SEL = 'mlsd';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'mlsd-dkim-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** mailauth's verifier, answering the key look-up from our own dnsRecord() as the world's DNS would. */
async function verify(keys: DkimKeys, message: Buffer, domain = 'example.test') {
  const rec = keys.dnsRecord(domain, SEL);
  const zoneStrings = [...rec.zoneLine.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
  const lookups: string[] = [];
  const res = await dkimVerify(message, {
    resolver: async (name: string, type: string) => {
      lookups.push(`${type} ${name}`);
      if (type === 'TXT' && name === rec.name) return [zoneStrings]; // one record, split in strings
      throw Object.assign(new Error('NXDOMAIN'), { code: 'ENOTFOUND' });
    },
  });
  assert.equal(res.results.length, 1, 'one signature');
  return { result: res.results[0]!, lookups };
}

function msg(body: string, extra = ''): Buffer {
  return Buffer.from(
    'From: Alice <alice@example.test>\r\n' +
      'To: bob@remote.test\r\n' +
      'Subject: Quarterly report\r\n' +
      'Date: Sat, 01 Mar 2025 02:00:00 +0000\r\n' +
      'Message-ID: <abc.123@example.test>\r\n' +
      'MIME-Version: 1.0\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      extra +
      '\r\n' +
      body,
  );
}

test('ensure() makes one 0600 key per domain, once; open() finds them again', async () => {
  await withDir(async (dir) => {
    const { log, lines } = capture();
    const keys = await DkimKeys.open(dir, log);
    assert.equal(keys.has('example.test', SEL), false);
    assert.deepEqual(await keys.ensure(['example.test', 'Other.Test', 'example.test'], SEL), ['example.test', 'other.test']);
    for (const d of ['example.test', 'other.test']) {
      const st = await stat(join(dir, 'dkim', `${d}.${SEL}.key`));
      assert.equal(st.mode & 0o777, 0o600);
      assert.ok(keys.has(d, SEL));
    }
    assert.equal((await stat(join(dir, 'dkim'))).mode & 0o777, 0o700);
    assert.deepEqual((await readdir(join(dir, 'dkim'))).sort(), ['example.test.mlsd.key', 'other.test.mlsd.key']);
    assert.equal(lines.filter((l) => l.evt === 'dkim.keygen').length, 2);

    const before = await readFile(join(dir, 'dkim', `example.test.${SEL}.key`), 'utf8');
    assert.deepEqual(await keys.ensure(['example.test', 'other.test'], SEL), []);
    const again = await DkimKeys.open(dir, log);
    assert.ok(again.has('example.test', SEL) && again.has('other.test', SEL));
    assert.deepEqual(await again.ensure(['example.test'], SEL), []);
    assert.equal(await readFile(join(dir, 'dkim', `example.test.${SEL}.key`), 'utf8'), before);
    assert.equal(again.has('example.test', 'other'), false);
    assert.equal(lines.filter((l) => l.evt === 'dkim.keygen').length, 2);
  });
});

test('concurrent ensure() calls generate a key only once', async () => {
  await withDir(async (dir) => {
    const keys = await DkimKeys.open(dir, pino({ level: 'silent' }));
    const [a, b] = await Promise.all([keys.ensure(['example.test'], SEL), keys.ensure(['example.test'], SEL)]);
    assert.deepEqual([...a!, ...b!], ['example.test']);
  });
});

test('dnsRecord: name, value and BIND line match the private key', async () => {
  await withDir(async (dir) => {
    const keys = await DkimKeys.open(dir, pino({ level: 'silent' }));
    await keys.ensure(['example.test'], SEL);
    const rec = keys.dnsRecord('example.test', SEL);
    assert.equal(rec.name, 'mlsd._domainkey.example.test');
    const m = /^v=DKIM1; k=rsa; p=([A-Za-z0-9+/=]+)$/.exec(rec.value);
    assert.ok(m, rec.value);

    const pem = await readFile(join(dir, 'dkim', 'example.test.mlsd.key'), 'utf8');
    const priv = createPrivateKey(pem);
    assert.equal(priv.asymmetricKeyType, 'rsa');
    assert.equal(priv.asymmetricKeyDetails?.modulusLength, 2048);
    const expected = createPublicKey(priv).export({ type: 'spki', format: 'der' }).toString('base64');
    assert.equal(m[1], expected);

    const z = /^mlsd\._domainkey\.example\.test\. IN TXT ((?:"[^"]*" ?)+)$/.exec(rec.zoneLine);
    assert.ok(z, rec.zoneLine);
    const strings = [...rec.zoneLine.matchAll(/"([^"]*)"/g)].map((x) => x[1]!);
    assert.ok(strings.length >= 2, 'a 2048-bit key needs more than one string');
    for (const s of strings) assert.ok(s.length <= 255);
    assert.equal(strings.join(''), rec.value);

    assert.throws(() => keys.dnsRecord('nope.test', SEL), /no DKIM key for domain "nope\.test" selector "mlsd"/);
    assert.throws(() => keys.dnsRecord('example.test', 'other'), /no DKIM key.*selector "other"/);
  });
});

test('a signed message verifies with mailauth; an altered one does not', async () => {
  await withDir(async (dir) => {
    const keys = await DkimKeys.open(dir, pino({ level: 'silent' }));
    await keys.ensure(['example.test'], SEL);
    const original = msg('Hello Bob,\r\n\r\nnumbers attached.\r\n');
    const header = await keys.sign(original, 'example.test', SEL);
    assert.match(header, /^DKIM-Signature: /);
    assert.ok(header.endsWith('\r\n'));
    assert.doesNotMatch(header.replace(/\r\n/g, ''), /[\r\n]/, 'CRLF line ends only');
    for (const line of header.split('\r\n').slice(1, -1)) assert.match(line, /^[ \t]/, 'folded continuation lines');
    assert.match(header, /a=rsa-sha256/);
    assert.match(header, /c=relaxed\/relaxed/);
    assert.match(header, /d=example\.test/);
    assert.match(header, /s=mlsd/);
    const h = /h=([^;]+);/.exec(header.replace(/\r\n[ \t]/g, ' '))![1]!.toLowerCase();
    for (const f of ['from', 'to', 'subject', 'date', 'message-id', 'mime-version', 'content-type']) assert.match(h, new RegExp(`(^|[: ])${f}($|[: ])`));

    const signed = Buffer.concat([Buffer.from(header), original]);
    const ok = await verify(keys, signed);
    assert.equal(ok.result.status.result, 'pass', JSON.stringify(ok.result.status));
    assert.equal(ok.result.signingDomain, 'example.test');
    assert.deepEqual(ok.lookups, ['TXT mlsd._domainkey.example.test']);

    // relaxed canonicalization tolerates whitespace changes in transit...
    const rewrapped = Buffer.from(signed.toString().replace('Subject: Quarterly report', 'Subject:   Quarterly  report'));
    assert.equal((await verify(keys, rewrapped)).result.status.result, 'pass');
    // ...but not changed content, in the body or a signed header
    const body = Buffer.from(signed.toString().replace('numbers attached', 'numbers attachEd'));
    assert.notEqual((await verify(keys, body)).result.status.result, 'pass');
    const subj = Buffer.from(signed.toString().replace('Quarterly report', 'Quarterly rep0rt'));
    assert.notEqual((await verify(keys, subj)).result.status.result, 'pass');
    const from = Buffer.from(signed.toString().replace('alice@example.test>', 'mallory@example.test>'));
    assert.notEqual((await verify(keys, from)).result.status.result, 'pass');
  });
});

test('long CRLF body, a stream, a file stream in small chunks, a headers-only message', async () => {
  await withDir(async (dir) => {
    const keys = await DkimKeys.open(dir, pino({ level: 'silent' }));
    await keys.ensure(['example.test'], SEL);

    let body = '';
    for (let i = 0; i < 40000; i++) body += `line ${i} ${'x'.repeat(i % 70)}  trailing ws \r\n`;
    body += '\r\n\r\n\r\n'; // trailing empty lines are canonicalized away
    const big = msg(body);
    assert.ok(big.length > 2 * 1024 * 1024);
    const h1 = await keys.sign(big, 'example.test', SEL);
    assert.equal((await verify(keys, Buffer.concat([Buffer.from(h1), big]))).result.status.result, 'pass');

    // a stream with chunk boundaries everywhere, including inside the CRLF CRLF header end
    const chunks: Buffer[] = [];
    for (let i = 0, n = 1; i < big.length; i += n, n = (n * 7 + 3) % 5000 || 1) chunks.push(big.subarray(i, i + n));
    const h2 = await keys.sign(() => Readable.from(chunks), 'example.test', SEL);
    assert.equal((await verify(keys, Buffer.concat([Buffer.from(h2), big]))).result.status.result, 'pass');

    const file = join(dir, 'msg.eml');
    await writeFile(file, big);
    const h3 = await keys.sign(() => createReadStream(file, { highWaterMark: 1021 }), 'example.test', SEL);
    assert.equal((await verify(keys, Buffer.concat([Buffer.from(h3), big]))).result.status.result, 'pass');

    // no empty line at all: signed as the empty body RFC 6376 deems it to have
    const headersOnly = Buffer.from('From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: ping\r\n');
    for (const input of [headersOnly, () => Readable.from([headersOnly.subarray(0, 10), headersOnly.subarray(10)])]) {
      const h = await keys.sign(input, 'example.test', SEL);
      const withEmptyBody = Buffer.concat([Buffer.from(h), headersOnly, Buffer.from('\r\n')]);
      assert.equal((await verify(keys, withEmptyBody)).result.status.result, 'pass');
    }
  });
});

test('sign() errors: unknown key, a failing stream, a corrupt key file', async () => {
  await withDir(async (dir) => {
    const { log, lines } = capture();
    const keys = await DkimKeys.open(dir, log);
    await keys.ensure(['example.test'], SEL);
    await assert.rejects(keys.sign(msg('x\r\n'), 'other.test', SEL), /no DKIM key for domain "other\.test"/);
    await assert.rejects(keys.sign(msg('x\r\n'), 'example.test', 'nope'), /no DKIM key/);

    const failing = () =>
      new Readable({
        read() {
          this.push(msg('partial'));
          this.destroy(new Error('disk read error'));
        },
      });
    await assert.rejects(keys.sign(failing, 'example.test', SEL), /disk read error/);

    // A corrupt key file is skipped on open (logged) and replaced by the next ensure().
    await writeFile(join(dir, 'dkim', 'broken.test.mlsd.key'), 'not a key', { mode: 0o644 });
    const reopened = await DkimKeys.open(dir, log);
    assert.equal(reopened.has('broken.test', SEL), false);
    assert.ok(lines.some((l) => l.evt === 'dkim.key_invalid'));
    assert.deepEqual(await reopened.ensure(['broken.test'], SEL), ['broken.test']);
    assert.equal((await stat(join(dir, 'dkim', 'broken.test.mlsd.key'))).mode & 0o777, 0o600);
    assert.match(await reopened.sign(msg('x\r\n'), 'broken.test', SEL), /^DKIM-Signature: .*d=broken\.test/);

    // Names that would escape the key directory are refused.
    await assert.rejects(keys.ensure(['../etc'], SEL), /invalid DKIM signing domain/);
    await assert.rejects(keys.ensure(['example.test'], '../x'), /invalid DKIM selector/);
  });
});

test('a key file readable by others is tightened to 0600 on open', async () => {
  await withDir(async (dir) => {
    const { log, lines } = capture();
    const keys = await DkimKeys.open(dir, log);
    await keys.ensure(['example.test'], SEL);
    const file = join(dir, 'dkim', 'example.test.mlsd.key');
    const { chmod } = await import('node:fs/promises');
    await chmod(file, 0o644);
    const again = await DkimKeys.open(dir, log);
    assert.ok(again.has('example.test', SEL));
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.ok(lines.some((l) => l.evt === 'dkim.key_mode'));
  });
});
