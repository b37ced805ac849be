import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getKey, setKey, validateConfig } from '../../src/config/config.js';
import { maskSecrets, SECRET_MASK } from '../../src/config/secrets.js';

const doc = () => validateConfig({ routing: { smarthost: { host: 'isp.test', user: 'u', password: 'pw-1' } }, ha: { sharedKey: 'k'.repeat(20) } });

test('maskSecrets: every field marked secret is masked from any key that contains it; the rest is untouched', () => {
  const cfg = doc();
  const whole = maskSecrets('', cfg) as typeof cfg;
  assert.equal(whole.routing.smarthost.password, SECRET_MASK);
  assert.equal(whole.ha.sharedKey, SECRET_MASK);
  assert.deepEqual({ ...whole, routing: cfg.routing, ha: cfg.ha }, cfg);
  assert.equal((maskSecrets('ha', cfg.ha) as typeof cfg.ha).sharedKey, SECRET_MASK);
  assert.equal(maskSecrets('ha.sharedKey', cfg.ha.sharedKey), SECRET_MASK);
  assert.equal(maskSecrets('routing.smarthost.password', ''), '');
  assert.equal(maskSecrets('smtp.listeners.0.port', 25), 25);
  assert.deepEqual(maskSecrets('smtp.listeners', cfg.smtp.listeners), cfg.smtp.listeners);
  // A key or a field the schema does not describe is hidden, not guessed about.
  assert.equal(maskSecrets('no.such', 'x'), SECRET_MASK);
  assert.deepEqual(maskSecrets('relay', { ...cfg.relay, extra: 'x' }), { ...cfg.relay, extra: SECRET_MASK });
  // The input is not changed.
  assert.equal(cfg.ha.sharedKey, 'k'.repeat(20));
});

test('setKey/getKey refuse prototype-reaching segments; Object.prototype stays as it was', () => {
  const before = Object.getOwnPropertyDescriptors(Object.prototype);
  for (const key of ['__proto__.toString', '__proto__.hasOwnProperty', 'relay.__proto__.valueOf', 'constructor.prototype.toString', 'smtp.listeners.constructor', 'hostname.prototype']) {
    assert.throws(() => setKey(doc(), key, 1), { message: new RegExp(`^config: ${key.replace(/\./g, '\\.')}: the path segment (__proto__|constructor|prototype) is not allowed$`) });
    assert.throws(() => getKey(doc(), key), /is not allowed/);
  }
  assert.deepEqual(Object.getOwnPropertyDescriptors(Object.prototype), before);
  // Inherited members are not keys either.
  assert.throws(() => getKey(doc(), 'smtp.listeners.length'), /unknown key/);
  assert.throws(() => setKey(doc(), 'hostname.length', 1), /unknown key/);
  assert.throws(() => setKey(doc(), 'relay.', 1), /unknown key/);
  assert.equal(getKey(doc(), 'smtp.listeners.0.port'), 25);
});
