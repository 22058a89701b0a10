// DirSyncer: grouped directory fsyncs on a directory it keeps open between them, and lets go of on close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirSyncer } from './durable.js';

/** How many of this process's descriptors point at `dir`. */
const openOn = (dir: string): number =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === dir;
    } catch {
      return false;
    }
  }).length;

void test('DirSyncer: one descriptor kept across fsyncs; close lets it go after the running fsync; a sync after close still syncs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-dirsync-'));
  try {
    const d = new DirSyncer(dir);
    assert.equal(openOn(dir), 0);
    await d.sync();
    assert.ok(d.isOpen, 'kept open after the fsync');
    await Promise.all([d.sync(), d.sync(), d.sync()]);
    await d.sync();
    assert.equal(openOn(dir), 1, 'the same descriptor for every fsync');
    assert.ok(d.count >= 3 && d.count <= 5, `fsyncs ran: ${d.count}`);

    // close while an fsync runs and another waits: the descriptor stays until both are done
    const running = d.sync();
    const waiting = d.sync();
    d.close();
    assert.ok(d.isOpen, 'not closed under a running fsync');
    await Promise.all([running, waiting]);
    assert.equal(d.isOpen, false, 'closed once the fsyncs are done');
    assert.equal(openOn(dir), 0);

    await d.sync();
    assert.equal(openOn(dir), 0, 'after close, a sync opens the directory for that fsync only');

    // a directory that is gone: the fsync fails, nothing is held
    const gone = new DirSyncer(join(dir, 'missing'));
    await assert.rejects(gone.sync(), /ENOENT/);
    assert.equal(gone.isOpen, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
