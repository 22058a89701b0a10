// queue/lock: a second scheduler on one queue waits for the first, then refuses, naming the lock.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { EventLog } from './log.js';
import { openScheduledQueue } from './queue-open.js';

void test('a second scheduler on one queue is refused while the first holds queue/lock, and gets it after', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-qlock-'));
  const events: string[] = [];
  const log: EventLog = { event: (name) => void events.push(name) };
  try {
    const first = await openScheduledQueue(root, log);
    await assert.rejects(openScheduledQueue(root, log, 300), /another scheduler runs on .*queue\/lock/);
    first.queue.close();
    await first.lock.close();
    const second = await openScheduledQueue(root, log, 300);
    second.queue.close();
    await second.lock.close();
    assert.deepEqual(events, ['queue.recovered', 'queue.recovered']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
