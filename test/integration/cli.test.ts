import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { stat, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { TestDaemon, runCli, CLI } from '../helpers/daemon.js';
import { verifyPassword } from '../../src/accounts/password.js';

// Daemon on 127.0.8.1.
const HOST = '127.0.8.1';
let d: TestDaemon;

before(async () => {
  d = await TestDaemon.create({ host: HOST });
  await d.start();
});
after(async () => d.cleanup());

test('status --json reports listeners, accounts and queues; the control socket is 0600', async () => {
  const r = await d.cli(['status', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.deepEqual(s.listeners.map((l: { name: string; port: number }) => [l.name, l.port]), [['mx', d.ports.mx], ['submission', d.ports.submission], ['smtps', d.ports.smtps]]);
  assert.equal(s.board, 'sim');
  assert.equal(typeof s.dataDiskFreeBytes, 'number');
  assert.equal((await stat(join(d.configDir, 'mlsd.sock'))).mode & 0o777, 0o600);
  const text = await d.cli(['status']);
  assert.match(text.stdout, /listener mx: 127\.0\.8\.1:\d+/);
});

test('user add/list/del; passwords only from stdin, hashed with scrypt on the config flash', async () => {
  assert.equal((await d.cli(['user', 'add', 'dora@example.test', '--password-stdin'], 'dora-pass-123\n')).code, 0);
  const dup = await d.cli(['user', 'add', 'dora@example.test', '--password-stdin'], 'x-pass-1234\n');
  assert.equal(dup.code, 1);
  assert.equal(dup.stderr, 'mlsd: dora@example.test: already exists\n');
  const foreign = await d.cli(['user', 'add', 'eve@remote.test', '--password-stdin'], 'eve-pass-123\n');
  assert.equal(foreign.stderr, 'mlsd: eve@remote.test: remote.test is not a local domain\n');
  const short = await d.cli(['user', 'add', 'fred@example.test', '--password-stdin'], 'short\n');
  assert.equal(short.stderr, 'mlsd: password: at least 8 characters\n');
  const list = JSON.parse((await d.cli(['user', 'list', '--json'])).stdout) as { address: string }[];
  assert.deepEqual(list.map((u) => u.address), ['dora@example.test']);
  const accounts = await readFile(join(d.configDir, 'accounts.json'), 'utf8');
  assert.match(accounts, /"hash": "scrypt\$32768\$8\$1\$/);
  assert.doesNotMatch(accounts, /dora-pass-123/);
  assert.equal((await d.cli(['user', 'del', 'dora@example.test'])).code, 0);
  assert.equal((await d.cli(['user', 'list'])).stdout, '\n');
});

test('config get/set: a bad value is refused with the key named and nothing changes', async () => {
  const fileBefore = await readFile(join(d.configDir, 'config.json'), 'utf8');
  const g = await d.cli(['config', 'get', 'relay.allowAuthenticated']);
  assert.equal(g.stdout.trim(), 'true');
  const bad = await d.cli(['config', 'set', 'smtp.maxMessageBytes', '"big"']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'mlsd: config: smtp.maxMessageBytes: Invalid input: expected number, received string\n');
  const unknown = await d.cli(['config', 'set', 'relay.openRelay', 'true']);
  assert.equal(unknown.stderr, 'mlsd: config: relay.openRelay: unknown key\n');
  const notJson = await d.cli(['config', 'set', 'hostname', 'mx.example.test']);
  assert.match(notJson.stderr, /^mlsd: hostname: value is not JSON/);
  assert.equal(await readFile(join(d.configDir, 'config.json'), 'utf8'), fileBefore);
  assert.equal((await d.cli(['config', 'get', 'smtp.maxMessageBytes'])).stdout.trim(), '52428800');
});

test('config set says whether the key takes effect live or at the next start', async () => {
  const live = await d.cli(['config', 'set', 'smtp.maxRecipients', '50', '--json']);
  assert.equal(live.code, 0, live.stderr);
  assert.deepEqual(JSON.parse(live.stdout), { key: 'smtp.maxRecipients', value: 50, restartNeeded: false });
  assert.equal((await d.cli(['config', 'set', 'smtp.maxRecipients', '100'])).stdout, 'smtp.maxRecipients set\n');
  const factor = await d.cli(['config', 'set', 'scan.anomaly.factor', '6']);
  assert.equal(factor.stdout, 'scan.anomaly.factor set (takes effect at the next start)\n');
  const json = JSON.parse((await d.cli(['config', 'set', 'scan.anomaly.factor', '5', '--json'])).stdout);
  assert.equal(json.restartNeeded, true);
});

test('options reach the daemon as typed and are checked against the command', async () => {
  const r = await d.cli(['queue', 'flush', '--everything']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'mlsd: queue flush: unknown option --everything (usage: queue flush)\n');
});

test('unknown commands and a stopped daemon give one clear line and a non-zero exit', async () => {
  const r = await d.cli(['frobnicate']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'mlsd: unknown command: frobnicate\n');
  const none = await runCli(['status', '--config-dir', join(d.root, 'nowhere')]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^mlsd: mlsd is not running \(no control socket at .*mlsd\.sock\)\n$/);
});

test('a second daemon on the same config dir refuses to start', async () => {
  const r = spawnSync(process.execPath, [CLI, 'start', '--config-dir', d.configDir, '--data-dir', d.dataDir], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `mlsd: another mlsd is running (control socket ${join(d.configDir, 'mlsd.sock')} answers)\n`);
});

test('a bad config file stops the start with one line naming the key', async () => {
  const other = await TestDaemon.create({ host: HOST });
  try {
    const path = join(other.configDir, 'config.json');
    const doc = JSON.parse(await readFile(path, 'utf8'));
    doc.relay = { allowIps: ['192.168.1.0/33'] };
    doc.senderLoginMismatch = 'sometimes';
    await writeFile(path, JSON.stringify(doc));
    const r = spawnSync(process.execPath, [CLI, 'start', '--config-dir', other.configDir, '--data-dir', other.dataDir], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      'mlsd: config: relay.allowIps.0: expected an IPv4/IPv6 address or CIDR range such as 192.168.1.0/24; senderLoginMismatch: Invalid option: expected one of "reject"|"allow"\n',
    );
  } finally {
    await other.cleanup();
  }
});

test('an unknown board is refused in one line', async () => {
  const r = spawnSync(process.execPath, [CLI, 'start', '--config-dir', join(d.root, 'x'), '--board', 'nosuchboard'], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `mlsd: board: no board file nosuchboard.json in ${join(CLI, '../../../board/')}\n`);
});

test('first start: self-signed certificate and admin password made once; the password goes to a 0600 file, never to stdout/stderr (the journal)', async () => {
  const passwordFile = join(d.configDir, 'initial-admin-password');
  assert.deepEqual(
    d.notices.filter((l) => l.includes('password')),
    [`mlsd: web admin user "admin"; its first-start password is in ${passwordFile} (mode 0600)`],
  );
  assert.equal((await stat(passwordFile)).mode & 0o777, 0o600);
  const password = (await readFile(passwordFile, 'utf8')).trim();
  assert.match(password, /^[A-Za-z0-9]{16}$/);
  // Nothing the daemon wrote (the journal under systemd) carries the password.
  const printed = [...d.notices, ...d.logs.map((l) => JSON.stringify(l)), d.stderr].join('\n');
  assert.ok(!printed.includes(password), 'the admin password was printed');
  const admin = await readFile(join(d.configDir, 'admin.json'), 'utf8');
  assert.doesNotMatch(admin, new RegExp(password));
  assert.ok(await verifyPassword(password, (JSON.parse(admin) as { hash: string }).hash), 'the file holds the password admin.json was made from');
  assert.equal((await stat(join(d.configDir, 'tls', 'key.pem'))).mode & 0o777, 0o600);
  const cert = await readFile(join(d.configDir, 'tls', 'cert.pem'), 'utf8');
  await d.stop();
  await d.start();
  assert.equal(d.notices.filter((l) => l.includes('first-start password')).length, 1);
  assert.equal((await readFile(passwordFile, 'utf8')).trim(), password);
  assert.equal(await readFile(join(d.configDir, 'tls', 'cert.pem'), 'utf8'), cert);
  assert.ok(!d.logs.some((l) => l.evt === 'tls.generated'));
});
