// Export/import tests: move a queue from one root to another and carry on; damage and truncation detected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QuailError } from '../core/index.js';
import { type FileQueue, type QueueId, exportQueue, importQueue, openQueue } from './index.js';

async function two(): Promise<{ a: FileQueue; b: FileQueue; dir: string; done: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'quail-transfer-'));
  let t = Date.UTC(2026, 0, 1);
  const a = await openQueue(join(dir, 'a'), { clock: () => (t += 1000) });
  const b = await openQueue(join(dir, 'b'));
  return { a, b, dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

void test('export then import into another root: births, states, held, meta kept; --delete empties the source', async () => {
  const { a, b, dir, done } = await two();
  try {
    const ids: QueueId[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(
        await a.inject({
          sender: `s${i}@x`,
          recipients: [`r${i}@y`, `q${i}@z`],
          data: Buffer.from(`Subject: ${i}\n\n${'\u00e9'.repeat(i * 1000)}\n\n`),
          injector: { kind: 'uid', uid: 7 },
          meta: { origin: 'smtp' },
          queueName: i === 4 ? 'bulk' : 'default',
        }),
      );
    }
    const id0 = ids[0] as QueueId;
    await a.updateRecipients(id0, [
      {
        original: 'r0@y',
        channel: 'remote',
        address: 'r0@y',
        status: 'pending',
        attempts: 2,
        nextAttempt: 1767225999,
        lastResult: 'deferral',
        lastReport: "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)",
      },
      {
        original: 'q0@z',
        channel: 'local',
        address: 'q0@z',
        status: 'done',
        attempts: 1,
        lastResult: 'success',
        lastReport: 'did 1+0+0',
      },
    ]);
    await a.setHeld(ids[1] as QueueId, true);
    const file = join(dir, 'export.q');
    const exported: Array<[number, number]> = [];
    const res = await exportQueue(a, file, undefined, true, (d, t) => exported.push([d, t]));
    assert.deepEqual(res.ids, ids);
    // issue 18: one progress call per message written, of the whole
    assert.deepEqual(
      exported,
      ids.map((_, i) => [i + 1, ids.length]),
    );
    assert.deepEqual(await a.ids(), []);
    await assert.rejects(exportQueue(a, file), (e: unknown) => e instanceof QuailError && /exists/.test(e.message));

    const imported: Array<[number, number]> = [];
    const imp = await importQueue(b, file, (d, t) => imported.push([d, t]));
    assert.deepEqual(imp.ids, ids);
    assert.equal(imported.length, ids.length, 'one progress call per message committed');
    assert.ok(
      imported.every(([d, t], i) => t === statSync(file).size && d > (imported[i - 1]?.[0] ?? 0) && d <= t),
      JSON.stringify(imported),
    );
    assert.deepEqual(imp.renamed, []);
    for (const id of ids) {
      const m = await b.read(id);
      assert.ok(m);
      assert.equal(m.birth, Math.floor(Date.UTC(2026, 0, 1) / 1000) + 1 + ids.indexOf(id));
      assert.equal(m.size, statSync(b.messagePath(id)).size);
    }
    const m0 = await b.read(id0);
    assert.equal(m0?.recipients[0]?.status, 'pending');
    assert.equal(m0?.recipients[0]?.lastReport, "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)");
    assert.equal(m0?.recipients[1]?.status, 'done');
    // the routing of a recipient still to be delivered is made again here; a finished one keeps its record
    assert.deepEqual([m0?.recipients[0]?.channel, m0?.recipients[0]?.address], [undefined, undefined]);
    assert.deepEqual([m0?.recipients[1]?.channel, m0?.recipients[1]?.address], ['local', 'q0@z']);
    assert.equal((await b.read(ids[1] as QueueId))?.held, true);
    assert.equal((await b.read(ids[4] as QueueId))?.queueName, 'bulk');
    assert.equal((await b.read(ids[3] as QueueId))?.meta['origin'], 'smtp');
    // it carries on there: the target queue can update and remove the imported messages
    await b.updateRecipients(id0, []);
    await b.remove(id0);
    assert.equal((await b.recover({ verify: true })).kept, 4);

    // importing the same file again allocates no conflicting ids
    const again = await importQueue(b, file);
    assert.equal(again.renamed.length, 4); // id0 was removed, so it came back under its own id
    for (const [old, now] of again.renamed) {
      assert.notEqual(old, now);
      assert.deepEqual(readFileSync(b.messagePath(now)), readFileSync(b.messagePath(old)));
      assert.equal((await b.read(now))?.birth, (await b.read(old))?.birth);
    }
  } finally {
    done();
  }
});

void test('export of selected ids; damaged and truncated export files are refused with a clear text', async () => {
  const { a, b, dir, done } = await two();
  try {
    const x = await a.inject({
      sender: 's@x',
      recipients: ['r@y'],
      data: Buffer.from('first message\n'),
      injector: { kind: 'network' },
    });
    const y = await a.inject({
      sender: 's@x',
      recipients: ['r@y'],
      data: Buffer.from('second message\n'),
      injector: { kind: 'network' },
    });
    const sel = join(dir, 'sel.q');
    assert.deepEqual((await exportQueue(a, sel, [y])).ids, [y]);
    assert.deepEqual((await a.ids()).length, 2); // without --delete the source keeps them

    const all = join(dir, 'all.q');
    await exportQueue(a, all);
    const flipped = join(dir, 'flipped.q');
    writeFileSync(flipped, readFileSync(all, 'latin1').replace('second message', 'secend message'), 'latin1');
    await assert.rejects(
      importQueue(b, flipped),
      (e: unknown) => e instanceof QuailError && !e.temporary && /sha256 mismatch/.test(e.message),
    );
    assert.deepEqual(await b.ids(), [x]); // the verified message before the damage is in

    const cut = join(dir, 'cut.q');
    writeFileSync(cut, readFileSync(all));
    truncateSync(cut, statSync(cut).size - 5);
    const c = await openQueue(join(dir, 'c'));
    await assert.rejects(
      importQueue(c, cut),
      (e: unknown) => e instanceof QuailError && /damaged export file: (truncated|end record)/.test(e.message),
    );

    writeFileSync(join(dir, 'junk.q'), 'hello\n');
    await assert.rejects(
      importQueue(c, join(dir, 'junk.q')),
      (e: unknown) => e instanceof QuailError && /not a quail queue export/.test(e.message),
    );
    assert.equal((await c.ids()).length, 2); // only the end record was cut: both messages were complete
    const d = await openQueue(join(dir, 'd'));
    assert.deepEqual((await importQueue(d, sel)).ids, [y]);
  } finally {
    done();
  }
});
