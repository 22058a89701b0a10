// The group commit's journal: a power cut after the 250 (files damaged, records intact), torn tails, live writers,
// retirement. The kill -9 side is in crash.test.ts (its journal round).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { type FileQueue, type QueueId, openQueue } from './index.js';
import { SYNCFS_FROM, bootId, encodeRecord, entriesMayBeLost, readRecords, startTime, writerAlive } from './journal.js';
import { waitFor } from '../../test/support/wait.js';

/** A pid that surely belongs to no running process: a child that has exited. */
const DEAD = spawnSync('true').pid;
const LONG = { rotateMs: 600_000, retireMs: 600_000 };
const BOOT = bootId();
/** The boot id of a system that ran before this one (the power cut's). */
const EARLIER = BOOT.startsWith('0') ? '1'.repeat(32) : '0'.repeat(32);

const inject = (q: FileQueue, n: number, size: number): Promise<QueueId> =>
  q.inject({
    sender: `s${n}@example.org`,
    recipients: [`r${n}@example.net`, `t${n}@example.net`],
    data: Buffer.alloc(size, 97 + (n % 26)),
    injector: { kind: 'uid', uid: 0 },
  });

interface Cut {
  root: string;
  ids: QueueId[];
  /** mess/ and env/ bytes of each id as acknowledged (env/ after the update of ids[5]). */
  mess: Map<QueueId, Buffer>;
  env: Map<QueueId, Buffer>;
  removed: QueueId;
  big: QueueId;
  /** Acknowledged, with directory entries that never reached the disk: both, and env/'s only. */
  lost: QueueId[];
}

/**
 * Nine messages acknowledged through the journal (one too large for it), one updated, one removed; then the power
 * is cut: the process "dies" (its segment is renamed to a dead writer's name of an earlier boot), the files whose data
 * the disk never got are damaged, and two messages lose directory entries that never reached it.
 */
async function powerCut(keepJournal: boolean): Promise<Cut> {
  const root = mkdtempSync(join(tmpdir(), 'quail-journal-'));
  const q = await openQueue(root, { journal: LONG });
  const ids: QueueId[] = [];
  for (let n = 0; n < 6; n++) ids.push(await inject(q, n, 100 + n * 1500));
  const big = await inject(q, 6, 300_000);
  const removed = await inject(q, 7, 2000);
  assert.equal(q.dirSyncs(), 2, 'only the large message synced the directories before its 250');
  await q.updateRecipients(ids[5] as QueueId, [
    { original: 'r5@example.net', status: 'done', attempts: 1 },
    { original: 't5@example.net', status: 'todo', attempts: 1 },
  ]);
  await q.remove(removed);
  const lost = [await inject(q, 8, 900), await inject(q, 9, 3000)];
  const mess = new Map<QueueId, Buffer>();
  const env = new Map<QueueId, Buffer>();
  for (const id of [...ids, big, ...lost]) {
    mess.set(id, readFileSync(q.layout.mess(id)));
    env.set(id, readFileSync(q.layout.env(id)));
  }
  const segs = readdirSync(q.layout.sub('journal'));
  assert.equal(segs.length, 1, 'one segment holds the records');
  const records = readRecords(readFileSync(join(q.layout.sub('journal'), segs[0] as string)));
  assert.deepEqual(
    records.map((r) => r.id),
    [...ids, removed, ...lost],
    'every message but the large one has a record',
  );
  assert.ok(segs[0]?.endsWith(`.${BOOT}.jnl`), `the segment's name carries the boot id: ${segs[0]}`);
  for (const s of segs) {
    const from = join(q.layout.sub('journal'), s);
    if (keepJournal) renameSync(from, join(q.layout.sub('journal'), `${DEAD}.0.1.${EARLIER}.jnl`));
    else rmSync(from);
  }
  const [l1, l2] = lost as [QueueId, QueueId];
  rmSync(q.layout.env(l1));
  rmSync(q.layout.mess(l1));
  rmSync(q.layout.env(l2)); // mess/ renamed first reached the disk, env/ did not
  const [a, b, c, d] = ids as [QueueId, QueueId, QueueId, QueueId];
  truncateSync(q.layout.mess(a), 0); // contents never written
  writeFileSync(q.layout.env(b), '\0\0\0\0'); // a block of zeros
  truncateSync(q.layout.mess(c), 0);
  truncateSync(q.layout.env(c), 0);
  writeFileSync(q.layout.env(d), env.get(ids[4] as QueueId) as Buffer); // a spare's old envelope, another id
  writeFileSync(q.layout.mess(d), Buffer.alloc((mess.get(d) as Buffer).length, 0x7a)); // a spare's old bytes
  return { root, ids, mess, env, removed, big, lost };
}

/** Runs `body` on a power cut's aftermath (powerCut), then removes its root. */
async function afterCut(keepJournal: boolean, body: (cut: Cut) => Promise<void>): Promise<void> {
  const cut = await powerCut(keepJournal);
  try {
    await body(cut);
  } finally {
    rmSync(cut.root, { recursive: true, force: true });
  }
}

void test('journal: after a power cut every acknowledged message comes back from its record, with its entries', () =>
  afterCut(true, async (cut) => {
    const q = await openQueue(cut.root, { create: false });
    const rep = await q.recover({ verify: true });
    assert.deepEqual(rep.corrupt, [], 'nothing is lost to corrupt/');
    assert.deepEqual(
      new Set(rep.restored),
      new Set([...cut.ids.slice(0, 4), ...cut.lost, cut.removed]),
      'the four damaged messages, the two whose entries were lost, and the removed one (a duplicate) are restored',
    );
    assert.deepEqual(await q.ids(), [...cut.ids, cut.big, ...cut.lost, cut.removed].sort());
    for (const id of [...cut.ids, cut.big, ...cut.lost]) {
      assert.ok(readFileSync(q.layout.mess(id)).equals(cut.mess.get(id) as Buffer), `mess/${id} as acknowledged`);
      assert.ok(readFileSync(q.layout.env(id)).equals(cut.env.get(id) as Buffer), `env/${id} as acknowledged`);
    }
    const updated = await q.read(cut.ids[5] as QueueId);
    assert.equal(updated?.recipients[0]?.status, 'done', 'a later update of the envelope stands');
    assert.deepEqual(readdirSync(q.layout.sub('journal')), [], 'the settled segment is removed');
    const again = await q.recover({ verify: true });
    assert.deepEqual([again.restored, again.corrupt, again.kept], [[], [], cut.ids.length + 4]);
  }));

void test('journal: within one boot an id missing from env/ was removed; its record is not used', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-journal-'));
  try {
    for (const [n, name] of [`${DEAD}.0.1.${BOOT}.jnl`, `${DEAD}.0.2.jnl`].entries()) {
      const q = await openQueue(root, { journal: LONG });
      const keep = await inject(q, 2 * n, 600);
      await q.remove(await inject(q, 2 * n + 1, 700));
      const [seg] = readdirSync(q.layout.sub('journal'));
      renameSync(join(q.layout.sub('journal'), seg as string), join(q.layout.sub('journal'), name)); // killed
      const rep = await (await openQueue(root, { create: false })).recover({ verify: true });
      assert.deepEqual(rep.restored, [], `${name}: a removal in this boot, or entries synced before the 250`);
      assert.ok((await q.ids()).includes(keep));
      assert.equal((await q.ids()).length, n + 1, `${name}: the removed message stays gone`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('journal: a new writer settles in the background what a killed one left', () =>
  afterCut(true, async (cut) => {
    const q = await openQueue(cut.root, { journal: LONG });
    await waitFor(() => readdirSync(q.layout.sub('journal')).length === 0, 10_000, 'the dead segment settled');
    for (const id of [...cut.ids, ...cut.lost])
      assert.ok(readFileSync(q.layout.mess(id)).equals(cut.mess.get(id) as Buffer), id);
    assert.equal(q.journal?.retireFailures, 0);
  }));

void test('journal: without the segment the same damage goes to corrupt/ (what the journal is for)', () =>
  afterCut(false, async (cut) => {
    const q = await openQueue(cut.root, { create: false });
    const rep = await q.recover({ verify: true });
    assert.deepEqual(rep.restored, []);
    assert.ok(rep.corrupt.length >= 4, `damaged messages moved aside: ${rep.corrupt.join(' ')}`);
  }));

void test('journal: recovery settles an earlier boot’s segments of garbage and a torn tail without harm', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-journal-'));
  try {
    const q = await openQueue(root, { journal: LONG });
    const id = await inject(q, 1, 1200);
    const jdir = q.layout.sub('journal');
    const [seg] = readdirSync(jdir);
    const whole = readFileSync(join(jdir, seg as string));
    const mess = readFileSync(q.layout.mess(id));
    rmSync(join(jdir, seg as string));
    rmSync(q.layout.env(id)); // its entries lost to the power cut
    rmSync(q.layout.mess(id));
    writeFileSync(
      join(jdir, `${DEAD}.0.7.${EARLIER}.jnl`),
      Buffer.concat([whole, Buffer.from('QJ1 garbage\n'), whole]),
    );
    writeFileSync(join(jdir, `${DEAD}.0.8.${EARLIER}.jnl`), Buffer.alloc(8192)); // zeros
    writeFileSync(join(jdir, `${DEAD}.0.9.${EARLIER}.jnl`), 'QJ1 00000001a-aaaaaaaaaaaa 999999999 1\n{');
    const rep = await (await openQueue(root, { create: false })).recover({ verify: true });
    assert.deepEqual([rep.restored, rep.corrupt], [[id], []], 'the whole record before the garbage, nothing else');
    assert.ok(readFileSync(q.layout.mess(id)).equals(mess));
    assert.deepEqual(await q.ids(), [id]);
    assert.deepEqual(readdirSync(jdir), [], 'every settled segment removed');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('journal: a torn or altered record ends the segment; the records before it stand', () => {
  const rec = (n: number): Buffer => {
    const id = `0000000${n}a-aaaaaaaaaaaa` as QueueId;
    const mess = Buffer.from(`message ${n}\n`);
    const env = Buffer.from(
      JSON.stringify({
        v: 1,
        id,
        birth: 1,
        sender: 'a@b',
        recipients: [],
        held: false,
        size: mess.length,
        sha256: createHash('sha256').update(mess).digest('hex'),
        meta: {},
        queueName: 'default',
      }),
    );
    return encodeRecord(id, env, [mess]);
  };
  const all = Buffer.concat([rec(1), rec(2), rec(3)]);
  assert.equal(readRecords(all).length, 3);
  assert.equal(readRecords(all.subarray(0, all.length - 3)).length, 2, 'a short last record');
  const altered = Buffer.from(all);
  const at = rec(1).length + rec(2).length - 2; // a byte of the second message
  altered.writeUInt8(altered.readUInt8(at) ^ 1, at);
  assert.deepEqual(
    readRecords(altered).map((r) => r.id),
    ['00000001a-aaaaaaaaaaaa'],
  );
  assert.equal(readRecords(Buffer.concat([Buffer.alloc(4096), all])).length, 0, 'zeros where a header should be');
});

void test('journal: a live writer’s segment is left alone; a dead or reused pid’s is not', async () => {
  assert.ok(writerAlive(`${process.pid}.${startTime(process.pid)}.1.jnl`));
  assert.ok(!writerAlive(`${DEAD}.0.1.jnl`));
  assert.ok(!writerAlive(`${process.pid}.1.1.jnl`), 'same pid, another start time: a reused pid');
  assert.ok(writerAlive(`${process.pid}.${startTime(process.pid)}.1.${BOOT}.jnl`));
  assert.ok(!writerAlive(`${process.pid}.${startTime(process.pid)}.1.${EARLIER}.jnl`), 'a writer of an earlier boot');
  assert.deepEqual(
    [`${DEAD}.0.1.${EARLIER}.jnl`, `${DEAD}.0.1.${BOOT}.jnl`, `${DEAD}.0.1.jnl`].map((n) => entriesMayBeLost(n)),
    [true, false, false],
    'only a segment of an earlier boot, whose entries were not synced, may have lost them',
  );
  const root = mkdtempSync(join(tmpdir(), 'quail-journal-'));
  try {
    const q = await openQueue(root, { journal: LONG });
    const id = await inject(q, 1, 500);
    truncateSync(q.layout.mess(id), 0); // as if damaged: recovery must still not use a live writer's records
    writeFileSync(join(q.layout.sub('journal'), 'notes.txt'), 'not a segment');
    const rep = await q.recover({});
    assert.deepEqual(rep.restored, []);
    assert.equal(readdirSync(q.layout.sub('journal')).length, 1, 'the live segment is still there');
    assert.ok(readdirSync(q.layout.sub('corrupt')).includes('journal.notes.txt'), 'a stranger set aside, not deleted');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('journal: segments are retired once no longer written, and at close; queued messages stay intact', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-journal-'));
  try {
    const q = await openQueue(root, { journal: { rotateMs: 30, retireMs: 30 } });
    const keep = await inject(q, 1, 700);
    await q.remove(await inject(q, 2, 700));
    const jdir = q.layout.sub('journal');
    assert.equal(readdirSync(jdir).length, 1);
    await waitFor(() => readdirSync(jdir).length === 0, 10_000, 'the segment retired');
    assert.equal(q.journal?.retireFailures, 0);
    assert.equal(q.journal?.entrySyncs, 1);
    assert.equal(q.dirSyncs(), 2, "mess/ and env/ synced through the store's grouped syncs, once each");
    assert.deepEqual(await q.ids(), [keep]);

    const q2 = await openQueue(root, { journal: LONG });
    const more = await inject(q2, 3, 900);
    assert.equal(readdirSync(jdir).length, 1);
    q2.close();
    await q2.closed();
    assert.deepEqual(readdirSync(jdir), [], 'close retires the segment at once');
    assert.deepEqual(await q2.ids(), [keep, more].sort());

    // one segment rotated (by size) and waiting for its retirement, one being written: close retires both
    const q3 = await openQueue(root, { journal: { ...LONG, rotateBytes: 1500 } });
    const last = [await inject(q3, 4, 1200), await inject(q3, 5, 100)];
    assert.equal(readdirSync(jdir).length, 2);
    q3.close();
    await q3.closed();
    assert.deepEqual(readdirSync(jdir), [], 'close retires the waiting segment too');
    assert.equal(q3.journal?.fileSystemSyncs, 0, 'a few queued messages: their own files synced');
    assert.equal(q3.journal?.entrySyncs, 2, 'and mess/ and env/ before each segment goes');
    const rep = await (await openQueue(root, { create: false })).recover({ verify: true });
    assert.deepEqual([rep.kept, rep.corrupt, rep.restored], [2 + last.length, [], []]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('journal: where the records do not stand for the entries, each 250 waits for mess/ and env/ again', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-journal-'));
  try {
    const q = await openQueue(root, { journal: { ...LONG, entries: false } });
    await inject(q, 1, 500);
    assert.equal(q.journal?.coversEntries, false);
    assert.equal(q.dirSyncs(), 2);
    assert.match(readdirSync(q.layout.sub('journal'))[0] ?? '', /^\d+\.\d+\.1\.jnl$/, 'no boot id in the name');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('journal: a segment that cannot be made fails the inject as temporary and leaves nothing queued', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-journal-'));
  try {
    const q = await openQueue(root, { journal: LONG });
    const jdir = q.layout.sub('journal');
    rmSync(jdir, { recursive: true });
    writeFileSync(jdir, 'not a directory');
    await assert.rejects(inject(q, 1, 800), (err: Error & { temporary?: boolean }) => {
      assert.equal(err.temporary, true);
      assert.match(err.message, /cannot commit the message to the queue: .*ENOTDIR/);
      return true;
    });
    assert.deepEqual([readdirSync(q.layout.sub('env')), readdirSync(q.layout.sub('mess'))], [[], []]);
    rmSync(jdir);
    mkdirSync(jdir, { mode: 0o700 }); // the operator's repair
    const id = await inject(q, 2, 800); // the next commit makes a segment again
    assert.deepEqual(await q.ids(), [id]);
    assert.equal(readdirSync(jdir).length, 1);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('journal: a backlog retired where syncfs cannot be made syncs each queued message instead, and loses none', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-journal-'));
  try {
    const q = await openQueue(root, { journal: { ...LONG, syncProgram: join(root, 'no-such-sync') } });
    const ids = await Promise.all(Array.from({ length: SYNCFS_FROM + 6 }, (_, n) => inject(q, n, 300 + n)));
    q.close();
    await q.closed();
    assert.equal(q.journal?.fileSystemSyncs, 0, 'no syncfs');
    assert.equal(q.journal?.entrySyncs, 1, "the messages' own files synced, then mess/ and env/");
    assert.equal(q.journal?.retireFailures, 0);
    assert.deepEqual(readdirSync(q.layout.sub('journal')), [], 'the segment retired');
    const rep = await (await openQueue(root, { create: false })).recover({ verify: true });
    assert.deepEqual([rep.kept, rep.corrupt, rep.restored], [ids.length, [], []]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('journal: a segment retired with many messages still queued (a backlog) syncs the file system once', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-journal-'));
  try {
    const q = await openQueue(root, { journal: LONG });
    const ids = await Promise.all(Array.from({ length: SYNCFS_FROM + 6 }, (_, n) => inject(q, n, 300 + n)));
    assert.equal(readdirSync(q.layout.sub('journal')).length, 1);
    q.close();
    await q.closed();
    assert.equal(q.journal?.fileSystemSyncs, 1);
    assert.equal(q.journal?.retireFailures, 0);
    assert.deepEqual(readdirSync(q.layout.sub('journal')), []);
    const rep = await (await openQueue(root, { create: false })).recover({ verify: true });
    assert.deepEqual([rep.kept, rep.corrupt], [ids.length, []]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('journal: a message streamed in 3,000 pieces (more buffers than one writev system call takes) and one with no data are whole in mess/ and in their records', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-journal-'));
  try {
    const q = await openQueue(root, { journal: LONG });
    // 3,000 chunks of 7 bytes: the record is 3,003 buffers (its header, the envelope, the Received line, the chunks),
    // more than Linux's IOV_MAX (1,024): writevAllSync relies on libuv to write them all
    const chunks = Array.from({ length: 3000 }, (_, i) => Buffer.from(`${String(i).padStart(5, '0')}\r\n`));
    const data = Buffer.concat(chunks);
    const many = await q.inject({
      sender: 's@example.org',
      recipients: ['r@example.net'],
      data: Readable.from(chunks, { objectMode: false }),
      injector: { kind: 'uid', uid: 0 },
    });
    const none = await q.inject({
      sender: 's@example.org',
      recipients: ['r@example.net'],
      data: Readable.from([]), // a stream that ends at once: the Received line alone
      injector: { kind: 'uid', uid: 0 },
    });
    const segs = readdirSync(q.layout.sub('journal'));
    const records = readRecords(readFileSync(join(q.layout.sub('journal'), segs[0] as string)));
    assert.deepEqual(
      records.map((r) => r.id),
      [many, none],
      'both records read back whole (their sizes and sha256 check)',
    );
    for (const [i, id] of [many, none].entries()) {
      const mess = readFileSync(q.layout.mess(id));
      assert.ok(mess.equals(records[i]?.mess as Buffer), `mess/${id} is its record's message`);
      const received = mess.subarray(0, mess.length - (i === 0 ? data.length : 0));
      assert.match(received.toString('latin1'), /^Received: [^\n]*\n(?: [^\n]*\n)*$/, 'one Received line first');
      assert.ok(mess.subarray(received.length).equals(i === 0 ? data : Buffer.alloc(0)), 'then the data, in order');
      assert.equal((await q.read(id))?.size, mess.length, 'the envelope has the size written');
    }
    q.close();
    await q.closed();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
