// `tls install`'s checks of an uploaded certificate chain and key, with the hostile forms: no
// key, a key of another certificate, an encrypted key, an expired or not-yet-valid certificate,
// a chain out of order, garbage, and a megabyte of BEGIN lines (read in linear time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';
import { checkTlsBundle, certificateFacts } from '../../src/smtp/tls-commands.js';

const mk = (cn: string) => generate([{ name: 'commonName', value: cn }], { keySize: 2048, algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: cn }] }] });

test('a certificate with its key passes; the facts name it, self-signed, with its fingerprint', async () => {
  const a = await mk('box.example.test');
  const now = Date.now();
  const { chain, key } = checkTlsBundle(`${a.cert}\n${a.private}`, now);
  assert.equal(chain.length, 1);
  assert.ok(chain[0]!.checkPrivateKey(key));
  const f = certificateFacts(chain, now);
  assert.match(f.subject, /CN=box\.example\.test/);
  assert.deepEqual(f.subjectAltNames, ['DNS:box.example.test']);
  assert.equal(f.selfSigned, true);
  assert.equal(f.expired, false);
  assert.equal(f.fingerprint256, new X509Certificate(a.cert).fingerprint256);
  // The key first, CRLF line ends: the same.
  assert.equal(checkTlsBundle(`${a.private}${a.cert}`.replace(/\n/g, '\r\n'), now).chain.length, 1);
});

test('what is refused, each with one line naming the problem', async () => {
  const [a, b] = await Promise.all([mk('a.example.test'), mk('b.example.test')]);
  const now = Date.now();
  const refused = (text: string, re: RegExp, at = now) => assert.throws(() => checkTlsBundle(text, at), (e: Error) => re.test(e.message) && !e.message.includes('\n'));
  refused('', /no PEM certificate/);
  refused('\u0000\u001b[2J garbage', /no PEM certificate/);
  refused(a.cert, /no PEM private key/);
  refused(`${a.cert}${b.private}`, /does not belong to the certificate/);
  refused(`${a.cert}${a.private}${b.private}`, /2 private keys/);
  const encrypted = createPrivateKey(a.private).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }).toString();
  refused(`${a.cert}${encrypted}`, /encrypted with a passphrase/);
  refused(`${a.cert.replace(/\n[A-Za-z0-9+/]{12}/, '\nAAAAAAAAAAAA')}${a.private}`, /certificate 1 does not parse|does not belong/);
  refused(`${a.cert}${b.cert}${a.private}`, /certificate 2 did not issue certificate 1/);
  const validTo = Date.parse(new X509Certificate(a.cert).validTo);
  refused(`${a.cert}${a.private}`, /expired on/, validTo + 86_400_000);
  refused(`${a.cert}${a.private}`, /not valid before/, Date.parse(new X509Certificate(a.cert).validFrom) - 86_400_000);
});

test('a megabyte of BEGIN lines without an END is read at once, not in minutes', () => {
  const flood = '-----BEGIN CERTIFICATE-----\n'.repeat(40_000);
  const t0 = performance.now();
  assert.throws(() => checkTlsBundle(flood, Date.now()), /no PEM certificate/);
  assert.ok(performance.now() - t0 < 2000);
});
