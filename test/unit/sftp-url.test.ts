// The SFTP target's URL and host-key fingerprint: pure functions, golden tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostKeyFingerprint, parseSftpUrl } from '../../src/backup/targets/sftp.js';

test('sftp:// URLs: host, port (22 by default) and the root folder, absolute on the server', () => {
  const good: [string, { host: string; port: number; root: string }][] = [
    ['sftp://nas.local/backup', { host: 'nas.local', port: 22, root: '/backup' }],
    ['sftp://192.168.1.20:2222/volume1/mlsd/', { host: '192.168.1.20', port: 2222, root: '/volume1/mlsd' }],
    ['sftp://[fd00::20]:22/b', { host: 'fd00::20', port: 22, root: '/b' }],
    ['sftp://nas/Mail%20Backup', { host: 'nas', port: 22, root: '/Mail Backup' }],
  ];
  for (const [url, want] of good) assert.deepEqual(parseSftpUrl(url), want, url);
});

test('bad sftp:// URLs are refused with the URL and what is wrong named', () => {
  const bad: [string, RegExp][] = [
    ['nas/backup', /not a URL/],
    ['smb://nas/share', /must start with sftp:\/\//],
    ['sftp://admin:secret@nas/backup', /not in the URL/],
    ['sftp://nas', /name a folder/],
    ['sftp://nas/', /name a folder/],
    ['sftp://nas/a/%2e%2e/etc', /'\.' or '\.\.'/],
    ['sftp://nas/a/../etc', /'\.' or '\.\.'/],
    ['sftp://nas/./b', /'\.' or '\.\.'/],
    ['sftp://nas/a%0Ab', /control characters/],
    ['sftp://nas/b?x=1', /no \?query/],
    ['sftp://nas:99999/b', /not a URL/],
    ['sftp://nas/%ZZ', /percent-encoding/],
  ];
  for (const [url, why] of bad) {
    assert.throws(() => parseSftpUrl(url), (err: Error) => err.message.includes(JSON.stringify(url)) && why.test(err.message), url);
  }
});

test('the host key fingerprint is SHA-256 in base64 without padding, as ssh-keygen -lf prints after "SHA256:"', () => {
  // The ed25519 public key blob of a fixed key and what `ssh-keygen -lf` printed for it.
  const blob = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIGqbAo0j2dNnvPuoqRu4tONEnuN9dhMi9fmdu+JnOZP0', 'base64');
  assert.equal(hostKeyFingerprint(blob), 'K4ZJizw83YPdhAnQ9LUkLjThYuJwkhACX8GtbViEWDw');
});
