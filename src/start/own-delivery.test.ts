// As root: a mailbox of the send child's own account, found in users/cdb, is delivered by the send child itself; the
// alias path and, after control/localworkers 2 and a reload, that same mailbox go through root's lspawn to a worker.
// tier: system (needs quail start as root, swaks)
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { listenerPort, setupRoot, startProcess, swaks, type QuailProcess } from '../../test/support/start.js';
import { waitFor } from '../../test/support/wait.js';

interface State {
  readonly pid: number;
  readonly send?: { readonly pid: number; readonly uid: number };
}

/** The pid of the process that ran a `.qmail` program line: the program writes its shell's parent into `file`. */
async function runnerOf(file: string, log: () => string): Promise<number> {
  await waitFor(
    () => existsSync(file) && readFileSync(file, 'utf8').endsWith('\n'),
    30_000,
    () => `${file} written\n${log()}`,
  );
  const pid = Number(readFileSync(file, 'utf8').trim());
  rmSync(file);
  assert.ok(Number.isSafeInteger(pid) && pid > 1, `a pid in ${file}`);
  return pid;
}

void test(
  "as root: the send child delivers its own account's users/cdb mailboxes itself; alias deliveries and localworkers 2 go through root",
  { skip: process.getuid?.() !== 0 ? 'needs root (without it every delivery runs in quail start itself)' : false },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'quail-own-'));
    let q: QuailProcess | undefined;
    try {
      setupRoot(root, 'mx.own.test', [{ domain: 'own.test', boxes: ['box'] }]);
      const home = join(root, 'domains', 'own.test');
      // the program's shell is exec'd by the wrapper, so its parent is the process that ran the delivery
      writeFileSync(join(home, '.qmail-prog'), '|echo $PPID > ppid\n', { mode: 0o644 });
      writeFileSync(join(root, 'alias', '.qmail-pp'), '|echo $PPID > ppid\n', { mode: 0o644 });
      writeFileSync(join(root, 'control', 'localworkers'), '1\n');
      q = await startProcess(root);
      const proc = q;
      const state = (): State => JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as State;
      const port = listenerPort(root, 'smtp');
      const send = (to: string): void => {
        const r = swaks(port, ['--to', to]);
        assert.equal(r.status, 0, r.out);
      };
      const sendPid = state().send?.pid;
      assert.ok(sendPid !== undefined && sendPid > 0, JSON.stringify(state()));

      // users/cdb (+own.test-), the send child's own uid and gid, one process per uid: the send child runs it
      send('prog@own.test');
      assert.equal(await runnerOf(join(home, 'ppid'), proc.log), sendPid, 'delivered by the send child');

      // the alias user (no users/cdb entry for "pp"): root looks it up again and a worker runs it
      send('pp@mx.own.test');
      const aliasRunner = await runnerOf(join(root, 'alias', 'ppid'), proc.log);
      assert.notEqual(aliasRunner, sendPid, 'alias path through root');
      assert.notEqual(aliasRunner, state().pid, 'root never runs a delivery');

      // two workers per uid: deliveries of the own account go to root's workers again, which run in parallel
      writeFileSync(join(root, 'control', 'localworkers'), '2\n');
      proc.child.kill('SIGHUP');
      await waitFor(
        () => proc.log().includes('quail.reloaded'),
        30_000,
        () => `reloaded\n${proc.log()}`,
      );
      send('prog@own.test');
      const workerRunner = await runnerOf(join(home, 'ppid'), proc.log);
      assert.notEqual(workerRunner, sendPid, 'with localworkers 2, a worker');
      assert.notEqual(workerRunner, state().pid);

      // and back: one per uid again, the send child again
      writeFileSync(join(root, 'control', 'localworkers'), '1\n');
      proc.child.kill('SIGHUP');
      await waitFor(
        () => proc.log().split('quail.reloaded').length === 3,
        30_000,
        () => `reloaded twice\n${proc.log()}`,
      );
      send('prog@own.test');
      assert.equal(await runnerOf(join(home, 'ppid'), proc.log), sendPid);

      // the mailbox itself, delivered in the send child
      send('box@own.test');
      const newDir = join(home, 'box', 'Maildir', 'new');
      await waitFor(
        () => readdirSync(newDir).length === 1,
        30_000,
        () => `box delivered\n${proc.log()}`,
      );
      assert.doesNotMatch(proc.log(), /lspawn\.refused|Unhandled|TypeError/);
    } finally {
      q?.killGroup();
      rmSync(root, { recursive: true, force: true });
    }
  },
);
