// Named queues in the scheduler (control/queues, control/queuerules): own slots, lifetime, retries, bounces, remote policy.
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DeliveryResult } from '../core/index.js';
import type { RemoteJob } from '../remote/types.js';
import { DATA, makeWorld, type World } from '../../test/support/scheduler.js';

const DEFER: DeliveryResult = {
  result: 'deferral',
  report: "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n",
};
const OK = (j: RemoteJob): DeliveryResult => ({ result: 'success', report: `accepted ${j.recipient}\n` });

const injectInto = (w: World, queueName: string, sender: string, recipients: string[]) =>
  w.queue.inject({ sender, recipients, data: Buffer.from(DATA), injector: { kind: 'uid', uid: 0 }, queueName });

void test('queues: a queue with its own lifetime and retry schedule fails while the default queue still waits', async () => {
  const w = await makeWorld({
    remote: () => DEFER,
    control: { queues: 'short lifetime=100 retry=60\n', queuerules: 'bounce bounces\n' },
  });
  // The bounce queue must exist for the rule to count.
  writeFileSync(join(w.root, 'control', 'queues'), 'short lifetime=100 retry=60\nbounces concurrencyremote=1\n');
  try {
    await w.scheduler.start();
    const birth = w.clock.now;
    const short = await injectInto(w, 'short', 'a@origin.test', ['x@remote.test']);
    const plain = await w.inject('a@origin.test', ['y@remote.test']);
    await w.scheduler.runUntilIdle();
    const times: number[] = [0];
    for (let t = 10; t <= 400; t += 10) {
      w.clock.now = birth + t;
      const before = w.remoteJobs.filter((j) => j.recipient === 'x@remote.test').length;
      await w.scheduler.runUntilIdle();
      if (w.remoteJobs.filter((j) => j.recipient === 'x@remote.test').length > before) times.push(t);
    }
    // retry=60: 60 s after each deferral; the attempt at 120 is past lifetime=100 and turns the deferral into a failure.
    assert.deepEqual(times, [0, 60, 120]);
    assert.equal(await w.queue.read(short), undefined, 'the short queue message ended');
    const bounces = await w.byOrigin('bounce', short);
    assert.equal(bounces.length, 1);
    assert.equal(bounces[0]?.queueName, 'bounces', 'the bounce rule sent it to its own queue');
    assert.match(bounces[0]?.meta['queuerule'] ?? '', /queuerules line 1: bounce bounces/);
    // The default queue keeps qmail's schedule (remote: 0, 400 ...) and lifetime: still pending.
    const m = await w.queue.read(plain);
    assert.equal(m?.recipients[0]?.status, 'pending');
    assert.equal(m?.recipients[0]?.nextAttempt, birth + 1600);
  } finally {
    await w.close();
  }
});

void test('queues: bounces=none sends no bounce and logs that it did not', async () => {
  const w = await makeWorld({
    remote: (): DeliveryResult => ({ result: 'failure', report: 'Sorry, no such user. (#5.1.1)\n' }),
    control: { queues: 'quiet bounces=none\n' },
  });
  try {
    await w.scheduler.start();
    const id = await injectInto(w, 'quiet', 'a@origin.test', ['x@remote.test']);
    await w.scheduler.runUntilIdle();
    assert.equal(await w.queue.read(id), undefined);
    assert.equal((await w.byOrigin('bounce', id)).length, 0);
    assert.ok(w.logger.has('bounce', { msg: id, kind: 'none', queue: 'quiet' }));
  } finally {
    await w.close();
  }
});

void test("queues: a queue whose remote deliveries hang does not hold another queue's deliveries (own slots)", async () => {
  const hung: Array<() => void> = [];
  const w = await makeWorld({
    remote: (j) =>
      j.recipient.endsWith('@stuck.test')
        ? new Promise<DeliveryResult>((resolve) => hung.push(() => resolve(DEFER)))
        : OK(j),
    // The default queue has one remote slot; the stuck queue two.
    control: { concurrencyremote: '1\n', queues: 'stuck concurrencyremote=2\n' },
  });
  try {
    await w.scheduler.start();
    for (let i = 0; i < 4; i++) await injectInto(w, 'stuck', 'a@origin.test', [`u${i}@stuck.test`]);
    await w.scheduler.tick();
    // deadlines, not timings: the hung deliveries stay hung until the finally below, so only own slots can pass
    for (const end = Date.now() + 10_000; Date.now() < end && hung.length < 2;) await sleep(5);
    assert.equal(hung.length, 2, 'the stuck queue uses its own two slots, no more');
    const ok = await w.inject('a@origin.test', ['v@fine.test']);
    await w.scheduler.tick();
    for (const end = Date.now() + 10_000; Date.now() < end && (await w.queue.read(ok)) !== undefined;) await sleep(5);
    assert.equal(await w.queue.read(ok), undefined, 'the default queue delivered while the stuck queue hangs');
    assert.equal(hung.length, 2);
  } finally {
    for (const h of hung) h();
    for (let i = 0; i < 20 && hung.length < 4; i++) await new Promise((r) => setImmediate(r));
    for (const h of hung) h();
    await w.close();
  }
});

void test("queues: remote deliveries carry the queue's outgoing IP, HELO and routes; default ones carry none", async () => {
  const w = await makeWorld({
    control: { queues: 'bulk outgoingip=127.0.0.3 helohost=bulk.example route=:[127.0.0.1]:2626\n' },
  });
  try {
    await w.scheduler.start();
    await injectInto(w, 'bulk', 'a@origin.test', ['x@remote.test']);
    await w.inject('a@origin.test', ['y@remote.test']);
    await w.scheduler.runUntilIdle();
    const bulk = w.remoteJobs.find((j) => j.recipient === 'x@remote.test');
    const plain = w.remoteJobs.find((j) => j.recipient === 'y@remote.test');
    assert.equal(bulk?.policy?.outgoingIp, '127.0.0.3');
    assert.equal(bulk?.policy?.helo, 'bulk.example');
    assert.equal(bulk?.policy?.routes?.get('')?.value, '[127.0.0.1]:2626');
    assert.equal(plain?.policy, undefined);
  } finally {
    await w.close();
  }
});

void test('queues: SIGHUP re-reads control/queues; a message of a queue no longer defined is delivered as default', async () => {
  const w = await makeWorld({ remote: () => DEFER, control: { queues: 'short lifetime=0\n' } });
  try {
    await w.scheduler.start();
    writeFileSync(join(w.root, 'control', 'queues'), 'other lifetime=0\n');
    w.scheduler.reload();
    const id = await injectInto(w, 'short', 'a@origin.test', ['x@remote.test']);
    await w.scheduler.runUntilIdle();
    w.clock.advance(500);
    await w.scheduler.runUntilIdle();
    // With lifetime=0 it would have failed; as default (a week) it waits.
    assert.equal((await w.queue.read(id))?.recipients[0]?.status, 'pending');
    assert.ok(w.logger.has('warning', { msg: id }));
  } finally {
    await w.close();
  }
});
