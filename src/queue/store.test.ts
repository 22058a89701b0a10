// Tests of the queue store: ids, Received line, inject/read/update/remove/hold, concurrency, wake-ups.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { QuailError } from '../core/index.js';
import { type FileQueue, type QueueId, isQueueId, openQueue, receivedLine, toQueueId, idTime } from './index.js';

const CLOCK = Date.UTC(2026, 10, 22, 3, 1, 2); // 22 Nov 2026 03:01:02 UTC

async function fresh(clock: () => number = () => CLOCK): Promise<{ root: string; q: FileQueue; done: () => void }> {
  const root = mkdtempSync(join(tmpdir(), 'quail-queue-'));
  const q = await openQueue(root, { clock });
  return {
    root,
    q,
    done: () => {
      q.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

void test('receivedLine: one per injector, none for network (D.7.4, F.6)', () => {
  assert.equal(
    receivedLine({ kind: 'uid', uid: 42001 }, 77, CLOCK),
    'Received: (qmail 77 invoked by uid 42001); 22 Nov 2026 03:01:02 -0000\n',
  );
  assert.equal(
    receivedLine({ kind: 'alias' }, 5, CLOCK),
    'Received: (qmail 5 invoked by alias); 22 Nov 2026 03:01:02 -0000\n',
  );
  assert.equal(
    receivedLine({ kind: 'bounce' }, 5, CLOCK),
    'Received: (qmail 5 invoked for bounce); 22 Nov 2026 03:01:02 -0000\n',
  );
  assert.equal(receivedLine({ kind: 'network' }, 5, CLOCK), '');
});

void test('ids: portable shape, time-ordered, unique, path-safe', async () => {
  const { q, done } = await fresh();
  try {
    const a = await q.inject({
      sender: 'a@x',
      recipients: ['b@y'],
      data: Buffer.from('x\n'),
      injector: { kind: 'network' },
    });
    assert.ok(isQueueId(a));
    assert.equal(idTime(a), CLOCK);
    assert.equal(toQueueId(a), a);
    for (const bad of ['../etc/passwd', '', '123', `${a}/`, a.toUpperCase()]) {
      assert.throws(
        () => toQueueId(bad),
        (e: unknown) => e instanceof QuailError && !e.temporary,
      );
    }
  } finally {
    done();
  }
  const seen = new Set<string>();
  let t = 1_000_000;
  const later = await fresh(() => (t += 1000));
  try {
    const ids: QueueId[] = [];
    for (let i = 0; i < 20; i++)
      ids.push(
        await later.q.inject({
          sender: '',
          recipients: ['r@x'],
          data: Buffer.from(`${i}\n`),
          injector: { kind: 'bounce' },
        }),
      );
    for (const id of ids) seen.add(id);
    assert.equal(seen.size, 20);
    assert.deepEqual(await later.q.ids(), ids); // oldest first
  } finally {
    later.done();
  }
});

void test('inject: streamed data behind the Received line; envelope fields; file written once', async () => {
  const { q, done } = await fresh();
  try {
    const body = 'Subject: hi\n\n' + 'line of text\n'.repeat(20000);
    const chunks = body.match(/[\s\S]{1,999}/g) ?? [];
    const id = await q.inject({
      sender: 'alice@example.com',
      recipients: ['bob@example.net', 'carol@example.org'],
      data: Readable.from(chunks.map((c) => Buffer.from(c))),
      injector: { kind: 'uid', uid: 42001 },
      meta: { origin: 'forward', parent: 'p1' },
    });
    const file = readFileSync(q.messagePath(id), 'latin1');
    const want = `Received: (qmail ${process.pid} invoked by uid 42001); 22 Nov 2026 03:01:02 -0000\n${body}`;
    assert.equal(file, want);
    const m = await q.read(id);
    assert.ok(m);
    assert.equal(m.birth, Math.floor(CLOCK / 1000));
    assert.equal(m.sender, 'alice@example.com');
    assert.equal(m.size, Buffer.byteLength(want));
    assert.equal(m.held, false);
    assert.equal(m.queueName, 'default');
    assert.deepEqual(m.meta, { origin: 'forward', parent: 'p1' });
    assert.deepEqual(m.recipients, [
      { original: 'bob@example.net', status: 'todo', attempts: 0 },
      { original: 'carol@example.org', status: 'todo', attempts: 0 },
    ]);
    const env = await q.envelope(id);
    assert.equal(env?.sha256, createHash('sha256').update(want, 'latin1').digest('hex'));
    assert.deepEqual(readdirSync(join(q.dir, 'tmp')), []);
    assert.equal(await q.read('0000000aa-aaaaaaaaaaaa' as QueueId), undefined);
  } finally {
    done();
  }
});

void test('inject: a failing data stream is temporary and leaves nothing', async () => {
  const { q, done } = await fresh();
  try {
    const bad = new Readable({
      read() {
        this.push(Buffer.from('partial\n'));
        this.destroy(new Error('client went away'));
      },
    });
    await assert.rejects(
      q.inject({ sender: 'a@x', recipients: ['b@y'], data: bad, injector: { kind: 'network' } }),
      (e: unknown) => e instanceof QuailError && e.temporary && /client went away/.test(e.message),
    );
    for (const d of ['tmp', 'mess', 'env']) assert.deepEqual(readdirSync(join(q.dir, d)), [], d);
  } finally {
    done();
  }
});

void test('updateRecipients, setHeld, remove: state transitions on disk', async () => {
  const { q, root, done } = await fresh();
  try {
    const id = await q.inject({
      sender: 's@x',
      recipients: ['a@y', 'b@z'],
      data: Buffer.from('hi\n'),
      injector: { kind: 'alias' },
    });
    await q.updateRecipients(id, [
      {
        original: 'a@y',
        channel: 'remote',
        address: 'a@y',
        status: 'pending',
        attempts: 1,
        nextAttempt: 123,
        lastResult: 'deferral',
        lastReport: 'Connection refused. (#4.4.1)',
      },
      {
        original: 'b@z',
        channel: 'local',
        address: 'z-b@z',
        status: 'done',
        attempts: 1,
        lastResult: 'success',
        lastReport: 'did 1+0+0',
      },
    ]);
    await q.setHeld(id, true);
    // a second store (another process's view) sees the durable state
    const other = await openQueue(root, { create: false });
    const m = await other.read(id);
    assert.equal(m?.held, true);
    assert.equal(m?.recipients[0]?.status, 'pending');
    assert.equal(m?.recipients[0]?.nextAttempt, 123);
    assert.equal(m?.recipients[1]?.address, 'z-b@z');
    await q.setHeld(id, false);
    assert.equal((await other.read(id))?.held, false);
    assert.equal((await other.read(id))?.recipients[1]?.status, 'done'); // hold kept the recipients
    await q.remove(id);
    assert.equal(await other.read(id), undefined);
    assert.deepEqual(await other.ids(), []);
    for (const d of ['tmp', 'mess', 'env', 'trash']) assert.deepEqual(readdirSync(join(q.dir, d)), [], d);
    await q.remove(id); // idempotent
    await assert.rejects(q.setHeld(id, true), (e: unknown) => e instanceof QuailError && !e.temporary);
    await assert.rejects(q.updateRecipients(id, []), (e: unknown) => e instanceof QuailError && !e.temporary);
  } finally {
    done();
  }
});

void test('concurrent updates of one id in a process are serialized (no lost update)', async () => {
  const { q, done } = await fresh();
  try {
    const id = await q.inject({
      sender: 's@x',
      recipients: ['a@y'],
      data: Buffer.from('hi\n'),
      injector: { kind: 'network' },
    });
    await Promise.all([
      q.setHeld(id, true),
      q.updateRecipients(id, [{ original: 'a@y', status: 'pending', attempts: 3 }]),
    ]);
    const m = await q.read(id);
    assert.equal(m?.held, true);
    assert.equal(m?.recipients[0]?.attempts, 3);
  } finally {
    done();
  }
});

void test('hundreds of parallel injects: all readable and intact; directory fsyncs are grouped', async () => {
  const { q, done } = await fresh();
  try {
    const N = 300;
    const bodies = Array.from({ length: N }, (_, i) => `Subject: n${i}\n\n${'x'.repeat(i * 37)}\n`);
    const ids = await Promise.all(
      bodies.map((b, i) =>
        q.inject({
          sender: `s${i}@x`,
          recipients: [`r${i}@y`],
          data: Readable.from([Buffer.from(b)]),
          injector: { kind: 'network' },
        }),
      ),
    );
    assert.equal(new Set(ids).size, N);
    assert.equal((await q.ids()).length, N);
    for (let i = 0; i < N; i++) {
      const id = ids[i] as QueueId;
      assert.equal(readFileSync(q.messagePath(id), 'latin1'), bodies[i]);
      assert.equal((await q.read(id))?.sender, `s${i}@x`);
    }
    // one fsync per commit per directory would be 2N; grouping must do far fewer
    assert.ok(q.dirSyncs() < N, `dir fsyncs ${q.dirSyncs()} for ${N} commits`);
    const rep = await q.recover({ verify: true });
    assert.equal(rep.kept, N);
    assert.deepEqual(rep.corrupt, []);
  } finally {
    done();
  }
});

void test('watch/trigger: flush with a domain reaches a watcher of another store; inject wakes it with new', async () => {
  const { q, root, done } = await fresh();
  const other = await openQueue(root, { create: false });
  try {
    const got: string[] = [];
    let wake: () => void = () => undefined;
    const unsub = q.watch((what, domain) => {
      got.push(domain ? `${what} ${domain}` : what);
      wake();
    });
    const until = (want: string): Promise<void> =>
      new Promise((res) => {
        const check = (): void => {
          if (got.includes(want)) res();
        };
        wake = check;
        check();
      });
    assert.equal(await other.triggerCounted('flush', 'example.com'), 1);
    await until('flush example.com');
    await other.inject({ sender: 'a@x', recipients: ['b@y'], data: Buffer.from('x\n'), injector: { kind: 'network' } });
    await until('new');
    unsub();
    assert.deepEqual(readdirSync(join(q.dir, 'wake')), []);
    assert.equal(await other.triggerCounted('flush'), 0); // nobody listening: lossy, no error
  } finally {
    other.close();
    done();
  }
});

void test('openQueue create:false: a missing queue is a clear temporary error', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-queue-'));
  try {
    await assert.rejects(
      openQueue(join(root, 'nope'), { create: false }),
      (e: unknown) => e instanceof QuailError && e.temporary && /no queue at .*quail init/.test(e.message),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('fsyncs: an inject syncs mess/ and env/ once each (together); a remove syncs no directory (QUEUE.md)', async () => {
  const { q, done } = await fresh();
  try {
    const id = await q.inject({
      sender: 's@x',
      recipients: ['a@y'],
      data: Buffer.from('hi\n'),
      injector: { kind: 'network' },
    });
    assert.equal(q.dirSyncs(), 2);
    assert.ok(existsSync(q.messagePath(id)));
    await q.remove(id);
    assert.equal(
      q.dirSyncs(),
      2,
      'removal is not synced: a crash may only undo it (a second delivery), never lose mail',
    );
    for (const d of ['tmp', 'mess', 'env', 'trash']) assert.deepEqual(readdirSync(join(q.dir, d)), [], d);
  } finally {
    done();
  }
});
