// The sole SMTP process accepts on the port itself (privchild.ts directAccept); when no SMTP process can start for a
// while, root takes the port over: the waiting client is told 421, not left hanging, and mail flows once a process
// starts again.
// tier: system (needs quail start as root)
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  freePort,
  listeningInode,
  setupRoot,
  smtpLockstep,
  socketHolders,
  startProcess,
  type QuailProcess,
} from '../../test/support/start.js';
import { waitFor } from '../../test/support/wait.js';

const asRoot = process.getuid?.() === 0;

void test(
  'no SMTP process for 5 s: root takes the port over, the waiting client gets 421; mail flows when one starts again',
  { skip: !asRoot && 'needs root' },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'quail-outage-'));
    let proc: QuailProcess | undefined;
    const queue = join(root, 'queue');
    let mode: number | undefined;
    try {
      setupRoot(root, 'mx.outage.test', [{ domain: 'outage.test', boxes: ['box'] }]);
      const port = await freePort();
      writeFileSync(join(root, 'control', 'listeners'), `127.0.0.1:${port} smtp\n`);
      writeFileSync(join(root, 'control', 'smtpdprocesses'), '1\n');
      proc = await startProcess(root, 60_000, {}, false);
      const log = proc.log;
      const st = (): { pid: number; smtpd?: { pid?: number } } =>
        JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as { pid: number; smtpd?: { pid?: number } };
      const rootPid = st().pid;
      const smtpd = st().smtpd?.pid ?? 0;
      const holders = (): number[] => socketHolders(listeningInode(port)).sort((a, b) => a - b);
      assert.deepEqual(
        holders(),
        [rootPid, smtpd].sort((a, b) => a - b),
        'the SMTP process accepts on the port',
      );

      // the next SMTP process cannot open the queue: it fails and is retried later and later
      mode = statSync(queue).mode & 0o7777;
      chmodSync(queue, 0o000);
      process.kill(smtpd, 'SIGKILL');
      await waitFor(() => /smtpd\.crashed/.test(log()), 10_000, log);
      const waited = smtpLockstep(port, ['QUIT']);
      await waitFor(
        () => /smtpd\.outage /.test(log()),
        15_000,
        () => `outage\n${log()}`,
      );
      assert.deepEqual(holders(), [rootPid], 'root holds the port alone, and accepts');
      // held for a process (15 s), then told to come back: never left waiting unanswered
      assert.match(await waited, /^421 /);
      await waitFor(() => /smtpd\.busy /.test(log()), 5_000, log);

      chmodSync(queue, mode);
      await waitFor(
        () => /smtpd\.outage [^\n]*\n(?:.*\n)*.*smtpd\.started/.test(log()),
        40_000,
        () => `restart\n${log()}`,
      );
      const sent = await smtpLockstep(port, [
        'HELO c',
        'MAIL FROM:<a@b.test>',
        'RCPT TO:<box@outage.test>',
        'DATA',
        'Subject: after\r\n\r\nhi\r\n.',
        'QUIT',
      ]);
      assert.match(sent, /\r\n250 [^\r\n]*\r\n221 /, 'accepted after the outage (handed over by root)');
    } finally {
      if (mode !== undefined) chmodSync(queue, mode);
      proc?.killGroup();
      rmSync(root, { recursive: true, force: true });
    }
  },
);
