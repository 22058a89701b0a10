// cpuByRole: the CPU a process tree spent between two readings, by role, when processes start and end in between.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuByRole, type Reading } from './cpu.js';

const r = (role: string, ppid: number, ms: number): Reading => ({ role, ppid, ms });

void test('a process that ended between the readings counts only what it spent after the first one', () => {
  // master (1) with a worker (2) that had spent 50 ms before the first reading, then 20 more, and ended: its 70 ms
  // now show in master's cutime, with master's own 10 ms in between
  const before = new Map([
    [1, r('master', 0, 100)],
    [2, r('smtpd', 1, 50)],
  ]);
  const after = new Map([[1, r('master', 0, 100 + 10 + 70)]]);
  const by = cpuByRole(before, after);
  assert.equal(
    [...by.values()].reduce((a, b) => a + b, 0),
    30,
  );
  assert.equal(by.get('master'), 30, 'charged to the ancestor still alive, where its CPU now shows');
});

void test('processes born in between count from zero; a grandchild that ended counts through the ancestor alive', () => {
  const before = new Map([
    [1, r('main.js', 0, 10)],
    [2, r('send-child.js', 1, 5)],
    [3, r('helper', 2, 7)],
  ]);
  // 3 ended (its 9 ms in 2's cutime); 4 was born and spent 4 ms
  const after = new Map([
    [1, r('main.js', 0, 12)],
    [2, r('send-child.js', 1, 5 + 1 + 9)],
    [4, r('delivery-worker.js', 1, 4)],
  ]);
  const by = cpuByRole(before, after);
  assert.equal(by.get('main.js'), 2);
  assert.equal(by.get('send-child.js'), 1 + 2, "its own 1 ms and the helper's 2 ms after the first reading");
  assert.equal(by.get('delivery-worker.js'), 4);
});
