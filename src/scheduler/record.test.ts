// Recording results: the slot is freed before the state write, a delivered message goes straight to removal.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LocalResult } from '../local/types.js';
import type { QueueId, RecipientState } from '../queue/types.js';
import type { DeliveryStatus } from '../core/index.js';
import { messageState } from './state.js';
import { afterAttempt, endsDelivered } from './task.js';
import { makeWorld, type World } from '../../test/support/scheduler.js';
import { waitFor } from '../../test/support/wait.js';

const OK: LocalResult = { result: 'success', report: 'did 1+0+0\n' };
const NOSUCH: LocalResult = { result: 'failure', report: 'Sorry, no mailbox here by that name. (#5.1.1)\n' };
const DEFER: LocalResult = { result: 'deferral', report: 'Uh-oh: home directory is writable. (#4.7.0)\n' };

/** Records the statuses of every envelope rewrite; `gate` (when set) holds a write until it resolves. */
function recordWrites(w: World): {
  writes: string[][];
  gate?: (r: readonly RecipientState[]) => Promise<void> | undefined;
} {
  const rec: { writes: string[][]; gate?: (r: readonly RecipientState[]) => Promise<void> | undefined } = {
    writes: [],
  };
  const real = w.queue.updateRecipients.bind(w.queue);
  w.queue.updateRecipients = async (id, recipients) => {
    rec.writes.push(recipients.map((r) => r.status));
    await rec.gate?.(recipients);
    return real(id, recipients);
  };
  return rec;
}

void test('endsDelivered / afterAttempt: only the last in-flight recipient, all done, skips the state write', () => {
  const msg = messageState({
    id: 'x' as QueueId,
    birth: 1,
    sender: 's@t',
    size: 1,
    meta: {},
    held: false,
    queueName: 'default',
    recipients: [
      { original: 'a@t', status: 'done', attempts: 1, channel: 'local' },
      { original: 'b@t', status: 'todo', attempts: 0, channel: 'local' },
    ],
  });
  const cur = msg.recipients[1] as RecipientState;
  const cases: Array<[DeliveryStatus, boolean]> = [
    ['success', true],
    ['failure', false],
    ['deferral', false],
  ];
  for (const [result, want] of cases) {
    const next = afterAttempt({ ...cur, nextAttempt: 5 }, { result, report: 'r\n' }, 99);
    assert.equal(next.attempts, 1);
    assert.equal(next.nextAttempt, result === 'deferral' ? 99 : undefined, result);
    msg.recipients = [msg.recipients[0] as RecipientState, next];
    msg.inFlight.clear();
    msg.inFlight.add(1);
    assert.equal(endsDelivered(msg, 1), want, result);
    msg.inFlight.add(0);
    assert.equal(endsDelivered(msg, 1), false, `${result} with another recipient in flight`);
  }
});

void test('a delivered message is removed without a state write first; failures and deferrals are written', async () => {
  const w = await makeWorld({ local: (job) => (job.local === 'gone' ? NOSUCH : job.local === 'later' ? DEFER : OK) });
  try {
    const rec = recordWrites(w);
    await w.scheduler.start();
    await w.inject('s@origin.test', ['joe@local.test']);
    await w.scheduler.runUntilIdle();
    assert.equal(rec.writes.length, 0, 'local-only routing is not written for a message delivered at once');
    assert.equal((await w.all()).length, 0);

    rec.writes.length = 0;
    await w.inject('s@origin.test', ['gone@local.test', 'joe@local.test']);
    await w.scheduler.runUntilIdle();
    assert.ok(
      rec.writes.some((s) => s.includes('failed')),
      `the failure is recorded before the bounce: ${JSON.stringify(rec.writes)}`,
    );

    rec.writes.length = 0;
    await w.inject('s@origin.test', ['later@local.test']);
    await w.scheduler.runUntilIdle();
    assert.deepEqual(rec.writes, [['pending']], 'the routing goes with the deferral');
    const [kept] = await w.all();
    assert.equal(kept?.recipients[0]?.channel, 'local', 'routed on disk once a state is written');
  } finally {
    await w.close();
  }
});

void test('stop during the last delivery: the message is still removed, and a restart does not deliver it again', async () => {
  let release: (() => void) | undefined;
  const w = await makeWorld({
    local: async () => {
      await new Promise<void>((r) => (release = r));
      return OK;
    },
  });
  try {
    await w.scheduler.start();
    await w.inject('s@origin.test', ['joe@local.test']);
    const idle = w.scheduler.runUntilIdle();
    await waitFor(() => release !== undefined, 5_000, 'delivery started');
    const stopped = w.scheduler.stop();
    release?.();
    await stopped;
    await idle;
    assert.equal((await w.all()).length, 0, 'removed before stop() returned');
    w.restart();
    await w.scheduler.start();
    await w.scheduler.runUntilIdle();
    assert.equal(w.localJobs.length, 1);
  } finally {
    await w.close();
  }
});

void test('concurrencylocal 1: the next delivery starts while the previous result is still being written', async () => {
  const w = await makeWorld({
    control: { concurrencylocal: '1\n' },
    local: (job) => (job.local === 'first' ? DEFER : OK),
  });
  let open: (() => void) | undefined;
  try {
    const rec = recordWrites(w);
    const held = new Promise<void>((r) => (open = r));
    rec.gate = (r) => (r.some((x) => x.status === 'pending') ? held : undefined);
    await w.scheduler.start();
    // first alone, so that it is the one whose result write is held (the queue's scan order is not the inject order)
    await w.inject('s@origin.test', ['first@local.test']);
    const idle = w.scheduler.runUntilIdle();
    await waitFor(() => rec.writes.some((s) => s.includes('pending')), 5_000, "the first delivery's write is held");
    await w.inject('s@origin.test', ['second@local.test']);
    const idle2 = w.scheduler.runUntilIdle(); // rescans: the second message is seen while the first write is held
    await waitFor(() => w.localJobs.length === 2, 5_000, 'the second delivery ran while the first write was held');
    assert.deepEqual(
      w.localJobs.map((j) => j.local),
      ['first', 'second'],
    );
    open?.();
    await idle;
    await idle2;
    const left = await w.all();
    assert.equal(left.length, 1);
    assert.equal(left[0]?.recipients[0]?.status, 'pending');
  } finally {
    open?.(); // a failure above must not leave the held write (and with it close()) waiting forever
    await w.close();
  }
});
