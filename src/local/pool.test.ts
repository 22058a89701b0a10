// LocalDeliverer's lifecycle as root: close() after a delivery returns once the (idle, unref'd) worker has exited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maildirMake } from '../maildir/index.js';
import { LocalDeliverer } from './index.js';

const UID = 42201;
const GID = 42200;
const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (the worker runs as uid 42201)';

/**
 * Settles with `p`, or rejects after `ms`. The timer is unref'd on purpose: a ref'd guard would itself keep the event
 * loop alive and hide the bug this file pins (close() awaiting an exit that nothing keeps the loop running for). With
 * it unref'd, a close() that never settles fails either way: by this timer while something else keeps the loop
 * running, or by node:test ("Promise resolution is still pending but the event loop has already resolved") when nothing does.
 */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

void test(
  "close() after one delivery returns (the idle worker is unref'd; close must wait for its exit anyway)",
  { skip },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quail-pool-'));
    try {
      chmodSync(dir, 0o755);
      const home = join(dir, 'home');
      mkdirSync(home);
      chownSync(home, UID, GID);
      chmodSync(home, 0o755);
      maildirMake(join(home, 'Maildir'), { uid: UID, gid: GID });
      const messagePath = join(dir, 'msg');
      writeFileSync(messagePath, 'Subject: one\n\nbody\n', { mode: 0o600 });
      // idleMs far beyond the test: the worker is still there, idle, when close() is called.
      const d = new LocalDeliverer({ path: '/usr/bin:/bin', idleMs: 600_000 });
      const r = await d.deliver({
        user: 'qpool',
        uid: UID,
        gid: GID,
        home,
        local: 'qpool',
        dash: '',
        ext: '',
        domain: 'local.test',
        sender: 'a@b.test',
        defaultDelivery: './Maildir/\n',
        messagePath,
        root: '/nonexistent-root',
      });
      assert.deepEqual([r.result, r.report], ['success', 'did 1+0+0\n']);
      assert.equal(readdirSync(join(home, 'Maildir', 'new')).length, 1);
      await within(d.close(), 10_000, 'LocalDeliverer.close()');
      // After close, a job is refused rather than starting a new worker.
      const late = await d.deliver({
        user: 'qpool',
        uid: UID,
        gid: GID,
        home,
        local: 'qpool',
        dash: '',
        ext: '',
        domain: 'local.test',
        sender: 'a@b.test',
        defaultDelivery: './Maildir/\n',
        messagePath,
        root: '/nonexistent-root',
      });
      assert.equal(late.result, 'deferral');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
