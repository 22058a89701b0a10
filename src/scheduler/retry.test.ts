// Golden tables: the retry schedule (F.2), lifetime (F.3), VERP (F.7), logsafe (FORMAT.md 1.4).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHANNEL_TABLE } from './channels.js';
import { isDying, isqrt, nextRetry } from './retry.js';
import { logsafe, verpSender } from './verp.js';

void test('nextRetry: birth + (floor(sqrt(now - birth)) + 10|20)^2', () => {
  const b = 1000;
  const table: Array<[number, 'local' | 'remote', number]> = [
    [b, 'local', b + 100],
    [b + 101, 'local', b + 400],
    [b + 399, 'local', b + 841], // floor(sqrt(399)) = 19 -> 29^2
    [b + 401, 'local', b + 900],
    [b, 'remote', b + 400],
    [b + 401, 'remote', b + 1600],
    [b - 50, 'local', b + 100], // clock before birth: the sqrt term is 0
  ];
  for (const [now, ch, want] of table) assert.equal(nextRetry(b, now, CHANNEL_TABLE[ch].skip), want, `${now} ${ch}`);
});

void test('isqrt is exact at perfect squares', () => {
  for (const [x, r] of [
    [0, 0],
    [1, 1],
    [3, 1],
    [4, 2],
    [99, 9],
    [100, 10],
    [604800, 777],
    [2 ** 40, 2 ** 20],
    [2 ** 40 - 1, 2 ** 20 - 1],
  ]) {
    assert.equal(isqrt(x as number), r, String(x));
  }
});

void test('isDying: strictly after birth + lifetime', () => {
  assert.equal(isDying(100, 102, 2), false);
  assert.equal(isDying(100, 103, 2), true);
});

void test('verpSender (F.7)', () => {
  const table: Array<[string, string, string]> = [
    ['owner-@origin.test-@[]', 'friend@remote.test', 'owner-friend=remote.test@origin.test'],
    ['PRE@HOST-@[]', 'box@dom', 'PREbox=dom@HOST'],
    ['PRE@HOST-@[]', 'a@b@dom', 'PREa@b=dom@HOST'],
    ['PRE@HOST-@[]', 'nodomain', 'PRE@HOST-@[]'],
    ['noat-@[]', 'box@dom', 'noat-@[]'],
    ['plain@sender', 'box@dom', 'plain@sender'],
    ['', 'box@dom', ''],
  ];
  for (const [s, r, want] of table) assert.equal(verpSender(s, r), want, `${s} ${r}`);
});

void test('logsafe', () => {
  assert.equal(
    logsafe('Sorry, no mailbox here by that name. (#5.1.1)\n'),
    'Sorry,_no_mailbox_here_by_that_name._(#5.1.1)/',
  );
  assert.equal(logsafe('100%\tx\u00e9'), '100__x_');
});
