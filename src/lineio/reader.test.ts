// Reader's cap (stress mode): a wait under way ends at the cap counted from its start; lifting the cap restores the
// caller's timeout; data still wins over an expired cap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { Reader } from './reader.js';

void test('setCap ends a wait already under way; without a cap the same wait goes on', async () => {
  const capped = new Reader(new PassThrough());
  const waiting = capped.chunk(3_600_000);
  capped.setCap(10);
  assert.equal(await waiting, 'timeout');

  const s = new PassThrough();
  const free = new Reader(s);
  const w = free.chunk(3_600_000);
  free.setCap(10);
  free.setCap(undefined); // stress over before the cap ran out
  setTimeout(() => s.write('EHLO x\r\n'), 50);
  assert.equal(String(await w), 'EHLO x\r\n');
});

void test('a cap set between waits applies to the next one; data already there is read', async () => {
  const s = new PassThrough();
  const r = new Reader(s);
  r.setCap(10);
  s.write('NOOP\r\n');
  assert.deepEqual(await r.line(3_600_000, 100), { line: Buffer.from('NOOP'), crlf: true });
  assert.equal(await r.line(3_600_000, 100), 'timeout');
});

void test('until: true when the awaited promise says so, false when it says false, at its timeout or at a cap set while waiting', async () => {
  const r = new Reader(new PassThrough());
  assert.equal(await r.until(Promise.resolve(true), 3_600_000), true);
  assert.equal(await r.until(Promise.resolve(false), 3_600_000), false);
  assert.equal(await r.until(new Promise<boolean>(() => undefined), 10), false);
  const waiting = r.until(new Promise<boolean>(() => undefined), 3_600_000);
  r.setCap(10);
  assert.equal(await waiting, false);
});
