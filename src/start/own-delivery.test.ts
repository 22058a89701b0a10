// As root: a mailbox of the send child's own account, found in users/cdb, is delivered by the send child itself; the
// alias path and, after control/localworkers 2 and a reload, that same mailbox go through root's lspawn to a worker;
// a send child killed in the middle of such deliveries loses no accepted message.
// tier: system (needs quail start as root, swaks)
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  listenerPort,
  setupRoot,
  smtpLockstep,
  startProcess,
  swaks,
  type QuailProcess,
} from '../../test/support/start.js';
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

void test(
  'as root: the send child SIGKILLed while it delivers its own mailboxes itself: it is replaced, and every accepted message arrives whole',
  { skip: process.getuid?.() !== 0 ? 'needs root (without it every delivery runs in quail start itself)' : false },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'quail-own-kill-'));
    let q: QuailProcess | undefined;
    try {
      setupRoot(root, 'mx.own.test', [{ domain: 'own.test', boxes: ['box'] }]);
      writeFileSync(join(root, 'control', 'localworkers'), '1\n');
      // each delivery takes a tenth of a second (a program line first), so the kills land while deliveries run
      writeFileSync(join(home(root), '.qmail-box'), '|sleep 0.1\n./box/Maildir/\n');
      q = await startProcess(root);
      const proc = q;
      const state = (): State => JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as State;
      const port = listenerPort(root, 'smtp');
      const TOTAL = 150;
      const body = 'x'.repeat(60);
      // five clients in lockstep, 30 messages each; each message carries its number and ends in a known line
      const client = (c: number): Promise<string> => {
        const lines = ['HELO kill.test'];
        for (let i = c; i < TOTAL; i += 5)
          lines.push(
            'MAIL FROM:<a@kill.test>',
            'RCPT TO:<box@own.test>',
            'DATA',
            `Subject: n${i}\r\n\r\n${body}\r\nend-${i}\r\n.`,
          );
        lines.push('QUIT');
        return smtpLockstep(port, lines);
      };
      const sending = Promise.all([0, 1, 2, 3, 4].map(client));
      // kill the send child twice while the messages are being delivered, each time once its successor runs
      const newDir = join(home(root), 'box', 'Maildir', 'new');
      for (const after of [20, 70]) {
        await waitFor(
          () => readdirSync(newDir).length >= after,
          60_000,
          () => `${after} delivered\n${proc.log()}`,
        );
        assert.ok(readdirSync(newDir).length < TOTAL, 'killed while deliveries remain');
        const pid = state().send?.pid ?? 0;
        assert.ok(pid > 0);
        process.kill(pid, 'SIGKILL');
        await waitFor(
          () => (state().send?.pid ?? pid) !== pid,
          60_000,
          () => `send child replaced\n${proc.log()}`,
        );
      }
      const replies = await sending;
      const accepted = replies.join('').split('\r\n250 ok ').length - 1;
      assert.equal(accepted, TOTAL, replies.join('\n---\n'));
      // every accepted message at least once (a delivery cut by the kill is repeated), each file whole
      const seen = new Set<number>();
      await waitFor(
        () => {
          for (const f of readdirSync(newDir)) {
            const text = readFileSync(join(newDir, f), 'latin1');
            const m = /\nSubject: n(\d+)\n/.exec(text);
            assert.ok(m, `a message of this test in ${f}`);
            assert.ok(text.endsWith(`${body}\nend-${m[1] ?? ''}\n`), `${f} whole`);
            seen.add(Number(m[1]));
          }
          return seen.size === TOTAL;
        },
        60_000,
        () => `all ${TOTAL} delivered (${seen.size})\n${proc.log()}`,
      );
      assert.match(proc.log(), /sendd\.crashed/);
      assert.doesNotMatch(proc.log(), /Unhandled|TypeError/);
    } finally {
      q?.killGroup();
      rmSync(root, { recursive: true, force: true });
    }
  },
);

const home = (root: string): string => join(root, 'domains', 'own.test');
