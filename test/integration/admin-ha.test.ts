// The web admin on an HA pair: each box answers on its own address (admin.listen is per box and
// survives a config sync), the standby's pages refuse what only the active does, a new password
// set on the active logs the standby's browsers out, and a certificate installed on the active
// is presented by the standby's web admin as soon as it arrives.
// Loopback: the pair on 127.0.158.1 and .2, relays .3 and .4, the service address .10.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eventually, type TestDaemon } from '../helpers/daemon.js';
import { startHaPair, startedInSync, type HaPair } from '../helpers/ha-pair.js';
import { web } from '../helpers/admin-web.js';

let p: HaPair;
let active: TestDaemon;
let standby: TestDaemon;

before(async () => {
  p = await startHaPair({ net: '127.0.158', admin: true });
  ({ active, standby } = await startedInSync(p));
  const r = await active.cli(['admin', 'passwd', '--password-stdin'], 'pair-password-1\n');
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await p?.cleanup();
});

async function login(d: TestDaemon, password: string): Promise<{ cookie: string; csrf: string }> {
  return eventually(`a login on ${d.host}`, async () => {
    const r = await web(d, '/api/login', { body: { user: 'admin', password } });
    return r.status === 200 && r.cookie ? { cookie: r.cookie, csrf: r.json().csrf as string } : false;
  });
}

function fingerprint(d: TestDaemon): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: d.host, port: d.ports.admin, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });
}

test('each box answers on its own address; the standby shows status and refuses a change with the reason', async () => {
  assert.notEqual(active.ports.admin, 0);
  const a = await login(active, 'pair-password-1');
  const b = await login(standby, 'pair-password-1');
  const st = await web(standby, '/api/run', { cookie: b.cookie, csrf: b.csrf, body: { argv: ['ha', 'status'] } });
  assert.equal(st.json().ok, true);
  assert.equal(st.json().json.role, 'standby');
  const refused = await web(standby, '/api/run', { cookie: b.cookie, csrf: b.csrf, body: { argv: ['config', 'set', 'thresholds.perIpMessagesPerDay', '5'] } });
  assert.equal(refused.json().ok, false);
  assert.match(refused.json().error, /standby.*active box/);
  // The active's change reaches the standby's document; each box keeps its own admin.listen.
  const set = await web(active, '/api/run', { cookie: a.cookie, csrf: a.csrf, body: { argv: ['config', 'set', 'thresholds.perIpMessagesPerDay', '5'] } });
  assert.equal(set.json().ok, true);
  const doc = async (d: TestDaemon) => JSON.parse(await readFile(join(d.configDir, 'config.json'), 'utf8')) as { admin: { listen: string }; thresholds: { perIpMessagesPerDay: number } };
  await eventually('the change on the standby', async () => (await doc(standby)).thresholds.perIpMessagesPerDay === 5);
  assert.equal((await doc(active)).admin.listen, `${active.host}:${active.ports.admin}`);
  assert.equal((await doc(standby)).admin.listen, `${standby.host}:${standby.ports.admin}`);
  assert.equal((await web(standby, '/')).status, 200, 'the standby still serves its pages after the sync');
  const cert = await standby.cli(['tls', 'install', '--password-stdin'], 'x');
  assert.notEqual(cert.code, 0);
  assert.match(cert.stderr, /active box/);
});

test('a password set on the active ends the sessions on the standby too; the new one logs in there', async () => {
  const b = await login(standby, 'pair-password-1');
  assert.equal((await web(standby, '/api/session', { cookie: b.cookie })).status, 200);
  const r = await active.cli(['admin', 'passwd', '--password-stdin'], 'pair-password-2\n');
  assert.equal(r.code, 0, r.stderr);
  await eventually('the standby session to end', async () => (await web(standby, '/api/session', { cookie: b.cookie })).status === 401);
  await login(standby, 'pair-password-2');
});

test('a certificate installed on the active is presented by the standby web admin as soon as it arrives', async () => {
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: 'pair.example.test' }], { keySize: 2048, algorithm: 'sha256' });
  const before = await fingerprint(standby);
  const r = await active.cli(['tls', 'install', '--password-stdin'], pems.cert + pems.private);
  assert.equal(r.code, 0, r.stderr);
  const fresh = await fingerprint(active);
  assert.notEqual(fresh, before);
  await eventually('the standby to present the new certificate', async () => (await fingerprint(standby)) === fresh, 20_000);
});
