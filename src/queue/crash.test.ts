// Crash test: writers killed with SIGKILL at random moments; after recover every acknowledged id is intact.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWriter } from './crash-writer.js';
import { type QueueId, openQueue } from './index.js';

async function storm(t: TestContext, journal: boolean): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'quail-crash-'));
  try {
    const allAcked = new Map<string, string>();
    const rounds = 6;
    let undone = 0;
    for (let round = 0; round < rounds; round++) {
      const writers = Array.from({ length: 1 + (round % 3) }, () => startWriter(root, journal));
      await Promise.all(writers.map((w) => w.firstAck));
      await new Promise((r) => setTimeout(r, 50 + Math.floor(Math.random() * 700)));
      for (const w of writers) w.child.kill('SIGKILL');
      await Promise.all(writers.map((w) => w.exited));
      for (const w of writers) for (const [id, sum] of w.acked) allAcked.set(id, sum);

      const q = await openQueue(root, { create: false });
      const rep = await q.recover({ verify: true });
      undone += rep.undone.length;
      assert.deepEqual(rep.corrupt, [], `round ${round}: nothing damaged`);
      assert.equal(rep.inFlight, 0);
      assert.deepEqual(rep.restored, [], `round ${round}: a kill leaves the files whole (the page cache)`);
      assert.deepEqual(readdirSync(join(q.dir, 'journal')), [], `round ${round}: dead writers' segments settled`);
      assert.deepEqual(readdirSync(join(q.dir, 'tmp')), []);
      const ids = new Set<string>(await q.ids());
      for (const [id, sum] of allAcked) {
        assert.ok(ids.has(id), `acknowledged ${id} is queued (round ${round})`);
        const file = readFileSync(q.messagePath(id as QueueId));
        const nl = file.indexOf(10);
        assert.match(file.subarray(0, nl + 1).toString('latin1'), /^Received: \(qmail \d+ invoked by uid 0\); /);
        assert.equal(
          createHash('sha256')
            .update(file.subarray(nl + 1))
            .digest('hex'),
          sum,
          `content of ${id}`,
        );
      }
      // every visible message is complete: recover --verify checked each against its checksum (kept == visible)
      assert.equal(rep.kept, ids.size);
      assert.deepEqual(readdirSync(join(q.dir, 'mess')).sort(), [...ids].sort());
    }
    assert.ok(allAcked.size > 0);
    t.diagnostic(`${allAcked.size} acknowledged, ${undone} interrupted writes undone`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

void test('crash: SIGKILL at random moments, several writers at once; acknowledged ids survive intact', (t) =>
  storm(t, false));

void test('crash: the same with the group commit (journal segments rotated and retired as kills land)', (t) =>
  storm(t, true));
