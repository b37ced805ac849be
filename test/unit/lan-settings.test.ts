import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatIPv4, maskOf, parseIPv4, prefixOf } from '../../src/hw/ipv4.js';
import { checkLanInput, type LanInput } from '../../src/hw/network.js';
import { networkdFile } from '../../src/hw/network-linux.js';

// The LAN settings typed on the panel, the console or the CLI: a strict IPv4 parser (the
// canonical dotted quad only) and the subnet rules of `mlsd network set`.
const params = { seed: Number(process.env.MLSD_FUZZ_SEED ?? 20261205), numRuns: Number(process.env.MLSD_FUZZ_RUNS ?? 2000) } as const;
const u32 = fc.integer({ min: 0, max: 0xffffffff });

test('parseIPv4: every 32-bit number round-trips through its dotted quad', () => {
  fc.assert(
    fc.property(u32, (n) => {
      assert.equal(parseIPv4(formatIPv4(n)), n);
    }),
    params,
  );
});

test('parseIPv4: golden table of what is refused (octal-looking, out of range, short, long, spaced, signed)', () => {
  const refused = ['01.2.3.4', '1.2.3.04', '00.0.0.0', '1.2.3.256', '256.1.1.1', '1.2.3.4.5', '1.2.3', '1.2.3.', '.1.2.3.4', '1..2.3', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.-1', '+1.2.3.4', '0x1.2.3.4', '1.2.3.1e1', '１.2.3.4', '1.2.3.4\n', '', '1234.1.1.1', '1.2.3.9999'];
  for (const s of refused) assert.equal(parseIPv4(s), null, JSON.stringify(s));
  assert.equal(parseIPv4('0.0.0.0'), 0);
  assert.equal(parseIPv4('255.255.255.255'), 0xffffffff);
  assert.equal(parseIPv4('192.168.1.10'), 0xc0a8010a);
});

test('parseIPv4: an octet with a leading zero, or over 255, anywhere, is refused', () => {
  const octet = fc.integer({ min: 0, max: 255 }).map(String);
  const bad = fc.oneof(fc.integer({ min: 0, max: 99 }).map((n) => `0${n}`), fc.integer({ min: 256, max: 999 }).map(String));
  fc.assert(
    fc.property(fc.array(octet, { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 3 }), bad, (octets, at, b) => {
      octets[at] = b;
      assert.equal(parseIPv4(octets.join('.')), null, octets.join('.'));
    }),
    params,
  );
});

test('prefixOf: exactly the 33 contiguous masks have a prefix, and it is their own', () => {
  for (let p = 0; p <= 32; p++) assert.equal(prefixOf(maskOf(p)), p);
  fc.assert(
    fc.property(u32, (m) => {
      const contiguous = Array.from({ length: 33 }, (_, p) => maskOf(p)).includes(m);
      assert.equal(prefixOf(m) !== null, contiguous, formatIPv4(m));
    }),
    params,
  );
});

const lan = (address: string, netmask: string, gateway: string): LanInput => ({ address, netmask, gateway });
const refusal = (input: LanInput, allowLoopback = false): string => {
  try {
    checkLanInput(input, { allowLoopback });
  } catch (err) {
    return (err as Error).message;
  }
  return 'accepted';
};

test('checkLanInput: golden table, each refusal naming its option', () => {
  const table: [LanInput, RegExp][] = [
    [lan('192.168.1.10', '255.255.255.0', '192.168.1.1'), /^accepted$/],
    [lan('10.0.0.2', '255.255.255.252', '10.0.0.1'), /^accepted$/],
    [lan('10.0.0.1', '255.255.255.254', '10.0.0.0'), /^accepted$/], // /31, RFC 3021
    [lan('1.2.3.256', '255.255.255.0', '1.2.3.1'), /^--address: "1\.2\.3\.256" is not an IPv4 address/],
    [lan('01.2.3.4', '255.255.255.0', '1.2.3.1'), /^--address: "01\.2\.3\.4"/],
    [lan('1.2.3.4.5', '255.255.255.0', '1.2.3.1'), /^--address: /],
    [lan('192.168.1.10', '255.255.255.0', '192.168.1.1.'), /^--gateway: /],
    [lan('192.168.1.10', '255.0.255.0', '192.168.1.1'), /^--netmask: 255\.0\.255\.0 is not a contiguous netmask/],
    [lan('192.168.1.10', '0.0.0.0', '192.168.1.1'), /^--netmask: 0\.0\.0\.0/],
    [lan('192.168.1.10', '255.255.255.0', '192.168.2.1'), /^--gateway: 192\.168\.2\.1 is outside the LAN 192\.168\.1\.0\/24/],
    [lan('192.168.1.10', '255.255.255.0', '192.168.1.10'), /^--gateway: .* the box's own address/],
    [lan('192.168.1.255', '255.255.255.0', '192.168.1.1'), /^--address: 192\.168\.1\.255 is the broadcast address/],
    [lan('192.168.1.0', '255.255.255.0', '192.168.1.1'), /^--address: 192\.168\.1\.0 is the network address/],
    [lan('192.168.1.10', '255.255.255.0', '192.168.1.255'), /^--gateway: .* broadcast/],
    [lan('192.168.1.10', '255.255.255.255', '192.168.1.1'), /^--gateway: .* outside/],
    [lan('224.0.0.5', '255.255.255.0', '224.0.0.1'), /^--address: .* multicast/],
    [lan('0.1.2.3', '255.0.0.0', '0.1.2.1'), /^--address: /],
    [lan('127.0.23.10', '255.255.255.0', '127.0.23.1'), /^--address: 127\.0\.23\.10 is a loopback address/],
  ];
  for (const [input, want] of table) assert.match(refusal(input), want, JSON.stringify(input));
  // The sim board's LAN is loopback.
  assert.equal(refusal(lan('127.0.23.10', '255.255.255.0', '127.0.23.1'), true), 'accepted');
});

test('checkLanInput: whatever it accepts is a host of its subnet with a gateway beside it', () => {
  let accepted = 0;
  fc.assert(
    fc.property(u32, fc.integer({ min: 0, max: 32 }), u32, fc.boolean(), (a, p, h, inside) => {
      const mask = maskOf(p);
      // Half the gateways drawn inside the address's subnet, or almost none would be.
      const g = inside ? ((a & mask) | (h & ~mask)) >>> 0 : h;
      let ok;
      try {
        ok = checkLanInput(lan(formatIPv4(a), formatIPv4(mask), formatIPv4(g)), { allowLoopback: true });
      } catch (err) {
        assert.match((err as Error).message, /^--(address|netmask|gateway): /);
        return;
      }
      const net = (a & mask) >>> 0;
      assert.equal((g & mask) >>> 0, net, 'gateway in the subnet');
      assert.notEqual(g, a);
      assert.ok(p > 0 && p < 32);
      if (p <= 30) assert.ok(a !== net && a !== (net | ~mask) >>> 0, 'not the network or broadcast address');
      assert.deepEqual(ok, lan(formatIPv4(a), formatIPv4(mask), formatIPv4(g)));
      accepted++;
    }),
    params,
  );
  assert.ok(accepted > params.numRuns / 10, `the property saw accepted settings (${accepted})`);
});

test('networkdFile: the address as a prefix, the gateway, the board interface', () => {
  const f = networkdFile({ interface: 'eth0', address: '192.168.1.10', netmask: '255.255.255.0', gateway: '192.168.1.1' });
  assert.match(f, /\[Match\]\nName=eth0\n/);
  assert.match(f, /\[Network\]\nAddress=192\.168\.1\.10\/24\nGateway=192\.168\.1\.1\n/);
});
