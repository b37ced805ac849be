import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkEnvelopeSender, checkHeaderFrom } from '../../src/policy/senderLogin.js';
import { formatReply } from '../../src/policy/reply.js';
import type { SessionFacts } from '../../src/policy/types.js';

const owned: Record<string, string[]> = { 'bob@example.test': ['bob@example.test', 'sales@example.test'] };
const own = { owns: (login: string, a: string) => (owned[login] ?? [login]).includes(a) };
const f = (login: string | null): SessionFacts => ({ clientIp: '192.0.2.1', listener: 'submission', login, tls: true });
const show = (v: ReturnType<typeof checkEnvelopeSender>) => (v.ok ? 'accept' : formatReply(v.reply));

test('envelope sender: own address and permitted alias pass, others get 553 5.7.1', () => {
  assert.equal(show(checkEnvelopeSender('reject', f('bob@example.test'), 'bob@example.test', own)), 'accept');
  assert.equal(show(checkEnvelopeSender('reject', f('bob@example.test'), 'sales@example.test', own)), 'accept');
  assert.equal(show(checkEnvelopeSender('reject', f('bob@example.test'), 'ceo@example.test', own)), '553 5.7.1 Sender address rejected: not owned by user');
  assert.equal(show(checkEnvelopeSender('reject', f('bob@example.test'), 'x@remote.test', own)), '553 5.7.1 Sender address rejected: not owned by user');
});

test('envelope sender: unauthenticated sessions and "allow" mode are not judged here', () => {
  assert.equal(show(checkEnvelopeSender('reject', f(null), 'ceo@example.test', own)), 'accept');
  assert.equal(show(checkEnvelopeSender('allow', f('bob@example.test'), 'ceo@example.test', own)), 'accept');
});

test('header From: every author must be owned; a missing From is refused for a login', () => {
  assert.equal(show(checkHeaderFrom('reject', f('bob@example.test'), ['bob@example.test'], own)), 'accept');
  assert.equal(show(checkHeaderFrom('reject', f('bob@example.test'), ['bob@example.test', 'ceo@example.test'], own)), '550 5.7.1 From header address rejected: not owned by user');
  assert.equal(show(checkHeaderFrom('reject', f('bob@example.test'), [], own)), '550 5.7.1 From header address rejected: not owned by user');
  assert.equal(show(checkHeaderFrom('reject', f(null), ['ceo@example.test'], own)), 'accept');
});
