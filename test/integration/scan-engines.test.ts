import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { clamdScan, rspamdCheck, spamdCheck, ScanEngineError } from '../../src/scan/engines.js';
import { ClamdServer, EICAR_SIGNATURE } from '../helpers/clamd.js';
import { RspamdServer } from '../helpers/rspamd.js';
import { SpamdServer } from '../helpers/spamd.js';

/**
 * The spam/virus engine clients against the real Debian daemons on loopback: SpamAssassin's
 * spamd, ClamAV's clamd (with the EICAR-only fixture database) and Rspamd.
 * Addresses: 127.0.40.x. .1 spamd, .2 clamd, .3 rspamd, .9 a TCP server that never answers.
 */
const SPAMD_HOST = '127.0.40.1';
const CLAMD_HOST = '127.0.40.2';
const RSPAMD_HOST = '127.0.40.3';
const HUNG_HOST = '127.0.40.9';

// Generous: the first check of a fresh spamd child loads modules (about 1 s here).
const T = 15000;

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

function mail(headers: Record<string, string>, body: string): Buffer {
  const h = {
    From: 'Alice Example <alice@example.test>',
    To: 'Bob Example <bob@example.test>',
    Date: new Date().toUTCString().replace('GMT', '+0000'),
    'Message-ID': `<${Date.now()}.${Math.random().toString(36).slice(2)}@mail.example.test>`,
    'MIME-Version': '1.0',
    ...headers,
  };
  const head = Object.entries(h).map(([k, v]) => `${k}: ${v}`);
  return Buffer.from([...head, '', ...body.split('\n')].join('\r\n') + '\r\n');
}

const BUSINESS = mail(
  { Subject: 'Quarterly report meeting', 'Content-Type': 'text/plain; charset=us-ascii' },
  `Hi Bob,

could we move Thursday's meeting about the quarterly report to 3 pm? The updated
figures are on the shared drive under Finance/2024/Q1.

Thanks,
Alice`,
);

const GTUBE_MAIL = mail(
  { Subject: 'Test message', 'Content-Type': 'text/plain; charset=us-ascii' },
  `Hello,

this is a test of the spam filter.

${GTUBE}

Regards,
Alice`,
);

function withAttachment(filename: string, content: string): Buffer {
  const b64 = Buffer.from(content).toString('base64').replace(/.{1,76}/g, '$&\n').trimEnd();
  return mail(
    { Subject: 'Documents', 'Content-Type': 'multipart/mixed; boundary="=_mlsd_b1"' },
    `This is a multi-part message in MIME format.

--=_mlsd_b1
Content-Type: text/plain; charset=us-ascii

Please find the file attached.

--=_mlsd_b1
Content-Type: application/octet-stream; name="${filename}"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="${filename}"

${b64}
--=_mlsd_b1--`,
  );
}

let spamd: SpamdServer;
let clamd: ClamdServer;
let rspamd: RspamdServer;
let hung: Server;
const hungSockets = new Set<Socket>();

before(async () => {
  // In parallel: spamd (rule compilation) dominates.
  [spamd, clamd, rspamd] = await Promise.all([
    SpamdServer.start({ host: SPAMD_HOST }),
    ClamdServer.start({ host: CLAMD_HOST, streamMaxLength: '1M' }),
    RspamdServer.start({ host: RSPAMD_HOST }),
  ]);
  // Accepts and reads, never answers: an engine that hangs mid-scan.
  hung = createServer((s) => {
    hungSockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => hungSockets.delete(s));
  });
  await new Promise<void>((resolve) => hung.listen(0, HUNG_HOST, resolve));
});

after(async () => {
  for (const s of hungSockets) s.destroy();
  await new Promise((r) => hung?.close(r));
  await Promise.all([spamd?.stop(), clamd?.stop(), rspamd?.stop()].map((p) => p?.catch(() => undefined)));
});

const hungPort = () => (hung.address() as { port: number }).port;

test('spamd: GTUBE is spam, with the GTUBE rule named', async () => {
  const v = await spamdCheck({ host: spamd.host, port: spamd.port, timeoutMs: T }, GTUBE_MAIL);
  assert.equal(v.spam, true, JSON.stringify(v));
  assert.ok(v.score >= 1000, JSON.stringify(v));
  assert.equal(v.threshold, 5);
  assert.ok(v.symbols.includes('GTUBE'), JSON.stringify(v));
});

test('spamd: an ordinary business mail is not spam', async () => {
  const v = await spamdCheck({ host: spamd.host, port: spamd.port, timeoutMs: T, user: 'mlsd' }, BUSINESS);
  assert.equal(v.spam, false, JSON.stringify(v));
  assert.ok(v.score < v.threshold, JSON.stringify(v));
  assert.ok(!v.symbols.includes('GTUBE'));
  // The User: header reached spamd (it logs whose preferences it used).
  assert.match(spamd.log(), /checking message .* for mlsd:/);
});

test('clamd: EICAR as the whole stream, as a mail body and as a base64 attachment is infected', async () => {
  const opts = { host: clamd.host, port: clamd.port, timeoutMs: T };
  const attachment = withAttachment('invoice.com', EICAR);
  // Proves the attachment case tests clamd's mail decoding, not a match on the raw text.
  assert.ok(!attachment.includes('EICAR'));
  for (const [what, msg] of [
    ['raw file', Buffer.from(EICAR)],
    ['mail body', mail({ Subject: 'virus test', 'Content-Type': 'text/plain; charset=us-ascii' }, EICAR)],
    ['base64 attachment', attachment],
  ] as const) {
    assert.deepEqual(await clamdScan(opts, msg), { infected: true, signature: EICAR_SIGNATURE }, what);
  }
});

test('clamd: clean mails, with and without an attachment, are OK', async () => {
  const opts = { host: clamd.host, port: clamd.port, timeoutMs: T };
  assert.deepEqual(await clamdScan(opts, BUSINESS), { infected: false });
  assert.deepEqual(await clamdScan(opts, withAttachment('report.txt', 'Q1 revenue: 1.2M\n'.repeat(50))), { infected: false });
  // Several INSTREAM chunks (64 KiB each), still under the 1M limit.
  assert.deepEqual(await clamdScan(opts, withAttachment('data.bin', 'x'.repeat(600 * 1024))), { infected: false });
});

test('clamd: a stream over StreamMaxLength is an engine error, not a verdict', async () => {
  const big = Buffer.alloc(2 * 1024 * 1024, 'a');
  await assert.rejects(clamdScan({ host: clamd.host, port: clamd.port, timeoutMs: T }, big), (err: unknown) => {
    assert.ok(err instanceof ScanEngineError, String(err));
    assert.equal(err.engine, 'clamd');
    // clamd answers "INSTREAM size limit exceeded. ERROR" and closes; the reply wins over the
    // reset our unsent chunks cause.
    assert.equal(err.kind, 'engine', err.message);
    assert.match(err.message, new RegExp(`^clamd ${clamd.host}:${clamd.port}: INSTREAM size limit exceeded\\. ERROR$`));
    return true;
  });
});

test('rspamd: GTUBE is rejected as spam; an ordinary mail is not', async () => {
  const opts = { url: rspamd.url, timeoutMs: T };
  const g = await rspamdCheck(opts, GTUBE_MAIL);
  assert.equal(g.spam, true, JSON.stringify(g));
  assert.equal(g.action, 'reject');
  assert.ok(g.symbols.includes('GTUBE'), JSON.stringify(g));
  assert.equal(g.threshold, 15);
  const b = await rspamdCheck(opts, BUSINESS);
  assert.equal(b.spam, false, JSON.stringify(b));
  assert.equal(b.action, 'no action', JSON.stringify(b));
  assert.ok(b.score < b.threshold);
  assert.ok(!/dns req: [1-9]/.test(rspamd.log()), 'rspamd made DNS requests');
});

test('a reply in another protocol is a protocol error naming the engine', async () => {
  // spamd asked clamd-style and clamd asked spamd-style: each answers with its own error.
  await assert.rejects(spamdCheck({ host: clamd.host, port: clamd.port, timeoutMs: T }, BUSINESS), (err: unknown) => {
    assert.ok(err instanceof ScanEngineError);
    assert.equal(err.kind, 'protocol', err.message);
    assert.match(err.message, new RegExp(`^spamd ${clamd.host}:${clamd.port}: `));
    return true;
  });
  await assert.rejects(clamdScan({ host: spamd.host, port: spamd.port, timeoutMs: T }, BUSINESS), (err: unknown) => {
    assert.ok(err instanceof ScanEngineError);
    assert.equal(err.kind, 'protocol', err.message);
    assert.match(err.message, new RegExp(`^clamd ${spamd.host}:${spamd.port}: `));
    return true;
  });
  await assert.rejects(rspamdCheck({ url: `http://${clamd.host}:${clamd.port}`, timeoutMs: T }, BUSINESS), (err: unknown) => {
    assert.ok(err instanceof ScanEngineError);
    assert.equal(err.kind, 'protocol', err.message);
    assert.match(err.message, new RegExp(`^rspamd http://${clamd.host}:${clamd.port}: `));
    return true;
  });
});

test('an engine that accepts but never answers times out, naming the engine', async () => {
  const timeoutMs = 300;
  const cases: [string, () => Promise<unknown>, string][] = [
    ['spamd', () => spamdCheck({ host: HUNG_HOST, port: hungPort(), timeoutMs }, GTUBE_MAIL), `spamd ${HUNG_HOST}:${hungPort()}`],
    ['clamd', () => clamdScan({ host: HUNG_HOST, port: hungPort(), timeoutMs }, BUSINESS), `clamd ${HUNG_HOST}:${hungPort()}`],
    ['rspamd', () => rspamdCheck({ url: `http://${HUNG_HOST}:${hungPort()}`, timeoutMs }, BUSINESS), `rspamd http://${HUNG_HOST}:${hungPort()}`],
  ];
  await Promise.all(
    cases.map(async ([engine, run, prefix]) => {
      const t0 = Date.now();
      await assert.rejects(run(), (err: unknown) => {
        const ms = Date.now() - t0;
        assert.ok(err instanceof ScanEngineError, String(err));
        assert.equal(err.engine, engine);
        assert.equal(err.kind, 'timeout', err.message);
        assert.ok(err.message.startsWith(`${prefix}: `), err.message);
        assert.match(err.message, /300 ms/);
        assert.ok(ms >= timeoutMs - 20 && ms < timeoutMs + 1500, `${engine} took ${ms} ms`);
        return true;
      });
    }),
  );
});

// Last: it stops the daemons.
test('a stopped engine fails at once with connection refused', async () => {
  const targets = { spamd: `${spamd.host}:${spamd.port}`, clamd: `${clamd.host}:${clamd.port}`, rspamd: rspamd.url };
  await Promise.all([spamd.stop(), clamd.stop(), rspamd.stop()]);
  const timeoutMs = 10000;
  const cases: [string, () => Promise<unknown>][] = [
    ['spamd', () => spamdCheck({ host: spamd.host, port: spamd.port, timeoutMs }, GTUBE_MAIL)],
    ['clamd', () => clamdScan({ host: clamd.host, port: clamd.port, timeoutMs }, BUSINESS)],
    ['rspamd', () => rspamdCheck({ url: rspamd.url, timeoutMs }, BUSINESS)],
  ];
  for (const [engine, run] of cases) {
    const t0 = Date.now();
    await assert.rejects(run(), (err: unknown) => {
      assert.ok(err instanceof ScanEngineError, String(err));
      assert.equal(err.kind, 'connect', err.message);
      assert.equal(err.message.startsWith(`${engine} ${targets[engine as keyof typeof targets]}: `), true, err.message);
      assert.match(err.message, /ECONNREFUSED/);
      assert.ok(Date.now() - t0 < 1000, `${engine} took ${Date.now() - t0} ms`);
      return true;
    });
  }
});
