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

void test('under a cap a command line must arrive whole within it (per-record deadline): a trickle of bytes is cut; without a cap it is read', async () => {
  const trickle = (s: PassThrough): NodeJS.Timeout => {
    const bytes = [...'EHLO trickle.example.com\r\n'];
    const t = setInterval(() => {
      const b = bytes.shift();
      if (b === undefined) clearInterval(t);
      else s.write(b);
    }, 20);
    return t;
  };
  // 26 bytes, one every 20 ms: each wait is far shorter than the 150 ms cap, the whole line far longer
  const s = new PassThrough();
  const capped = new Reader(s);
  capped.setCap(150);
  const t = trickle(s);
  assert.equal(await capped.line(3_600_000, 1000), 'timeout');
  clearInterval(t);

  const s2 = new PassThrough();
  const free = new Reader(s2);
  trickle(s2);
  assert.deepEqual(await free.line(3_600_000, 1000), { line: Buffer.from('EHLO trickle.example.com'), crlf: true });
});
