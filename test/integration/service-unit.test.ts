import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chown, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { TestDaemon, CLI } from '../helpers/daemon.js';
import { RawSmtp } from '../helpers/smtp-client.js';

// The systemd unit of rootfs-overlay, checked with systemd's own tools, and mlsd run the way
// the unit runs it: an unprivileged user holding only the unit's ambient capabilities.
// Daemon on 127.0.105.3 (port 1019, below 1024), its SMTP client on 127.0.105.4; the upgrade
// test's daemon on 127.0.105.5, its client on 127.0.105.6.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const OVERLAY = join(ROOT, 'rootfs-overlay');
const UNIT = join(OVERLAY, 'etc/systemd/system/mlsd.service');
const HOST = '127.0.105.3';
const CLIENT = '127.0.105.4';
/** A uid and gid no account uses: nothing but what the test grants. */
const UID = 61205;
/** Ports below 1024; `ip addr` of the HA service address; the gratuitous ARP. */
const NEEDED_CAPS = ['CAP_NET_BIND_SERVICE', 'CAP_NET_ADMIN', 'CAP_NET_RAW'];
const isRoot = process.getuid?.() === 0;
const asRoot = isRoot ? {} : { skip: 'needs root (setpriv to another uid, unshare -n), as CI runs `make test`' };

/** The unit's [Service] directives: each key with every value it is given, in order. */
async function serviceDirectives(): Promise<Map<string, string[]>> {
  const text = await readFile(UNIT, 'utf8');
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[')) {
      section = line;
      continue;
    }
    if (section !== '[Service]') continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

const words = (values: string[] | undefined) => (values ?? []).flatMap((v) => v.split(/\s+/)).filter(Boolean);

/** The capabilities the unit gives mlsd, to run it with exactly those. */
const unitCaps = async () => words((await serviceDirectives()).get('AmbientCapabilities'));

test('the unit runs mlsd as user mlsd with only the network capabilities, sandboxed, and waits longer than the drain to stop', async () => {
  const d = await serviceDirectives();
  const one = (k: string) => d.get(k)?.at(-1);
  assert.equal(one('User'), 'mlsd');
  assert.equal(one('Group'), 'mlsd');
  assert.deepEqual(words(d.get('SupplementaryGroups')), ['dialout'], 'the serial lines are root:dialout 0660');
  assert.deepEqual(words(d.get('CapabilityBoundingSet')).sort(), [...NEEDED_CAPS].sort());
  assert.deepEqual(words(d.get('AmbientCapabilities')).sort(), [...NEEDED_CAPS].sort());
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.equal(one('ProtectHome'), 'yes');
  assert.equal(one('PrivateTmp'), 'yes');
  assert.deepEqual(d.get('SystemCallFilter'), ['@system-service']);
  assert.deepEqual(words(d.get('RestrictAddressFamilies')).sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_PACKET', 'AF_UNIX']);
  // The dirs ExecStart names are the writable ones.
  const exec = one('ExecStart')!;
  const configDir = /--config-dir (\S+)/.exec(exec)![1]!;
  const dataDir = /--data-dir (\S+)/.exec(exec)![1]!;
  const writable = words(d.get('ReadWritePaths')).map((p) => p.replace(/^-/, ''));
  assert.ok(writable.includes(configDir), `${configDir} is not in ReadWritePaths`);
  assert.ok(writable.some((p) => dataDir === p || dataDir.startsWith(p + '/')), `${dataDir} is not under ReadWritePaths`);
  // Stop: HA hand-over confirm (10 s) + SMTP sessions closing (smtp-server waits 30 s) + the
  // outbound drain (60 s, src/main.ts); SIGKILL before that resends mail a peer has taken.
  const mainSrc = await readFile(join(ROOT, 'src/main.ts'), 'utf8');
  const drainMs = Number(/await s\?\.stop\((\d[\d_]*)\)/.exec(mainSrc.slice(mainSrc.indexOf('async stop()')))![1]!.replace(/_/g, ''));
  assert.ok(Number(one('TimeoutStopSec')) * 1000 >= drainMs + 30_000 + 10_000, `TimeoutStopSec=${one('TimeoutStopSec')} against a ${drainMs} ms drain`);
  // The user exists on the box: sysusers.d creates it, in group dialout.
  const sysusers = await readFile(join(OVERLAY, 'usr/lib/sysusers.d/mlsd.conf'), 'utf8');
  assert.match(sysusers, /^u mlsd /m);
  assert.match(sysusers, /^m mlsd dialout$/m);
});

test('systemd-analyze verify finds nothing wrong with the unit', () => {
  const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8', timeout: 60_000 });
  assert.ok(!r.error, `systemd-analyze: ${r.error?.message} (Debian package systemd, in the Makefile's TEST_DEBS)`);
  // Only a missing /usr/bin/node is forgiven (a machine whose node lives elsewhere).
  const complaints = (r.stderr + r.stdout).split('\n').filter((l) => l.trim() && !/\/usr\/bin\/node is not executable/.test(l));
  assert.deepEqual(complaints, []);
});

test('systemd-analyze security --offline: the exposure is at most the figure the README reports', async () => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const reported = Number(/`systemd-analyze security` exposure level: \*\*(\d+\.\d)\*\*/.exec(readme)?.[1]);
  assert.ok(reported > 0, 'the README reports the exposure level');
  const r = spawnSync('systemd-analyze', ['security', '--offline=true', `--threshold=${Math.round(reported * 10)}`, UNIT], { encoding: 'utf8', timeout: 60_000 });
  assert.ok(!r.error, `systemd-analyze: ${r.error?.message}`);
  const measured = Number(/Overall exposure level for mlsd\.service: (\d+\.\d)/.exec(r.stdout)?.[1]);
  assert.ok(measured > 0, r.stdout + r.stderr);
  assert.ok(measured <= reported, `exposure ${measured} is above the README's ${reported}`);
  assert.equal(r.status, 0, `--threshold refused it: ${r.stderr}`);
});

/** Runs argv as UID with exactly `caps` (inheritable, ambient and bounding), as the unit does. */
function asServiceUser(caps: string[], argv: string[]): string[] {
  const list = ['-all', ...caps.map((c) => '+' + c.replace(/^CAP_/, '').toLowerCase())].join(',');
  return ['--reuid', String(UID), '--regid', String(UID), '--clear-groups', `--inh-caps=${list}`, `--ambient-caps=${list}`, `--bounding-set=${list}`, '--no-new-privs', ...argv];
}

// Below 1024, so it needs CAP_NET_BIND_SERVICE, but not 25: the Postfix the tests install may
// listen on *:25, which would make a bind to 127.0.105.3:25 fail for a reason of its own.
const PRIVILEGED_PORT = 1019;

async function unprivilegedDaemon(): Promise<TestDaemon> {
  const d = await TestDaemon.create({ host: HOST });
  const path = join(d.configDir, 'config.json');
  const doc = JSON.parse(await readFile(path, 'utf8'));
  doc.smtp.listeners[0].port = PRIVILEGED_PORT;
  await writeFile(path, JSON.stringify(doc));
  for (const p of [d.root, d.configDir, path]) await chown(p, UID, UID);
  return d;
}

test('mlsd as an unprivileged user with the unit capabilities serves a port below 1024; without CAP_NET_BIND_SERVICE it cannot', asRoot, async () => {
  const caps = await unitCaps();
  const d = await unprivilegedDaemon();
  try {
    const start = (caps: string[]) => spawn('setpriv', asServiceUser(caps, [process.execPath, CLI, 'start', '--config-dir', d.configDir, '--data-dir', d.dataDir]), { stdio: ['ignore', 'pipe', 'pipe'] });
    const without = spawnSync('setpriv', asServiceUser(caps.filter((c) => c !== 'CAP_NET_BIND_SERVICE'), [process.execPath, CLI, 'start', '--config-dir', d.configDir, '--data-dir', d.dataDir]), { encoding: 'utf8', timeout: 60_000 });
    assert.equal(without.status, 1, without.stdout);
    assert.match(without.stderr, /EACCES|permission denied/i);

    const proc = start(caps);
    let stderr = '';
    proc.stderr.on('data', (c) => (stderr += c));
    const lines: string[] = [];
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: proc.stdout }).on('line', (l) => {
        lines.push(l);
        if (l.includes('"evt":"daemon.ready"')) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`mlsd exited (${code}): ${stderr}`)));
    });
    try {
      await ready;
      const c = await RawSmtp.open(HOST, PRIVILEGED_PORT, CLIENT);
      try {
        assert.match(await c.reply(), /^220 /);
        assert.match(await c.cmd('EHLO client.test'), /^250[ -]/);
      } finally {
        c.close();
      }
      // What it writes is its own and private; the admin password is in the 0600 file only.
      // (config.json is the test's own file.)
      for (const name of (await readdir(d.configDir)).filter((n) => n !== 'config.json')) {
        const s = await stat(join(d.configDir, name));
        assert.equal(s.uid, UID, name);
        assert.equal(s.mode & 0o077, 0, `${name} is readable by others`);
      }
      const password = (await readFile(join(d.configDir, 'initial-admin-password'), 'utf8')).trim();
      assert.ok(!lines.join('\n').includes(password) && !stderr.includes(password), 'the password reached stdout/stderr');
      assert.equal((await stat(d.dataDir)).uid, UID);
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
    }
    assert.equal(proc.exitCode, 0, stderr);
  } finally {
    await d.cleanup();
  }
});

test('the HA service address is taken and given back by the unprivileged user through `ip` (ambient CAP_NET_ADMIN), and not without it', asRoot, async () => {
  // In a network namespace of its own: nothing on the machine's interfaces changes.
  const script = `
    import { linuxServiceAddress } from ${JSON.stringify(join(ROOT, 'dist/src/hw/service-address.js'))};
    const log = { warn: () => undefined };
    const addr = linuxServiceAddress('lo', log);
    const verb = process.argv.at(-1);
    try { await addr[verb]('10.255.105.1'); console.log('ok'); } catch (err) { console.log('refused: ' + err.message); }`;
  const run = (caps: string[]) =>
    spawnSync('unshare', ['-n', 'sh', '-c', `ip link set lo up && setpriv ${asServiceUser(caps, []).join(' ')} "$0" --input-type=module -e "$1" claim && ip -br addr show dev lo && setpriv ${asServiceUser(caps, []).join(' ')} "$0" --input-type=module -e "$1" release && ip -br addr show dev lo`, process.execPath, script], { encoding: 'utf8', timeout: 60_000 });
  const caps = await unitCaps();
  const withCaps = run(caps);
  assert.equal(withCaps.status, 0, withCaps.stderr);
  const [claimed, afterClaim, released, afterRelease] = withCaps.stdout.trim().split('\n');
  assert.equal(claimed, 'ok');
  assert.match(afterClaim!, /10\.255\.105\.1\/32/);
  assert.equal(released, 'ok');
  assert.doesNotMatch(afterRelease!, /10\.255\.105\.1/);
  const withoutAdmin = run(caps.filter((c) => c !== 'CAP_NET_ADMIN'));
  assert.match(withoutAdmin.stdout, /^refused: ip addr add 10\.255\.105\.1\/32 dev lo: .*(Operation not permitted|RTNETLINK)/m);
});

test('an upgrade from a root-run mlsd: the unit\'s ExecStartPre lines hand the root-owned config and data to the service user, and mlsd starts on them', asRoot, async () => {
  // A box that ran mlsd as root: every file it wrote is root's, 0600.
  const d = await TestDaemon.create({ host: '127.0.105.5' });
  try {
    await d.start();
    await d.addUser('bob@example.test', 'bob-password-1');
    await d.stop();
    assert.equal((await stat(join(d.configDir, 'accounts.json'))).uid, 0);
    // The unit's own ExecStartPre lines, on this test's dirs and uid ('+' means: as root).
    const pre = (await serviceDirectives()).get('ExecStartPre') ?? [];
    assert.ok(pre.length > 0, 'no ExecStartPre');
    await chown(d.root, UID, UID);
    for (const line of pre) {
      const cmd = line
        .replace(/^\+/, '')
        .replace('/usr/lib/mlsd/own-dir', join(OVERLAY, 'usr/lib/mlsd/own-dir'))
        .replaceAll(' mlsd /etc/mlsd ', ` ${UID} ${d.configDir} `)
        .replaceAll(' mlsd /data/mlsd ', ` ${UID} ${d.dataDir} `);
      const r = spawnSync('/bin/sh', ['-c', cmd], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
    }
    for (const dir of [d.configDir, d.dataDir]) {
      const s = await stat(dir);
      assert.equal(s.uid, UID, dir);
      assert.equal(s.mode & 0o777, 0o700, dir);
    }
    for (const name of await readdir(d.configDir)) assert.equal((await stat(join(d.configDir, name))).uid, UID, name);
    // mlsd as the service user, with the unit's capabilities, starts on them and serves.
    const proc = spawn('setpriv', asServiceUser(await unitCaps(), [process.execPath, CLI, 'start', '--config-dir', d.configDir, '--data-dir', d.dataDir]), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (c) => (stderr += c));
    try {
      await new Promise<void>((resolve, reject) => {
        createInterface({ input: proc.stdout }).on('line', (l) => l.includes('"evt":"daemon.ready"') && resolve());
        proc.once('exit', (code) => reject(new Error(`mlsd exited (${code}): ${stderr}`)));
      });
      const c = await RawSmtp.open('127.0.105.5', d.ports.mx, '127.0.105.6');
      try {
        assert.match(await c.reply(), /^220 /);
        assert.match(await c.cmd('EHLO client.test'), /^250[ -]/);
        assert.match(await c.cmd('MAIL FROM:<a@remote.test>'), /^250 /);
        // bob is known: the root-owned accounts.json was handed over and read.
        assert.match(await c.cmd('RCPT TO:<bob@example.test>'), /^250 /);
      } finally {
        c.close();
      }
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
    }
  } finally {
    await d.cleanup();
  }
});

test('own-dir, run as root on a tree the service user controls, re-owns no file outside it: not through a symlink, not through a hard link', asRoot, async () => {
  const { mkdtemp, symlink, link, rm: remove } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const base = await mkdtemp(join(tmpdir(), 'mlsd-owndir-'));
  try {
    const outside = join(base, 'system-file'); // stands for /etc/shadow: root's, outside the dir
    await writeFile(outside, 'root only\n', { mode: 0o600 });
    const dir = join(base, 'config');
    const { mkdir: makeDir } = await import('node:fs/promises');
    await makeDir(join(dir, 'sub'), { recursive: true });
    await writeFile(join(dir, 'config.json'), '{}');
    await writeFile(join(dir, 'sub', 'key.pem'), 'k');
    await symlink(outside, join(dir, 'sym'));
    await link(outside, join(dir, 'hard'));
    const r = spawnSync('/bin/sh', [join(OVERLAY, 'usr/lib/mlsd/own-dir'), String(UID), dir, 'every'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /hard has other hard links; not re-owned/);
    assert.equal((await stat(outside)).uid, 0, 'a file outside the dir was re-owned');
    for (const p of [dir, join(dir, 'config.json'), join(dir, 'sub'), join(dir, 'sub', 'key.pem')]) assert.equal((await stat(p)).uid, UID, p);
  } finally {
    await remove(base, { recursive: true, force: true });
  }
});
