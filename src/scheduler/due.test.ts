// Tests of the scheduler's time heap: order by time then insertion, stale entries dropped on the way out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimeHeap } from './due.js';

void test('TimeHeap: popDue returns entries up to now, by time then insertion order', () => {
  const h = new TimeHeap<string>();
  const table: Array<[number, string]> = [
    [30, 'c'],
    [10, 'a1'],
    [50, 'e'],
    [10, 'a2'],
    [20, 'b'],
    [40, 'd'],
    [0, 'z'],
  ];
  for (const [at, item] of table) h.push(at, item);
  assert.deepEqual(
    h.popDue(25, () => true),
    ['z', 'a1', 'a2', 'b'],
  );
  assert.equal(
    h.peekAt(() => true),
    30,
  );
  assert.deepEqual(
    h.popDue(100, () => true),
    ['c', 'd', 'e'],
  );
  assert.equal(h.size, 0);
  assert.equal(
    h.peekAt(() => true),
    undefined,
  );
});

void test('TimeHeap: invalid (stale) entries are dropped by popDue and peekAt', () => {
  const h = new TimeHeap<number>();
  for (let i = 0; i < 100; i++) h.push((i * 37) % 100, i);
  const stale = (i: number): boolean => i % 3 === 0;
  assert.equal(
    h.peekAt((i) => !stale(i)),
    1,
  ); // i=0 (at 0) is stale; i=73 is at 1
  const out = h.popDue(60, (i) => !stale(i));
  const times = out.map((i) => (i * 37) % 100);
  assert.deepEqual(
    times,
    [...times].sort((a, b) => a - b),
  );
  assert.ok(out.every((i) => !stale(i)));
  assert.ok(times.every((t) => t <= 60));
  assert.equal(out.length, 40);
});
