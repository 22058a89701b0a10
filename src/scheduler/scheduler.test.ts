// The scheduler against a real queue on a temp dir, scripted local/remote results and a fake clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DeliveryResult } from '../core/index.js';
import type { LocalResult } from '../local/types.js';
import { TOO_LONG } from './retry.js';
import { openQueue, type QueueId } from '../queue/index.js';
import { DATA, makeWorld } from '../../test/support/scheduler.js';
import { waitFor } from '../../test/support/wait.js';

const NOSUCH = 'Sorry, no mailbox here by that name. (#5.1.1)\n';
const WRITABLE = 'Uh-oh: home directory is writable. (#4.7.0)\n';
const defer = (): LocalResult => ({ result: 'deferral', report: WRITABLE });
const remoteDefer = (): DeliveryResult => ({
  result: 'deferral',
  report: "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n",
});

void test('local retries at birth + (10k)^2: 0, 100, 400, 900', async () => {
  const w = await makeWorld({ local: defer });
  try {
    await w.scheduler.start();
    const birth = w.clock.now;
    const id = await w.inject('a@origin.test', ['joe@local.test']);
    await w.scheduler.runUntilIdle();
    const times: number[] = [w.clock.now - birth];
    let seen = 1;
    assert.equal(w.localJobs.length, 1);
    for (let t = 1; t <= 950; t++) {
      w.clock.now = birth + t;
      await w.scheduler.runUntilIdle();
      if (w.localJobs.length > seen) {
        seen = w.localJobs.length;
        times.push(t);
      }
    }
    assert.deepEqual(times, [0, 100, 400, 900]);
    const m = await w.queue.read(id);
    assert.equal(m?.recipients[0]?.status, 'pending');
    assert.equal(m?.recipients[0]?.nextAttempt, birth + 1600);
    assert.equal(m?.recipients[0]?.attempts, 4);
  } finally {
    await w.close();
  }
});

void test('remote retries at birth + (20k)^2: 0, 400, 1600', async () => {
  const w = await makeWorld({ remote: remoteDefer });
  try {
    await w.scheduler.start();
    const birth = w.clock.now;
    await w.inject('a@origin.test', ['x@remote.test']);
    await w.scheduler.runUntilIdle();
    const times: number[] = [0];
    for (let t = 10; t <= 1700; t += 10) {
      w.clock.now = birth + t;
      const before = w.remoteJobs.length;
      await w.scheduler.runUntilIdle();
      if (w.remoteJobs.length > before) times.push(t);
    }
    assert.deepEqual(times, [0, 400, 1600]);
    const delivery = w.logger.events.find((e) => e.name === 'delivery');
    assert.equal(delivery?.fields['code'], '4.4.1', "the report's (#4.4.1) is also a field of the delivery event");
  } finally {
    await w.close();
  }
});

void test('queuelifetime: the next attempt after expiry turns a deferral into a failure with the extra line (bn-006)', async () => {
  const w = await makeWorld({
    local: defer,
    remote: remoteDefer,
    control: { queuelifetime: '2\n', bounceformat: 'qsbmf\n' },
  });
  try {
    await w.scheduler.start();
    const id = await w.inject('sender@origin.test', ['qoalice@local.test']);
    await w.scheduler.runUntilIdle();
    assert.equal((await w.byOrigin('bounce')).length, 0);
    w.clock.advance(3);
    await w.scheduler.runUntilIdle(); // not due yet: retry is at birth + 100
    assert.equal(w.localJobs.length, 1);
    w.scheduler.flush(); // SIGALRM
    await w.scheduler.runUntilIdle();
    assert.equal(w.localJobs.length, 2);
    assert.ok(w.logger.has('delivery', { delivery: 2, result: 'failure', report: WRITABLE + TOO_LONG, code: '4.7.0' }));
    assert.equal(await w.queue.read(id), undefined);
    const [b] = await w.byOrigin('bounce', id);
    assert.ok(b);
    assert.ok(w.text(b.id).includes(`<qoalice@local.test>:\n${WRITABLE}${TOO_LONG}\n--- Below this line`));
  } finally {
    await w.close();
  }
});

void test('one bounce, listing every failure, only after the last deferral resolves (bn-001, bn-009)', async () => {
  const w = await makeWorld({
    control: { bounceformat: 'qsbmf\n' },
    remote: remoteDefer,
    local: (job, n): LocalResult => {
      if (job.ext === 'bad1' || job.ext === 'bad2') return { result: 'failure', report: NOSUCH };
      if (job.ext === 'slow') return n === 1 ? defer() : { result: 'failure', report: 'giving up\n' };
      return { result: 'success', report: 'did 1+0+0\n' };
    },
  });
  try {
    await w.scheduler.start();
    const id = await w.inject('sender@origin.test', [
      'bad1@local.test',
      'slow@local.test',
      'ok@local.test',
      'bad2@local.test',
    ]);
    await w.scheduler.runUntilIdle();
    assert.equal((await w.byOrigin('bounce')).length, 0, 'no bounce while a recipient is deferred');
    assert.ok(await w.queue.read(id));
    w.clock.advance(100);
    await w.scheduler.runUntilIdle();
    assert.equal(await w.queue.read(id), undefined);
    const bounces = await w.byOrigin('bounce', id);
    assert.equal(bounces.length, 1);
    const b = bounces[0];
    assert.ok(b);
    assert.equal(b.sender, '');
    assert.deepEqual(
      b.recipients.map((r) => r.original),
      ['sender@origin.test'],
    );
    const text = w.text(b.id);
    for (const p of [
      `<bad1@local.test>:\n${NOSUCH}\n`,
      '<slow@local.test>:\ngiving up\n\n',
      `<bad2@local.test>:\n${NOSUCH}\n`,
    ]) {
      assert.ok(text.includes(p), p);
    }
    assert.ok(!text.includes('<ok@local.test>'));
    const bounced = w.logger.indexOf('bounce', { msg: id, qp: 1 });
    assert.ok(bounced >= 0 && bounced < w.logger.indexOf('end', { msg: id }));
  } finally {
    await w.close();
  }
});

void test('double bounce: empty sender -> from #@[] to doublebounceto@doublebouncehost (bn-004)', async () => {
  const w = await makeWorld({
    control: { doublebounceto: 'dbl\n', doublebouncehost: 'remote.test\n', bounceformat: 'qsbmf\n' },
    remote: remoteDefer,
    local: () => ({ result: 'failure', report: NOSUCH }),
  });
  try {
    await w.scheduler.start();
    const id = await w.inject('', ['nosuch@local.test']);
    await w.scheduler.runUntilIdle();
    const [b] = await w.byOrigin('bounce', id);
    assert.ok(b);
    assert.equal(b.sender, '#@[]');
    assert.deepEqual(
      b.recipients.map((r) => r.original),
      ['dbl@remote.test'],
    );
    const text = w.text(b.id);
    assert.ok(text.includes('To: dbl@remote.test\n'));
    assert.ok(
      text.includes(
        'I tried to deliver a bounce message to this address, but the bounce bounced!\n\n<nosuch@local.test>:\n',
      ),
    );
    assert.ok(text.includes('--- Below this line is the original bounce.\n\nReturn-Path: <>\nReceived: (qmail '));
    // The double bounce goes out remotely (to remote.test) with its own envelope.
    assert.deepEqual(
      w.remoteJobs.map((j) => [j.sender, j.recipient]),
      [['#@[]', 'dbl@remote.test']],
    );
  } finally {
    await w.close();
  }
});

void test('triple bounce: a failed double bounce is discarded (bn-005)', async () => {
  const w = await makeWorld({ local: () => ({ result: 'failure', report: NOSUCH }) });
  try {
    await w.scheduler.start();
    const id = await w.inject('#@[]', ['nosuch@local.test']);
    await w.scheduler.runUntilIdle();
    assert.equal((await w.all()).length, 0);
    assert.ok(w.logger.has('triple_bounce', { msg: id }));
    assert.ok(!w.logger.has('bounce'));
    assert.ok(w.logger.has('end', { msg: id }));
  } finally {
    await w.close();
  }
});

void test('VERP: PRE@HOST-@[] + box@dom -> PREbox=dom@HOST per recipient; the bounce goes to PRE@HOST (bn-007)', async () => {
  const w = await makeWorld({
    control: { bounceformat: 'qsbmf\n' },
    local: () => ({ result: 'failure', report: NOSUCH }),
    remote: (j) => (j.recipient === 'friend@remote.test' ? { result: 'success', report: 'ok\n' } : remoteDefer()),
  });
  try {
    await w.scheduler.start();
    const id = await w.inject('owner-@origin.test-@[]', ['friend@remote.test', 'nosuch@local.test']);
    await w.scheduler.runUntilIdle();
    assert.equal(w.remoteJobs[0]?.sender, 'owner-friend=remote.test@origin.test');
    assert.equal(w.localJobs[0]?.sender, 'owner-nosuch=local.test@origin.test');
    const [b] = await w.byOrigin('bounce', id);
    assert.ok(b);
    assert.equal(b.sender, '');
    assert.deepEqual(
      b.recipients.map((r) => r.original),
      ['owner-@origin.test'],
    );
    assert.ok(w.text(b.id).includes('Return-Path: <owner-@origin.test>\n'));
  } finally {
    await w.close();
  }
});

void test('a virtual prefix is removed from the failed address in the bounce (vd-012)', async () => {
  const w = await makeWorld({
    control: { virtualdomains: 'virt.test:vdom\n', bounceformat: 'qsbmf\n' },
    remote: remoteDefer,
    local: () => ({ result: 'failure', report: NOSUCH }),
  });
  try {
    await w.scheduler.start();
    const id = await w.inject('s@origin.test', ['Joe@virt.test']);
    await w.scheduler.runUntilIdle();
    assert.equal(w.localJobs[0]?.local, 'vdom-Joe');
    assert.ok(w.logger.has('start', { delivery: 1, msg: id, channel: 'local', to: 'vdom-Joe@virt.test' }));
    const [b] = await w.byOrigin('bounce', id);
    assert.ok(b);
    assert.ok(w.text(b.id).includes(`\n<Joe@virt.test>:\n${NOSUCH}\n`));
  } finally {
    await w.close();
  }
});

void test('empty local part in a local domain: success with an empty report, nothing delivered (loc-017)', async () => {
  const w = await makeWorld();
  try {
    await w.scheduler.start();
    const id = await w.inject('s@origin.test', ['@local.test']);
    await w.scheduler.runUntilIdle();
    assert.equal(w.localJobs.length, 0);
    assert.ok(w.logger.has('delivery', { delivery: 1, result: 'success', report: '' }));
    assert.equal(await w.queue.read(id), undefined);
  } finally {
    await w.close();
  }
});

void test('a forward is queued (DTLINE + original, meta forward) before the delivery counts, report gets qp', async () => {
  const w = await makeWorld({
    local: (job): LocalResult =>
      job.ext === 'fwd'
        ? {
            result: 'success',
            report: 'did 0+1+0\n',
            forward: {
              sender: 'new@s.test',
              recipients: ['x@remote.test'],
              prepend: 'Delivered-To: fwd@local.test\n',
              injector: { kind: 'alias' },
            },
          }
        : { result: 'success', report: 'did 1+0+0\n' },
  });
  try {
    await w.scheduler.start();
    const id = await w.inject('s@origin.test', ['fwd@local.test']);
    await w.scheduler.runUntilIdle();
    assert.ok(w.logger.has('delivery', { delivery: 1, result: 'success', report: 'did 0+1+0\nqp 1\n' }));
    assert.equal(w.remoteJobs.length, 1);
    assert.equal(w.remoteJobs[0]?.sender, 'new@s.test');
    const fwdEvent = w.logger.events.find((e) => e.name === 'forward');
    assert.equal(fwdEvent?.fields['msg'], id);
    assert.equal((await w.all()).length, 0);
  } finally {
    await w.close();
  }
});

void test('forward content and meta while still queued', async () => {
  const w = await makeWorld({
    remote: remoteDefer,
    local: (): LocalResult => ({
      result: 'success',
      report: 'did 0+1+0\n',
      forward: {
        sender: '',
        recipients: ['x@remote.test'],
        prepend: 'Delivered-To: fwd@local.test\n',
        injector: { kind: 'alias' },
      },
    }),
  });
  try {
    await w.scheduler.start();
    const id = await w.inject('s@origin.test', ['fwd@local.test']);
    await w.scheduler.runUntilIdle();
    const [f] = await w.byOrigin('forward', id);
    assert.ok(f);
    assert.equal(f.meta['via'], 'fwd@local.test');
    assert.equal(f.sender, '');
    const text = w.text(f.id);
    assert.match(
      text,
      /^Received: \(qmail \d+ invoked by alias\); .*\nDelivered-To: fwd@local\.test\nReceived: \(qmail \d+ invoked by uid 0\); /,
    );
    assert.ok(text.endsWith(DATA));
  } finally {
    await w.close();
  }
});

void test('concurrencylocal caps parallel deliveries; deliveries of one message run in parallel', async () => {
  let running = 0;
  let max = 0;
  const release: Array<() => void> = [];
  const w = await makeWorld({
    control: { concurrencylocal: '2\n' },
    local: async (): Promise<LocalResult> => {
      running++;
      max = Math.max(max, running);
      await new Promise<void>((r) => release.push(r));
      running--;
      return { result: 'success', report: 'did 1+0+0\n' };
    },
  });
  try {
    await w.scheduler.start();
    await w.inject('s@origin.test', ['a@local.test', 'b@local.test', 'c@local.test', 'd@local.test', 'e@local.test']);
    const idle = w.scheduler.runUntilIdle();
    const pump = setInterval(() => release.shift()?.(), 5);
    await idle;
    clearInterval(pump);
    assert.equal(max, 2);
    assert.equal(w.localJobs.length, 5);
  } finally {
    await w.close();
  }
});

void test('restart: state lives in the queue; a delivery in progress is still todo on disk; pending waits for its time', async () => {
  let releaseFirst: (() => void) | undefined;
  const w = await makeWorld({
    local: async (_job, n): Promise<LocalResult> => {
      if (n === 1) await new Promise<void>((r) => (releaseFirst = r));
      return defer();
    },
  });
  try {
    await w.scheduler.start();
    const birth = w.clock.now;
    const id = await w.inject('s@origin.test', ['joe@local.test']);
    const idle = w.scheduler.runUntilIdle();
    while (releaseFirst === undefined) await new Promise((r) => setImmediate(r));
    const mid = await w.queue.read(id);
    releaseFirst();
    assert.equal(mid?.recipients[0]?.status, 'todo', 'a crash now repeats the delivery');
    // local-only routing is written with the first state (routing.ts): a crash now routes it again at restart
    assert.equal(mid?.recipients[0]?.channel, undefined);
    await idle;
    await w.scheduler.stop();
    w.restart();
    await w.scheduler.start();
    await w.scheduler.runUntilIdle();
    assert.equal(w.localJobs.length, 1, 'the deferred recipient waits for birth + 100');
    assert.equal(
      (await w.queue.read(id))?.recipients[0]?.address,
      'joe@local.test',
      'routed on disk with the deferral',
    );
    w.clock.now = birth + 100;
    await w.scheduler.runUntilIdle();
    assert.equal(w.localJobs.length, 2);
    assert.equal(w.logger.events.filter((e) => e.name === 'new').length, 1, 'routed once');
  } finally {
    await w.close();
  }
});

void test('reload re-reads virtualdomains for new messages (vd-021)', async () => {
  const w = await makeWorld();
  try {
    await w.scheduler.start();
    await w.inject('s@origin.test', ['joe@virt.test']);
    await w.scheduler.runUntilIdle();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${w.root}/control/virtualdomains`, 'virt.test:vdom\n');
    await w.inject('s@origin.test', ['joe@virt.test']);
    await w.scheduler.runUntilIdle();
    w.scheduler.reload();
    await w.inject('s@origin.test', ['joe@virt.test']);
    await w.scheduler.runUntilIdle();
    assert.deepEqual(
      w.remoteJobs.map((j) => j.recipient),
      ['joe@virt.test', 'joe@virt.test'],
    );
    assert.deepEqual(
      w.localJobs.map((j) => j.local),
      ['vdom-joe'],
    );
  } finally {
    await w.close();
  }
});

void test('start refuses without control/locals and control/me (loc-020)', async () => {
  const w = await makeWorld();
  try {
    const { rmSync } = await import('node:fs');
    rmSync(`${w.root}/control/me`);
    rmSync(`${w.root}/control/locals`);
    w.restart();
    await assert.rejects(w.scheduler.start());
    assert.ok(w.logger.has('alert'));
  } finally {
    await w.close();
  }
});

void test('a flush wake-up for one domain retries only that domain; a plain flush retries all', async () => {
  const w = await makeWorld({ remote: remoteDefer });
  try {
    await w.scheduler.start();
    await w.inject('a@origin.test', ['x@a.test']);
    await w.inject('a@origin.test', ['y@b.test']);
    await w.scheduler.runUntilIdle();
    const tries = (d: string): number => w.remoteJobs.filter((j) => j.recipient.endsWith(`@${d}`)).length;
    assert.deepEqual([tries('a.test'), tries('b.test')], [1, 1]);
    w.clock.advance(10); // both deferred until birth + 400
    // As ETRN or `quail queue flush --domain a.test` sends it: over the wake-up sockets.
    assert.equal(await w.queue.triggerCounted('flush', 'a.test'), 1);
    await waitFor(async () => {
      await w.scheduler.runUntilIdle();
      return tries('a.test') === 2;
    }, 10_000);
    assert.equal(tries('b.test'), 1, 'b.test was flushed with a.test');
    assert.equal(await w.queue.triggerCounted('flush'), 1);
    await waitFor(async () => {
      await w.scheduler.runUntilIdle();
      return tries('b.test') === 2;
    }, 10_000);
    assert.equal(tries('a.test'), 3);
  } finally {
    await w.close();
  }
});

void test('a wake-up naming a message: delivered without a listing of env/; unnamed and unwoken, it waits for a scan', async () => {
  const w = await makeWorld();
  // the injector's own handle, as the SMTP process has it: no wake-up sockets, only the note
  const injector = await openQueue(w.root, { clock: () => w.clock.now * 1000, wake: false });
  try {
    await w.scheduler.start();
    const list = w.queue.ids.bind(w.queue);
    let listings = 0;
    w.queue.ids = (): Promise<QueueId[]> => {
      listings++;
      return list();
    };
    const inject = (to: string): Promise<QueueId> =>
      injector.inject({
        sender: 'a@origin.test',
        recipients: [to],
        data: Buffer.from(DATA),
        injector: { kind: 'uid', uid: 0 },
      });
    const quiet = await inject('joe@local.test');
    await w.scheduler.tick();
    assert.equal(w.localJobs.length, 0, 'not named, no wake-up, no scan due: not seen yet');
    const named = await inject('ann@local.test');
    w.queue.wakeWatchers('new', named); // what quail start's send child does with root's note
    await waitFor(() => w.localJobs.length === 1);
    assert.equal(w.localJobs[0]?.local, 'ann');
    assert.equal(listings, 0, 'read by its id: env/ was not listed');
    // a note for a message that is not queued (gone, or never there) changes nothing
    w.queue.wakeWatchers('new', '000000001-aaaaaaaaaaaa' as QueueId);
    await w.scheduler.tick();
    assert.equal(w.localJobs.length, 1);
    // the next scan finds the one nobody named
    await w.scheduler.runUntilIdle();
    assert.deepEqual(w.localJobs.map((j) => j.local).sort(), ['ann', 'joe']);
    assert.ok(listings >= 1);
    assert.equal(await w.queue.read(quiet), undefined, 'delivered and removed');
  } finally {
    injector.close();
    await w.close();
  }
});
