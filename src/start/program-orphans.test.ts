// A `|program` delivery whose delivering process is SIGKILLed (the send child, running its own account's deliveries):
// root ends the program's whole process group before it acts, and the message is retried and delivered once.
// tier: system (needs quail start as root, swaks)
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { listenerPort, setupRoot, startProcess, swaks, type QuailProcess } from '../../test/support/start.js';
import { groupMembers } from '../../test/support/proc.js';
import { waitFor } from '../../test/support/wait.js';

void test(
  'the send child SIGKILLed during a program delivery: the program group is ended (none of it acts), the message is retried and delivered once',
  { skip: process.getuid?.() !== 0 ? 'needs root (the send child and its supervisor are two accounts)' : false },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'quail-orphans-'));
    let q: QuailProcess | undefined;
    let pgid = 0;
    try {
      setupRoot(root, 'mx.orphans.test', [{ domain: 'orphans.test', boxes: ['box'] }]);
      const home = join(root, 'domains', 'orphans.test');
      const [first, deaf, marker] = ['first', 'deaf', 'marker'].map((n) => join(home, n)) as [string, string, string];
      // the first attempt says its group ($$, the leader: the wrapper execs the shell) and the process running it
      // ($PPID), starts a grandchild that ignores SIGTERM and writes the marker after a while; the retry (`first`
      // exists) exits 0 and the Maildir line delivers
      writeFileSync(
        join(home, '.qmail-box'),
        `|[ -e first ] && exit 0; echo "$$ $PPID" > first.tmp && mv first.tmp first; ` +
          `sh -c 'trap "" TERM; echo $$ > deaf; exec sleep 1000' & sleep 6; echo late > marker\n./box/Maildir/\n`,
        { mode: 0o644 },
      );
      // one delivery process per uid: the send child runs its own account's deliveries itself
      writeFileSync(join(root, 'control', 'localworkers'), '1\n');
      q = await startProcess(root);
      const proc = q;
      const r = swaks(listenerPort(root, 'smtp'), ['--to', 'box@orphans.test']);
      assert.equal(r.status, 0, r.out);
      await waitFor(
        () => existsSync(first) && existsSync(deaf),
        30_000,
        () => `the program runs\n${proc.log()}`,
      );
      const [group, runner] = readFileSync(first, 'utf8').trim().split(' ').map(Number) as [number, number];
      pgid = group;
      const state = JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as { send?: { pid: number } };
      assert.equal(runner, state.send?.pid, 'the send child runs the program');
      assert.ok(groupMembers(pgid).length >= 2, 'the program and its grandchild run in its group');

      process.kill(runner, 'SIGKILL');
      await waitFor(
        () => groupMembers(pgid).length === 0,
        15_000,
        () => `the program's group outlived the send child: ${groupMembers(pgid).join(' ')}\n${proc.log()}`,
      );
      assert.ok(!existsSync(marker), 'the program never acted after the send child died');
      // qmail's way for a delivery cut short: temporary, tried again (by the restarted send child), delivered once
      const newDir = join(home, 'box', 'Maildir', 'new');
      await waitFor(
        () => readdirSync(newDir).length > 0,
        60_000,
        () => `delivered on retry\n${proc.log()}`,
      );
      assert.equal(readdirSync(newDir).length, 1);
      assert.match(proc.log(), /sendd\.crashed/);
    } finally {
      if (pgid > 0 && groupMembers(pgid).length > 0) process.kill(-pgid, 'SIGKILL');
      q?.killGroup();
      rmSync(root, { recursive: true, force: true });
    }
  },
);
