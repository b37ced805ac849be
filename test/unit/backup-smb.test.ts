import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSmbUrl } from '../../src/backup/targets/smb-url.js';
import { errorFor, parseListing, scriptLocal, smbclientInvocation, unfinishedError, type RunResult } from '../../src/backup/targets/smbclient.js';
import { TargetError } from '../../src/backup/target.js';

test('parseSmbUrl: host, port (445 by default), share and folder', () => {
  const table: [string, ReturnType<typeof parseSmbUrl>][] = [
    ['smb://nas.local/backup', { host: 'nas.local', port: 445, share: 'backup', folder: '' }],
    ['smb://192.168.1.20:1445/Backup$/mlsd/box-1/', { host: '192.168.1.20', port: 1445, share: 'Backup$', folder: 'mlsd/box-1' }],
    ['smb://[fd00::5]:445/nas/a', { host: 'fd00::5', port: 445, share: 'nas', folder: 'a' }],
    ['SMB://NAS/share', { host: 'NAS', port: 445, share: 'share', folder: '' }],
  ];
  for (const [url, want] of table) assert.deepEqual(parseSmbUrl(url), want, url);
});

test('parseSmbUrl: a bad URL is refused with the URL and the reason named', () => {
  const table: [string, RegExp][] = [
    ['', /expected smb:\/\//],
    ['sftp://h/x', /expected smb:\/\//],
    ['smb://nas', /expected smb:\/\/host/],
    ['smb://user:pw@nas/share', /no user or password in the URL/],
    ['smb://nas:0/share', /port 0 out of range/],
    ['smb://nas:70000/share', /port 70000 out of range/],
    ['smb://nas/share/../etc', /folder part "\.\."/],
    ['smb://nas/share/a b', /folder part "a b"/],
    ['smb://nas/sh;are', /share name "sh;are"/],
    ['smb://nas/share/a"b', /folder part/],
    ['smb://na s/share', /expected smb:\/\/host/],
  ];
  for (const [url, re] of table) {
    assert.throws(() => parseSmbUrl(url), (e: Error) => e instanceof TargetError && e.message.includes(`bad URL ${JSON.stringify(url)}`) && re.test(e.message), url);
  }
});

test('errorFor: what smbclient printed decides the kind, the status word is named', () => {
  const table: [string[], boolean, string, RegExp][] = [
    [['session setup failed: NT_STATUS_LOGON_FAILURE'], false, 'auth', /NT_STATUS_LOGON_FAILURE/],
    [['session setup failed: NT_STATUS_ACCESS_DENIED'], false, 'auth', /NT_STATUS_ACCESS_DENIED/],
    [['tree connect failed: NT_STATUS_ACCESS_DENIED'], false, 'auth', /NT_STATUS_ACCESS_DENIED/],
    [['session setup failed: NT_STATUS_ACCOUNT_LOCKED_OUT'], false, 'auth', /LOCKED_OUT/],
    [['NT_STATUS_ACCESS_DENIED opening remote file \\a\\b'], true, 'io', /NT_STATUS_ACCESS_DENIED/],
    [['do_connect: Connection to 10.0.0.9 failed (Error NT_STATUS_CONNECTION_REFUSED)'], false, 'unreachable', /CONNECTION_REFUSED/],
    [['do_connect: Connection to nas failed (Error NT_STATUS_UNSUCCESSFUL)'], false, 'unreachable', /UNSUCCESSFUL/],
    [['NT_STATUS_IO_TIMEOUT opening remote file \\x'], true, 'unreachable', /IO_TIMEOUT/],
    // A write cut by the connection's end prints a vaguer status first.
    [['cli_push returned NT_STATUS_INVALID_PARAMETER', 'NT_STATUS_CONNECTION_DISCONNECTED closing remote file \\x.part-1'], false, 'unreachable', /CONNECTION_DISCONNECTED/],
    [['cli_push returned NT_STATUS_DISK_FULL', 'putting file /tmp/x as \\x.part-1 (1.0 kb/s)'], false, 'full', /NT_STATUS_DISK_FULL/],
    [['NT_STATUS_OBJECT_NAME_NOT_FOUND opening remote file \\a'], true, 'notFound', /OBJECT_NAME_NOT_FOUND/],
    [['NT_STATUS_OBJECT_PATH_NOT_FOUND opening remote file \\a\\b'], true, 'notFound', /OBJECT_PATH_NOT_FOUND/],
    [['NT_STATUS_OBJECT_PATH_NOT_FOUND making remote directory \\a\\b'], false, 'io', /OBJECT_PATH_NOT_FOUND/],
    [['/tmp/x does not exist'], false, 'io', /failed \(\/tmp\/x does not exist\)/],
  ];
  for (const [lines, nf, kind, re] of table) {
    const e = errorFor('put x', lines, nf);
    assert.equal(e.kind, kind, lines.join(' | '));
    assert.match(e.message, re);
    assert.match(e.message, /^smb: put x: /);
  }
});

test('unfinishedError: killed by the watchdog is unreachable; a crash without a status is io', () => {
  const r = (over: Partial<RunResult>): RunResult => ({ steps: [], tail: [], code: null, signal: null, timedOut: false, ...over });
  assert.equal(unfinishedError('get a', r({ timedOut: true, signal: 'SIGKILL' }), [], 120_000).kind, 'unreachable');
  assert.match(unfinishedError('get a', r({ timedOut: true }), [], 120_000).message, /no progress for 120 s/);
  assert.equal(unfinishedError('get a', r({ code: 1, tail: ['session setup failed: NT_STATUS_LOGON_FAILURE'] }), [], 1).kind, 'auth');
  const crash = unfinishedError('get a', r({ signal: 'SIGSEGV' }), [], 1);
  assert.equal(crash.kind, 'io');
  assert.match(crash.message, /killed by SIGSEGV/);
});

test('parseListing: a recursive ls, relative to the target folder, names with spaces whole, folders left out', () => {
  const out = [
    '  .                                   D        0  Sat Dec  5 07:40:51 2026',
    '  ..                                  D        0  Sat Dec  5 07:40:08 2026',
    '  b                                   D        0  Sat Dec  5 07:40:51 2026',
    '  x                                   A        6  Sat Dec  5 07:40:42 2026',
    '  sp ace 5                            A      123  Sat Dec  5 07:40:42 2026',
    '  a-very-long-file-name-beyond-thirty-chars.eml.gz      AH 99999999999  Mon Jan 12 17:03:09 2026',
    '',
    '\\t\\f\\a\\b',
    '  .                                   D        0  Sat Dec  5 07:40:51 2026',
    '  q                                   N        0  Sat Dec  5 07:40:51 2026',
    '',
    '\t\t264212084 blocks of size 1024. 82660296 blocks available',
  ];
  assert.deepEqual(parseListing(out, 't/f/a', 't/f'), [
    { path: 'a/x', size: 6 },
    { path: 'a/sp ace 5', size: 123 },
    { path: 'a/a-very-long-file-name-beyond-thirty-chars.eml.gz', size: 99999999999 },
    { path: 'a/b/q', size: 0 },
  ]);
  // The target at the share's root.
  assert.deepEqual(parseListing(['  m                                   A        1  Sat Dec  5 07:40:51 2026'], '', ''), [{ path: 'm', size: 1 }]);
});

test('the smbclient command line: SMB 3, signing required, and no password in it', () => {
  const inv = smbclientInvocation({ host: '10.1.2.3', port: 445, share: 'nas', folder: '' }, 'OFFICE\\backup', 'pa ss%w;rd');
  assert.ok(!inv.args.join(' ').includes('pa ss'));
  assert.equal(inv.env.PASSWD, 'pa ss%w;rd');
  assert.deepEqual(inv.args.slice(inv.args.indexOf('-U'), inv.args.indexOf('-U') + 2), ['-U', 'OFFICE\\backup']);
  for (const a of ['SMB3', '--option=client min protocol=SMB3', '--option=client signing=required', '-E']) assert.ok(inv.args.includes(a), a);
  assert.throws(() => smbclientInvocation({ host: 'h', port: 445, share: 's', folder: '' }, 'u%p', 'x'), /refusing user/);
  assert.throws(() => smbclientInvocation({ host: 'h', port: 445, share: 's', folder: '' }, 'u', 'x\ny'), /line break/);
});

test('scriptLocal: a local path that could break the script is refused', () => {
  assert.equal(scriptLocal('/var/tmp/mlsd restore/1.part'), '"/var/tmp/mlsd restore/1.part"');
  for (const bad of ['relative/x', '/a"b', '/a;b', '/a\nb', '/a\rb', '/a\tb']) assert.throws(() => scriptLocal(bad), /refusing local path/, bad);
});
