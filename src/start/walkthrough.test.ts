// Issue 3's "Done means", black box: quail init, a virtual domain by hand, quail start, quail inject lands in the Maildir, SIGTERM.
// tier: system (needs quail start)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAIN, queuedCount, setupRoot, startProcess, waitFor } from '../../test/support/start.js';

/** Is any process of group `pgid` still alive? */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

void test('walkthrough: init, example.com by hand (.qmail-default), start, inject joe@example.com → Maildir, SIGTERM', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-walk-'));
  let q: Awaited<ReturnType<typeof startProcess>> | undefined;
  try {
    const owner = setupRoot(root, 'mail.test', [{ domain: 'example.com', boxes: ['default'] }]);
    assert.match(readFileSync(join(root, 'users', 'assign'), 'utf8'), /^\+example\.com-:/);
    q = await startProcess(root);
    const token = `walk-${process.pid}-${Date.now()}`;
    const r = spawnSync(process.execPath, [MAIN, 'inject', '--root', root, 'joe@example.com'], {
      input: `Subject: ${token}\n\nhello from the walkthrough\n`,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout + r.stderr, '', 'quail inject prints nothing on success');

    const newDir = join(root, 'domains', 'example.com', 'default', 'Maildir', 'new');
    const log = q.log;
    await waitFor(
      () => readdirSync(newDir).length > 0,
      30_000,
      () => `nothing in ${newDir}\n${log()}`,
    );
    const files = readdirSync(newDir);
    assert.equal(files.length, 1);
    const path = join(newDir, files[0] ?? '');
    const text = readFileSync(path, 'utf8');
    assert.match(
      text,
      /^Return-Path: <[^>\n]*>\nDelivered-To: example\.com-joe@example\.com\nReceived: \(qmail \d+ invoked by uid \d+\); /,
    );
    assert.ok(text.endsWith(`Subject: ${token}\n\nhello from the walkthrough\n`), text);
    const st = statSync(path);
    assert.equal(st.uid, owner.uid, 'delivered as the domain owner, not as root');
    assert.equal(st.mode & 0o777, 0o600);
    // the result is logged after the worker reports, which may be a moment after the file appears
    await waitFor(
      () => /send\.delivery .*result=success report="did 1\+0\+0\\n"/.test(log()),
      30_000,
      () => `no delivery result logged\n${log()}`,
    );
    await waitFor(
      () => queuedCount(root) === 0,
      30_000,
      () => `message still queued\n${log()}`,
    );

    q.child.kill('SIGTERM');
    const exit = await q.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, log());
    await waitFor(
      () => /quail\.stopped/.test(log()),
      10_000,
      () => `no quail.stopped line (the pipe may trail the exit)\n${log()}`,
    );
    assert.equal(existsSync(join(root, 'run', 'quail.pid')), false);
    const pgid = q.child.pid ?? 0;
    await waitFor(
      () => !groupAlive(pgid),
      10_000,
      () => 'a delivery worker outlived quail start',
    );
  } finally {
    q?.killGroup();
    rmSync(root, { recursive: true, force: true });
  }
});
