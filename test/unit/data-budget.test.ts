import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataBudget, dataBudgetBytes } from '../../src/smtp/data-budget.js';

const MiB = 1024 * 1024;

test('smtp.maxDataBytesInFlight 0 (the default) means 256 MiB, or twice smtp.maxMessageBytes when that is more', () => {
  assert.equal(dataBudgetBytes({ maxDataBytesInFlight: 0, maxMessageBytes: 50 * MiB }), 256 * MiB);
  assert.equal(dataBudgetBytes({ maxDataBytesInFlight: 0, maxMessageBytes: 500 * MiB }), 1000 * MiB);
  assert.equal(dataBudgetBytes({ maxDataBytesInFlight: 3 * MiB, maxMessageBytes: 1 * MiB }), 3 * MiB);
});

test('claims share the budget: a growth past it is refused and takes nothing; a release (even twice) gives back exactly what was held', () => {
  let limit = 100;
  const b = new DataBudget(() => limit);
  const a = b.claim();
  const c = b.claim();
  assert.equal(a.grow(60), true);
  assert.equal(c.grow(50), false, 'would pass the limit');
  assert.equal(c.grow(40), true);
  assert.equal(b.inFlight, 100);
  a.release();
  a.release();
  assert.equal(b.inFlight, 40);
  assert.equal(a.grow(1), false, 'a released claim takes no more');
  // A limit lowered at run time applies to the next growth.
  limit = 30;
  assert.equal(b.claim().grow(1), false);
  c.release();
  assert.equal(b.inFlight, 0);
});
