// The failed-login slowdown: doubling, per address and per login, cap, forgetting.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionLimits, LoginThrottle, SharedLoginThrottle } from './index.js';

void test('LoginThrottle: doubles per failure, per address and per login, capped, forgotten after a while', () => {
  let now = 0;
  const t = new LoginThrottle({ baseMs: 100, maxMs: 1000, forgetMs: 60_000, clock: () => now });
  assert.equal(t.delayFor('192.0.2.1', 'joe@x'), 0);
  t.failed('192.0.2.1', 'joe@x');
  assert.equal(t.delayFor('192.0.2.1', 'joe@x'), 100);
  t.failed('192.0.2.1', 'joe@x');
  t.failed('192.0.2.1', 'joe@x');
  assert.equal(t.delayFor('192.0.2.1', 'other@x'), 400, 'per address');
  assert.equal(t.delayFor('198.51.100.7', 'joe@x'), 400, 'per login, from another address');
  assert.equal(t.delayFor('198.51.100.7', 'other@x'), 0);
  for (let i = 0; i < 10; i++) t.failed('192.0.2.1', 'joe@x');
  assert.equal(t.delayFor('192.0.2.1', 'joe@x'), 1000, 'capped');
  t.succeeded('joe@x');
  assert.equal(t.delayFor('198.51.100.7', 'joe@x'), 0, 'success forgets the login');
  assert.equal(t.delayFor('192.0.2.1', 'joe@x'), 1000, 'but not the address');
  now = 61_000;
  assert.equal(t.delayFor('192.0.2.1', 'joe@x'), 0, 'forgotten');
});

void test('ConnectionLimits: maxconn in all, maxperip per address; release frees exactly one slot', () => {
  const l = new ConnectionLimits(3, 2);
  assert.equal(l.admit('10.0.0.1'), 'ok');
  assert.equal(l.admit('10.0.0.1'), 'ok');
  assert.equal(l.admit('10.0.0.1'), 'maxperip');
  assert.equal(l.admit('10.0.0.2'), 'ok');
  assert.equal(l.admit('10.0.0.3'), 'maxconn');
  assert.equal(l.open, 3);
  l.release('10.0.0.1');
  assert.equal(l.from('10.0.0.1'), 1);
  assert.equal(l.admit('10.0.0.3'), 'ok');
  assert.equal(l.admit('10.0.0.4'), 'maxconn');
  for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) l.release(ip);
  assert.equal(l.open, 0);
  assert.equal(l.from('10.0.0.1'), 0);
});

void test('SharedLoginThrottle: what one process sees, the others hear; malformed news is ignored, not re-told', () => {
  const clock = (): number => 0;
  const told: unknown[][] = [[], []];
  const a = new SharedLoginThrottle((n) => told[0]?.push(n), { baseMs: 100, clock });
  const b = new SharedLoginThrottle((n) => told[1]?.push(n), { baseMs: 100, clock });
  a.failed('192.0.2.1', 'joe@x');
  assert.deepEqual(told[0], [{ op: 'failed', ip: '192.0.2.1', login: 'joe@x' }]);
  assert.equal(b.delayFor('192.0.2.1', 'joe@x'), 0, 'not heard yet');
  for (const n of told[0] ?? []) b.heard(n);
  assert.equal(b.delayFor('192.0.2.1', 'someone@x'), 100, 'the address failure is heard');
  assert.equal(b.delayFor('198.51.100.7', 'joe@x'), 100, 'the login failure is heard');
  assert.deepEqual(told[1], [], 'what is heard is not told again (no echo between processes)');
  b.succeeded('joe@x');
  for (const n of told[1] ?? []) a.heard(n);
  assert.equal(a.delayFor('198.51.100.7', 'joe@x'), 0, 'a success elsewhere forgets the login here too');
  for (const junk of [
    null,
    'x',
    7,
    {},
    { op: 'failed', login: 'joe@x' },
    { op: 'other', login: 'joe@x' },
    { op: 'failed', ip: 1, login: 'j' },
  ])
    a.heard(junk);
  assert.equal(a.delayFor('203.0.113.9', 'j'), 0);
});
