// QMAILQUEUE end to end: the seed-003 sender-domain wrapper, set in tcp.smtp, calls `quail queue-inject`; swaks talks.
// tier: system (needs quail start, swaks, bash)
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoPath } from '../../test/support/paths.js';
import {
  MAIN,
  listenerPort,
  queuedCount,
  setupRoot,
  startProcess,
  swaks,
  swaksAsync,
  waitFor,
} from '../../test/support/start.js';

/** Processes whose command line contains `needle` (the hanging filter's `sleep 3599`). */
function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'latin1').split('\0').join(' ').includes(needle)) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}

void test('seed 003 wrapper via tcp.smtp QMAILQUEUE: accepted once, 31 → 554 with its text, 71 → 451, a hang is killed → 451', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-qq-'));
  const p = { killGroup: (): void => undefined };
  try {
    setupRoot(root, 'mx.example.com', [{ domain: 'example.com', boxes: ['joe'] }]);
    const bin = join(root, 'bin');
    mkdirSync(bin, { recursive: true, mode: 0o755 }); // quail init may have made it (its own bin/ scripts)
    // `quail` on the PATH quail start passes on, as an installed quail would be
    writeFileSync(join(bin, 'quail'), `#!/bin/sh\nexec ${process.execPath} ${MAIN} "$@"\n`, { mode: 0o755 });
    const wrapper = join(bin, 'qmail-queue');
    copyFileSync(repoPath('src', 'filter', 'testdata', 'sender-domain-wrapper.sh'), wrapper);
    writeFileSync(
      join(root, 'control', 'tcp.smtp'),
      `127.:allow,RELAYCLIENT="",QMAILQUEUE="${wrapper}",QUAIL_FILTERTIMEOUT="3"\n`,
    );
    const q = await startProcess(root, 30_000, { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` });
    Object.assign(p, q);
    const port = listenerPort(root, 'smtp');

    // accepted: the wrapper queues through quail queue-inject; delivered exactly once
    const ok = swaks(port, ['--to', 'joe@example.com', '--header', 'Subject: through the wrapper'], 'ann@good.test');
    assert.equal(ok.status, 0, ok.out);
    assert.match(ok.out, /<[-~] *250 2\.0\.0 ok \d+ qp \d+$/m);
    const newDir = join(root, 'domains', 'example.com', 'joe', 'Maildir', 'new');
    await waitFor(
      () => readdirSync(newDir).length === 1,
      30_000,
      () => `delivery; log:\n${q.log()}`,
    );
    const got = readFileSync(join(newDir, readdirSync(newDir)[0] ?? ''), 'latin1');
    assert.match(got, /Subject: through the wrapper/);
    assert.match(got, /^Return-Path: <ann@good\.test>/);
    assert.equal((got.match(/^Received: from /gm) ?? []).length, 1, 'smtpd wrote its Received line, queue-inject none');

    // 31 with the program's own text (fd 4), and 31 without: qmail's text
    const own = swaks(port, ['--to', 'joe@example.com'], 'bob@refused.test');
    assert.match(own.out, /<\*\* *554 5\.7\.1 sorry, refused\.test may not send through this server \(#5\.7\.1\)/);
    const plain = swaks(port, ['--to', 'joe@example.com'], 'bob@denied.test');
    assert.match(plain.out, /<\*\* *554 5\.3\.0 mail server permanently rejected message \(#5\.3\.0\)/);
    // 71: temporary
    const busy = swaks(port, ['--to', 'joe@example.com'], 'bob@busy.test');
    assert.match(busy.out, /<\*\* *451 4\.3\.0 mail server temporarily rejected message \(#4\.3\.0\)/);

    // a filter that hangs: killed after QUAIL_FILTERTIMEOUT, 451; another session meanwhile is served
    const hanging = swaksAsync(port, ['--to', 'joe@example.com'], 'slow@hang.test');
    await waitFor(
      () => processesWith('sleep 3599').length > 0,
      30_000,
      () => 'the hanging filter to start',
    );
    const meanwhile = swaks(port, ['--to', 'joe@example.com', '--header', 'Subject: meanwhile'], 'ann@good.test');
    assert.equal(meanwhile.status, 0, meanwhile.out);
    const hung = await hanging;
    assert.match(hung.out, /<\*\* *451 4\.3\.0 qq timeout \(#4\.3\.0\)/);
    await waitFor(
      () => processesWith('sleep 3599').length === 0,
      10_000,
      () => 'the hanging filter killed',
    );

    await waitFor(
      () => readdirSync(newDir).length === 2,
      30_000,
      () => `second delivery; log:\n${q.log()}`,
    );
    await waitFor(
      () => queuedCount(root) === 0,
      30_000,
      () => 'queue empty',
    );
    // nothing refused was queued: still exactly the two accepted messages
    assert.equal(readdirSync(newDir).length, 2);
    // the log travels in batches (src/start/log-batch.ts, a few ms behind the replies): wait for the line
    await waitFor(
      () => /smtp\.queue-failed.*qq timeout/.test(q.log()),
      10_000,
      () => `smtp.queue-failed with qq timeout in the log:\n${q.log()}`,
    );
  } finally {
    p.killGroup();
    for (const pid of processesWith('sleep 3599')) process.kill(pid, 'SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
});
