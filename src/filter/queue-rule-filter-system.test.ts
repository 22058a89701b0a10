// A queue rule's filter= end to end: `quail start`, a real SMTP session (swaks), `quail inject`, and `quail sendmail`
// under QMAILQUEUE; the programs queue through `quail queue-inject`, which joins the queue the rules chose.
// tier: system (needs quail start, swaks)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  MAIN,
  listenerPort,
  queuedCount,
  quailOnPath,
  setupRoot,
  startProcess,
  swaks,
  waitFor,
} from '../../test/support/start.js';

void test('queuerules filter=: runs for a matching sender (SMTP, inject, sendmail -bs), not for another; QUAIL_QUEUE and the queue kept, also for sendmail under QMAILQUEUE', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-qrf-'));
  const p = { killGroup: (): void => undefined, log: (): string => '' };
  try {
    setupRoot(root, 'mx.example.com', [{ domain: 'example.com', boxes: ['joe'] }]);
    const bin = quailOnPath(root);
    // the SMTP child runs programs as quailuser: the marks go to a directory anyone may write
    const marks = join(root, 'marks');
    mkdirSync(marks);
    chmodSync(marks, 0o1777);
    // the rule's filter: notes the queue it was given, adds a header, queues through quail queue-inject (fd 1, the
    // envelope, passes through untouched)
    const scan = join(bin, 'scan');
    writeFileSync(
      scan,
      `#!/bin/sh\necho "scan QUAIL_QUEUE=$QUAIL_QUEUE" >> ${marks}/scan\n` +
        `{ printf 'X-Scanned: by the rule\\n'; cat; } | exec quail queue-inject\n`,
      { mode: 0o755 },
    );
    // a QMAILQUEUE wrapper for sendmail: notes the queue it was given and queues
    const wrap = join(bin, 'wrap');
    writeFileSync(wrap, `#!/bin/sh\necho "wrap QUAIL_QUEUE=$QUAIL_QUEUE" >> ${marks}/wrap\nexec quail queue-inject\n`, {
      mode: 0o755,
    });
    writeFileSync(join(root, 'control', 'queues'), 'scanned lifetime=3600\nbulk lifetime=7200\n');
    writeFileSync(
      join(root, 'control', 'queuerules'),
      `sender scan.test scanned filter=${scan}\nsender bulk.test bulk\n`,
    );
    writeFileSync(join(root, 'control', 'tcp.smtp'), '127.:allow\n');
    const path = `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`;
    const q = await startProcess(root, 30_000, { PATH: path });
    Object.assign(p, q);
    const port = listenerPort(root, 'smtp');

    const one = swaks(port, ['--to', 'joe@example.com', '--header', 'Subject: one'], 'ann@scan.test');
    assert.equal(one.status, 0, one.out);
    const two = swaks(port, ['--to', 'joe@example.com', '--header', 'Subject: two'], 'bob@other.test');
    assert.equal(two.status, 0, two.out);
    const run = (cmd: string, from: string, subject: string, env: Record<string, string> = {}): void => {
      const r = spawnSync(process.execPath, [MAIN, cmd, '--root', root, '-f', from, 'joe@example.com'], {
        input: `Subject: ${subject}\n\nbody\n`,
        env: { ...process.env, PATH: path, ...env },
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, `quail ${cmd}: ${r.stderr}`);
    };
    run('inject', 'cat@scan.test', 'three');
    run('sendmail', 'dan@bulk.test', 'four', { QMAILQUEUE: wrap });
    // sendmail -bs: an SMTP session on stdin, the rule's filter as for a network client
    const bs = spawnSync(process.execPath, [MAIN, 'sendmail', '-bs', '--root', root], {
      input:
        'HELO local\r\nMAIL FROM:<eve@scan.test>\r\nRCPT TO:<joe@example.com>\r\nDATA\r\n' +
        'Subject: five\r\n\r\nbody\r\n.\r\nQUIT\r\n',
      env: { ...process.env, PATH: path },
      encoding: 'utf8',
    });
    assert.match(bs.stdout, /^250 ok \d+ qp \d+/m, `sendmail -bs: ${bs.stdout}${bs.stderr}`);

    const newDir = join(root, 'domains', 'example.com', 'joe', 'Maildir', 'new');
    await waitFor(
      () => existsSync(newDir) && readdirSync(newDir).length === 5,
      30_000,
      () => `five deliveries; log:\n${q.log()}`,
    );
    const bySubject = new Map<string, string>();
    for (const f of readdirSync(newDir)) {
      const t = readFileSync(join(newDir, f), 'latin1');
      bySubject.set(/^Subject: (\w+)/m.exec(t)?.[1] ?? '?', t);
    }
    assert.match(bySubject.get('one') ?? '', /^X-Scanned: by the rule$/m, 'SMTP, matching sender: filtered');
    assert.match(bySubject.get('three') ?? '', /^X-Scanned: by the rule$/m, 'inject, matching sender: filtered');
    assert.match(bySubject.get('five') ?? '', /^X-Scanned: by the rule$/m, 'sendmail -bs, matching sender: filtered');
    assert.doesNotMatch(bySubject.get('two') ?? '', /X-Scanned/, 'another sender: not filtered');
    assert.doesNotMatch(bySubject.get('four') ?? '', /X-Scanned/, 'sendmail under QMAILQUEUE: its program only');
    assert.equal(readFileSync(join(marks, 'scan'), 'utf8'), 'scan QUAIL_QUEUE=scanned\n'.repeat(3));
    assert.equal(readFileSync(join(marks, 'wrap'), 'utf8'), 'wrap QUAIL_QUEUE=bulk\n');
    // the queues the messages joined (send.info names a queue other than default)
    const joined: ReadonlyArray<readonly [string, string]> = [
      ['ann@scan.test', 'scanned'],
      ['cat@scan.test', 'scanned'],
      ['eve@scan.test', 'scanned'],
      ['dan@bulk.test', 'bulk'],
    ];
    for (const [from, queue] of joined)
      await waitFor(
        () => new RegExp(`send\\.info .*from=${from.replace('.', '\\.')} .*queue=${queue}`).test(q.log()),
        10_000,
        () => `send.info from=${from} queue=${queue} in the log:\n${q.log()}`,
      );
    assert.doesNotMatch(q.log(), /send\.info .*from=bob@other\.test .*queue=/);
    // the SMTP session logs the program that got the message
    await waitFor(
      () => new RegExp(`smtp\\.queued .*filter=${scan.replace(/[.]/g, '\\.')} .*from=ann@scan\\.test`).test(q.log()),
      10_000,
      () => `smtp.queued with filter= in the log:\n${q.log()}`,
    );
    await waitFor(
      () => queuedCount(root) === 0,
      30_000,
      () => 'queue empty',
    );
  } finally {
    p.killGroup();
    rmSync(root, { recursive: true, force: true });
  }
});
