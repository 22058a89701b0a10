// Spare files: a removed message's files are taken by the next inject (no new inode, no block freed), never more than
// MAX_SPARES are kept, a file with another name is never reused, and nothing of an old message leaks into a new one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { linkSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { type FileQueue, type QueueId, openQueue } from './index.js';
import { MAX_SPARES } from './spare.js';

const inject = (q: FileQueue, body: string, recipients = ['r@y']): Promise<QueueId> =>
  q.inject({
    sender: 's@x',
    recipients,
    data: Buffer.from(`Subject: t\n\n${body}\n`),
    injector: { kind: 'uid', uid: 7 },
  });

void test('spare files: removal keeps the two files as they are; the next inject takes them, writes over them and cuts them to the new message', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-spare-'));
  try {
    const q = await openQueue(dir);
    const spare = join(dir, 'queue', 'spare');
    // a long message with a long envelope, then a short one with a short envelope: both old tails must go
    const old = await inject(
      q,
      'x'.repeat(50_000),
      Array.from({ length: 40 }, (_, i) => `recipient-${i}@example.test`),
    );
    const sizes = [statSync(join(dir, 'queue', 'env', old)).size, statSync(q.messagePath(old)).size];
    await q.remove(old);
    const kept = readdirSync(spare).sort();
    assert.deepEqual(kept, [`${old}.${sizes[0]}.env`, `${old}.${sizes[1]}.mess`], 'named with their lengths');
    assert.deepEqual(
      kept.map((n) => statSync(join(spare, n)).size),
      sizes,
      'kept as they were: no block freed at removal',
    );
    const inodes = new Set(kept.map((n) => statSync(join(spare, n)).ino));

    const now = await inject(q, 'fresh');
    assert.deepEqual(readdirSync(spare), [], 'both spares taken');
    const mess = q.messagePath(now);
    const envPath = join(dir, 'queue', 'env', now);
    assert.ok(inodes.has(statSync(mess).ino), 'the message is in a spare inode');
    assert.ok(inodes.has(statSync(envPath).ino), 'the envelope is in a spare inode');
    const text = readFileSync(mess, 'latin1');
    assert.match(text, /\n\nfresh\n$/);
    assert.doesNotMatch(text, /xxx/, 'nothing of the old message');
    const m = await q.read(now);
    assert.equal(m?.size, statSync(mess).size);
    assert.deepEqual(
      m?.recipients.map((r) => r.original),
      ['r@y'],
      'the envelope is the new one, whole',
    );
    assert.doesNotMatch(readFileSync(envPath, 'latin1'), /recipient-/, 'nothing of the old envelope');
    // the checksums hold and recovery leaves spare/ alone
    const rep = await q.recover({ verify: true });
    assert.equal(rep.kept, 1);
    assert.deepEqual(rep.corrupt, []);
    assert.deepEqual(readdirSync(join(dir, 'queue', 'tmp')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('spare files: at most MAX_SPARES kept; a file with a second name is unlinked, never reused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-spare-'));
  try {
    const q = await openQueue(dir);
    const spare = join(dir, 'queue', 'spare');
    const ids: QueueId[] = [];
    for (let i = 0; i < MAX_SPARES / 2 + 40; i++) ids.push(await inject(q, `m${i}`));
    for (const id of ids) await q.remove(id);
    const n = readdirSync(spare).length;
    assert.ok(n <= MAX_SPARES, `${n} spares kept`);
    assert.ok(n >= MAX_SPARES - 2, `${n} spares kept: the cap, not fewer`);
    assert.deepEqual(readdirSync(join(dir, 'queue', 'mess')), []);
    assert.deepEqual(readdirSync(join(dir, 'queue', 'trash')), []);

    // a message file that also has a name outside the queue keeps its content there
    const q2dir = mkdtempSync(join(tmpdir(), 'quail-spare2-'));
    try {
      const q2 = await openQueue(q2dir);
      const id = await inject(q2, 'keep me');
      const elsewhere = join(q2dir, 'elsewhere');
      linkSync(q2.messagePath(id), elsewhere);
      await q2.remove(id);
      assert.match(readFileSync(elsewhere, 'latin1'), /keep me/);
      assert.match(readdirSync(join(q2dir, 'queue', 'spare')).join(), new RegExp(`^${id}\\.\\d+\\.env$`));
    } finally {
      rmSync(q2dir, { recursive: true, force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('spare files: the message spare goes straight to mess/ once the envelope spare names the inject in tmp/; a crash there is undone by recovery', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-spare-'));
  try {
    const q = await openQueue(dir);
    const sub = (d: string): string[] => readdirSync(join(dir, 'queue', d)).sort();
    for (const id of [await inject(q, 'one'), await inject(q, 'two')]) await q.remove(id);
    assert.equal(sub('spare').length, 4);

    // an inject whose data stops halfway: what is on disk while it waits is what a crash at that moment leaves
    let go: () => void = () => undefined;
    const resume = new Promise<void>((r) => (go = r));
    let halfway: () => void = () => undefined;
    const atHalf = new Promise<void>((r) => (halfway = r));
    const data = Readable.from(
      (async function* () {
        yield Buffer.from('Subject: paused\n\n');
        halfway();
        await resume;
        yield Buffer.from('rest\n');
      })(),
    );
    const pending = q.inject({ sender: 's@x', recipients: ['r@y'], data, injector: { kind: 'uid', uid: 7 } });
    await atHalf;
    const [placed, ...more] = sub('mess');
    assert.ok(placed !== undefined && more.length === 0, 'the message is in mess/ already');
    assert.deepEqual(sub('env'), [], 'not committed');
    assert.deepEqual(
      sub('tmp'),
      [`${placed}.${process.pid}.env`],
      'its envelope names the inject in tmp/; no tmp/ message',
    );
    assert.equal(sub('spare').length, 2, 'both spares taken');

    // recovery by another store of this process sees a writer that is not its own: the state R3 of a crashed inject
    const other = await openQueue(dir);
    const rep = await other.recover();
    assert.deepEqual(rep.undone, [placed]);
    assert.deepEqual(sub('mess'), [], 'undone, not moved aside');
    assert.deepEqual(sub('corrupt'), []);
    assert.deepEqual(sub('tmp'), []);
    go();
    await assert.rejects(pending, /cannot/);
    assert.deepEqual([sub('mess'), sub('env')], [[], []], 'the failed commit leaves nothing');

    // and an inject that is not interrupted commits whole from spares
    const id = await inject(q, 'three');
    assert.deepEqual(sub('mess'), [id]);
    assert.match(readFileSync(q.messagePath(id), 'latin1'), /\n\nthree\n$/);
    assert.equal((await q.recover({ verify: true })).kept, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('spare files: no ftruncate where nothing lies past what was written (a new file, a spare no longer than the new content); a longer spare, or one whose name records no length, is cut', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-spare-'));
  const real = fs.ftruncateSync;
  let cuts = 0;
  fs.ftruncateSync = (fd: number, len?: number): void => {
    cuts++;
    real(fd, len);
  };
  syncBuiltinESMExports();
  try {
    const q = await openQueue(dir);
    const spare = join(dir, 'queue', 'spare');
    const short = await inject(q, 'short');
    assert.equal(cuts, 0, 'new files: nothing to cut');
    await q.remove(short);
    const long = await inject(q, 'y'.repeat(5_000), ['r@y', 'second@y']);
    assert.equal(cuts, 0, 'spares no longer than the new message and envelope');
    assert.doesNotMatch(readFileSync(q.messagePath(long), 'latin1'), /short/);
    await q.remove(long);
    const again = await inject(q, 'short again');
    assert.equal(cuts, 2, 'longer spares are cut, both');
    assert.match(readFileSync(q.messagePath(again), 'latin1'), /\n\nshort again\n$/);
    assert.equal((await q.read(again))?.size, statSync(q.messagePath(again)).size);
    await q.remove(again);
    // names without a length (kept by an older quail) are always cut, even when the new content is longer
    for (const n of readdirSync(spare)) renameSync(join(spare, n), join(spare, n.replace(/\.\d+\./, '.')));
    // the store's own list still names them as they were (gone now: skipped); once it has none left it reads spare/,
    // at most every LOOK_AGAIN_MS (spare.ts), and the first inject found spare/ empty a moment ago
    await new Promise((r) => setTimeout(r, 150));
    const before = cuts;
    const longer = await inject(q, 'z'.repeat(9_000));
    assert.equal(cuts - before, 2, 'a length the name does not record is not trusted');
    assert.match(readFileSync(q.messagePath(longer), 'latin1'), /\n\nz{9000}\n$/);
    assert.equal((await q.recover({ verify: true })).kept, 1);
  } finally {
    fs.ftruncateSync = real;
    syncBuiltinESMExports();
    rmSync(dir, { recursive: true, force: true });
  }
});
