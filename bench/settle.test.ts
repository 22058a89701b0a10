// The bench's settling: the journal check from /proc's listing, and the wait after the last run's removal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settleWaitMs, unjournaledExt4 } from './settle.js';

void test('ext4 without a jbd2 entry for its device has no journal; with one, or another type, it is not flagged', () => {
  assert.equal(unjournaledExt4('ext4', '/dev/vda', []), true);
  assert.equal(unjournaledExt4('ext4', '/dev/vda', ['loop0-8']), true, 'another device journals');
  assert.equal(unjournaledExt4('ext4', '/dev/vda', ['vda-8']), false);
  assert.equal(unjournaledExt4('ext4', '/dev/vda1', ['vda-8', 'vda1-8']), false);
  assert.equal(unjournaledExt4('ext4', '/dev/vda1', ['vda-8']), true, 'vda is not vda1');
  assert.equal(unjournaledExt4('xfs', '/dev/vda', []), false);
  assert.equal(unjournaledExt4('tmpfs', 'tmpfs', []), false);
});

void test('the wait: the rest of the settling time after the last removal, none without a record or when asked for none', () => {
  const now = 1_000_000_000;
  assert.equal(settleWaitMs(300, undefined, now), 0, 'no earlier run');
  assert.equal(settleWaitMs(300, now, now), 300_000, 'right after a removal: all of it');
  assert.equal(settleWaitMs(300, now - 120_000, now), 180_000);
  assert.equal(settleWaitMs(300, now - 300_000, now), 0);
  assert.equal(settleWaitMs(300, now - 3_600_000, now), 0);
  assert.equal(settleWaitMs(0, now, now), 0, 'QUAIL_BENCH_SETTLE=0');
  assert.equal(settleWaitMs(300, now + 3_600_000, now), 300_000, 'a stamp from the future waits no more than asked');
  assert.equal(settleWaitMs(300, Number.NaN, now), 0, 'an unreadable stamp');
});
