// tier: system (needs root, a loop device, mkfs.ext4 and chattr)
// Power cut: the queue on a journaled ext4 image whose backing file is made immutable mid-write, so that nothing
// written after that instant reaches the "disk" (the writes fail, as a drive's would once its power is gone);
// then the image is mounted again (ext4 replays its journal) and recovered as after a reboot. Every id the writers
// acknowledged must be queued with its bytes.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startWriter } from './crash-writer.js';
import { type QueueId, openQueue } from './index.js';
import { asAfterReboot, makeImage, powerCutUnavailable } from '../../test/support/powercut.js';

async function cuts(t: TestContext, journal: boolean): Promise<void> {
  const why = powerCutUnavailable();
  if (why !== undefined) return void t.skip(why);
  const disk = makeImage();
  if (typeof disk === 'string') return void t.skip(disk);
  try {
    const root = join(disk.mnt, 'q');
    await openQueue(root); // made, and on the disk, before the first cut (quail init's work)
    execFileSync('sync');
    const allAcked = new Map<string, string>();
    let restored = 0;
    let lost = 0;
    for (let round = 0; round < 3; round++) {
      const writers = Array.from({ length: 2 }, () => startWriter(root, journal, 'ignore'));
      await Promise.all(writers.map((w) => w.firstAck));
      await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 400)));
      disk.cut();
      await new Promise((r) => setTimeout(r, 100)); // the writers meet the failed writes; an ack now would be a lie
      for (const w of writers) w.child.kill('SIGKILL');
      await Promise.all(writers.map((w) => w.exited));
      for (const w of writers) for (const [id, sum] of w.acked) allAcked.set(id, sum);
      await disk.remount();

      const q = await openQueue(root, { create: false });
      if (journal) assert.ok(asAfterReboot(q.dir) > 0, `round ${round}: the writers left journal segments`);
      const rep = await q.recover({ verify: true });
      restored += rep.restored.length;
      assert.equal(rep.inFlight, 0);
      assert.deepEqual(readdirSync(join(q.dir, 'tmp')), [], `round ${round}: tmp/ settled`);
      assert.deepEqual(readdirSync(join(q.dir, 'journal')), [], `round ${round}: the segments settled`);
      const ids = new Set<string>(await q.ids());
      for (const [id, sum] of allAcked) {
        if (!ids.has(id)) {
          lost++;
          continue;
        }
        const file = readFileSync(q.messagePath(id as QueueId));
        const nl = file.indexOf(10);
        assert.equal(
          createHash('sha256')
            .update(file.subarray(nl + 1))
            .digest('hex'),
          sum,
          `round ${round}: content of acknowledged ${id}`,
        );
      }
      assert.equal(lost, 0, `round ${round}: ${lost} of ${allAcked.size} acknowledged messages lost`);
      assert.equal(rep.kept, ids.size, `round ${round}: every message queued passed --verify`);
    }
    assert.ok(allAcked.size > 0);
    t.diagnostic(
      `${allAcked.size} acknowledged over 3 cuts, all queued after recovery; ${restored} restored from the journal`,
    );
  } finally {
    await disk.close();
  }
}

void test('power cut: writes stop mid-inject; after the reboot every acknowledged message is queued whole', (t) =>
  cuts(t, false));

void test('power cut with the group commit: the journal restores what the disk lost of acknowledged messages', (t) =>
  cuts(t, true));
