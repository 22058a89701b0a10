// quail start under failures around it: an unreadable control file at SIGHUP, a start that fails late, a run/ that
// tier: system (needs quail start)
// cannot be written, a root killed with a delivery in progress, damaged mail found by recovery, stale pid files.
import assert from 'node:assert/strict';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawn, spawnSync } from 'node:child_process';
import { MAIN } from '../../test/support/start.js';
import {
  initOwner,
  listenerPort,
  processGroup,
  quail,
  setupRoot,
  spawnQuail,
  smtpLockstep,
  startProcess,
  waitFor,
  type QuailProcess,
} from '../../test/support/start.js';

const send = (port: number, subject: string, to = 'box@fail.test'): Promise<string> =>
  smtpLockstep(port, [
    'EHLO client.test',
    'MAIL FROM:<a@client.test>',
    `RCPT TO:<${to}>`,
    'DATA',
    `Subject: ${subject}\r\n\r\nbody\r\n.`,
    'QUIT',
  ]);

const maildirNew = (root: string): string => join(root, 'domains', 'fail.test', 'box', 'Maildir', 'new');
const delivered = (root: string): number => readdirSync(maildirNew(root)).length;

/** A fresh mail root with box@fail.test, and a way to clean up whatever a test started in it. */
function withRoot(name: string, body: (root: string, started: QuailProcess[]) => Promise<void>): () => Promise<void> {
  return async () => {
    const root = mkdtempSync(join(tmpdir(), `quail-${name}-`));
    const started: QuailProcess[] = [];
    try {
      setupRoot(root, 'mx.fail.test', [{ domain: 'fail.test', boxes: ['box'] }]);
      await body(root, started);
    } finally {
      for (const q of started) {
        q.killGroup();
        await q.exited;
      }
      rmSync(root, { recursive: true, force: true });
    }
  };
}

void test(
  'SIGHUP with control/localworkers unreadable (a directory): a warning, root and its children stay, mail flows',
  withRoot('hup', async (root, started) => {
    const q = await startProcess(root);
    started.push(q);
    const port = listenerPort(root, 'smtp');
    const lw = join(root, 'control', 'localworkers');
    rmSync(lw, { force: true });
    mkdirSync(lw);
    try {
      process.kill(q.child.pid ?? 0, 'SIGHUP');
      await waitFor(
        () => /quail\.reloaded/.test(q.log()),
        10_000,
        () => `no quail.reloaded after SIGHUP:\n${q.log()}`,
      );
      assert.match(q.log(), /quail\.warning file=control\/localworkers[^\n]*kept/);
      assert.doesNotMatch(q.log(), /ControlReadError|\n\s+at /, 'a stack trace in the log');
      assert.match(await send(port, 'after-hup'), /\r\n250 [^\r]*\r\n221 /);
      await waitFor(
        () => delivered(root) === 1,
        30_000,
        () => `not delivered after SIGHUP:\n${q.log()}`,
      );
      // and it still stops cleanly
      process.kill(q.child.pid ?? 0, 'SIGTERM');
      assert.deepEqual(await q.exited, { code: 0, signal: null }, q.log());
    } finally {
      rmdirSync(lw);
    }
  }),
);

void test(
  'a start that fails after the listeners are up (run/quail.pid a directory): fatal naming the file, exit 111, nothing left running',
  withRoot('late', async (root, started) => {
    mkdirSync(join(root, 'run'), { recursive: true });
    mkdirSync(join(root, 'run', 'quail.pid'));
    const q = spawnQuail(root);
    started.push(q);
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    void q.exited.then((e) => (exit = e));
    await waitFor(
      () => exit !== undefined,
      30_000,
      () => `quail start did not exit after its start failed:\n${q.log()}`,
    );
    assert.deepEqual(exit, { code: 111, signal: null }, q.log());
    assert.match(q.log(), /quail start: fatal: [^\n]*run\/quail\.pid/);
    // every child stopped with it (they notice the closed channel or were stopped)
    await waitFor(
      () => processGroup(q.child.pid ?? 0).length === 0,
      15_000,
      () => `processes left: ${processGroup(q.child.pid ?? 0).join(' ')}\n${q.log()}`,
    );
    assert.ok(existsSync(join(root, 'run', 'quail.pid')), 'the directory in the way is left alone');
    assert.equal(existsSync(join(root, 'run', 'quail.json')), false, 'quail.json says nothing runs');
  }),
);

void test(
  'run/quail.json cannot be written (a directory in the way of its .tmp): a child dies, a warning, root and mail go on',
  withRoot('state', async (root, started) => {
    const q = await startProcess(root);
    started.push(q);
    const port = listenerPort(root, 'smtp');
    const state = JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as {
      smtpd?: { pid: number };
      pop3d?: { pid: number };
    };
    const child = state.smtpd?.pid ?? state.pop3d?.pid;
    if (child === undefined) return; // not root: no children to die
    mkdirSync(join(root, 'run', 'quail.json.tmp'));
    try {
      process.kill(child, 'SIGKILL');
      await waitFor(
        () => /quail\.warning file=\S*quail\.json step="write state"/.test(q.log()),
        15_000,
        () => `no warning about quail.json:\n${q.log()}`,
      );
      assert.match(await send(port, 'after-crash'), /\r\n250 [^\r]*\r\n221 /);
      await waitFor(
        () => delivered(root) === 1,
        30_000,
        () => `not delivered after the child's death:\n${q.log()}`,
      );
      assert.match(quail(['status', '--root', root]), /^quail is running/);
      process.kill(q.child.pid ?? 0, 'SIGTERM');
      assert.deepEqual(await q.exited, { code: 0, signal: null }, q.log());
    } finally {
      rmSync(join(root, 'run', 'quail.json.tmp'), { recursive: true, force: true });
    }
  }),
);

/** Alive and not a zombie. */
const alive = (pid: number): boolean =>
  existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

void test(
  'root SIGKILLed during a delivery: its send process stops at once (program too), the next start delivers it once',
  withRoot('orphan', async (root, started) => {
    if (process.getuid?.() !== 0) return; // one process: no send child to be orphaned
    const home = join(root, 'domains', 'fail.test');
    const owner = initOwner(root);
    // the program says it started, then waits while `hold` exists; then the Maildir line delivers
    writeFileSync(
      join(home, '.qmail-box'),
      '|echo $$ >> started; while [ -e hold ]; do sleep 0.05; done; exit 0\n./box/Maildir/\n',
      { mode: 0o644 },
    );
    chownSync(join(home, '.qmail-box'), owner.uid, owner.gid);
    writeFileSync(join(home, 'hold'), '');
    const startedLines = (): string[] => {
      try {
        return readFileSync(join(home, 'started'), 'utf8').split('\n').filter(Boolean);
      } catch {
        return [];
      }
    };
    const first = await startProcess(root);
    started.push(first);
    assert.match(await send(listenerPort(root, 'smtp'), 'in-flight'), /\r\n250 [^\r]*\r\n221 /);
    await waitFor(
      () => startedLines().length === 1,
      30_000,
      () => `the program did not start:\n${first.log()}`,
    );
    const state = JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as { send?: { pid: number } };
    const sendPid = state.send?.pid ?? 0;
    const programPid = Number(startedLines()[0]);
    assert.ok(alive(sendPid) && alive(programPid), 'the send process and its program run');
    process.kill(first.child.pid ?? 0, 'SIGKILL'); // root only: its children are orphaned
    await first.exited;
    await waitFor(
      () => !alive(sendPid) && !alive(programPid),
      10_000,
      () => `orphaned send process ${sendPid} or its program ${programPid} still runs`,
    );
    rmSync(join(root, 'run', 'quail.pid'), { force: true }); // what a SIGKILL leaves
    const second = await startProcess(root);
    started.push(second);
    // the interrupted delivery is repeated by the new scheduler
    await waitFor(
      () => startedLines().length === 2,
      30_000,
      () => `the delivery was not repeated:\n${second.log()}`,
    );
    rmSync(join(home, 'hold'));
    await waitFor(
      () => /send\.end /.test(second.log()),
      30_000,
      () => `the message did not end:\n${second.log()}`,
    );
    assert.equal(delivered(root), 1, 'delivered once');
    assert.equal(startedLines().length, 2, 'the program ran twice: the first run cut, the second whole');
  }),
);

void test(
  'recovery moves damaged files to queue/corrupt/: queue.warning with the count, quail status shows it',
  withRoot('corrupt', async (root, started) => {
    const owner = initOwner(root);
    for (const [dir, name] of [
      ['mess', 'not-a-queue-id'],
      ['env', 'also-not-an-id'],
    ] as const) {
      mkdirSync(join(root, 'queue', dir), { recursive: true, mode: 0o700 });
      chownSync(join(root, 'queue', dir), owner.uid, owner.gid);
      writeFileSync(join(root, 'queue', dir, name), 'garbage\n');
      chownSync(join(root, 'queue', dir, name), owner.uid, owner.gid);
    }
    const q = await startProcess(root);
    started.push(q);
    await waitFor(
      () => /queue\.warning corrupt=2 /.test(q.log()),
      10_000,
      () => `no queue.warning:\n${q.log()}`,
    );
    assert.match(q.log(), /queue\.recovered [^\n]*corrupt=2/);
    const status = JSON.parse(quail(['status', '--root', root, '--json'])) as { queue: { corrupt?: number } };
    assert.equal(status.queue.corrupt, 2);
    assert.match(quail(['status', '--root', root]), /^queue\/corrupt: 2 files/m);
  }),
);

void test(
  'quail status during the send process back-off: restarting, not the dead pid; queue/lock keeps the next one waiting',
  withRoot('backoff', async (root, started) => {
    if (process.getuid?.() !== 0) return; // one process: no send child
    const q = await startProcess(root);
    started.push(q);
    type State = { send?: { pid?: number; restarting?: { since: string; backoffMs: number } } };
    const state = (): State => JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as State;
    const dead = state().send?.pid ?? 0;
    assert.ok(dead > 0, 'the send process runs');
    // a stand-in for a second scheduler: it gets queue/lock as soon as the send process dies, so the replacement
    // waits for it (and is restarting all that while)
    const holder = spawn('flock', ['-x', join(root, 'queue', 'lock'), '-c', 'echo locked; exec sleep 60'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true,
    });
    // flock and the sleep holding its descriptor
    const freeLock = (): void => {
      try {
        process.kill(-(holder.pid ?? 0), 'SIGKILL');
      } catch {
        // gone
      }
    };
    let locked = false;
    holder.stdout.on('data', () => (locked = true));
    try {
      process.kill(dead, 'SIGKILL');
      await waitFor(
        () => locked,
        10_000,
        () => `the stand-in never got queue/lock:\n${q.log()}`,
      );
      await waitFor(
        () => state().send?.restarting !== undefined,
        10_000,
        () => `quail.json does not say restarting:\n${JSON.stringify(state())}`,
      );
      const json = JSON.parse(quail(['status', '--root', root, '--json'])) as { state?: State };
      assert.equal(json.state?.send?.pid, undefined, 'no pid while restarting');
      assert.ok((json.state?.send?.restarting?.backoffMs ?? -1) >= 0);
      const text = quail(['status', '--root', root]);
      assert.match(text, /^send process: restarting \(died [^;]+; next start after a back-off of \d+ ms\)/m);
      assert.doesNotMatch(text, new RegExp(`send process: pid ${dead}\\b`));
      freeLock();
      await waitFor(
        () => (state().send?.pid ?? dead) !== dead,
        30_000,
        () => `no new send process after the lock was freed:\n${q.log()}`,
      );
      assert.equal(state().send?.restarting, undefined);
      assert.match(quail(['status', '--root', root]), /^send process: pid \d+ as /m);
    } finally {
      freeLock();
    }
  }),
);

void test(
  'a stale run/quail.pid naming an unrelated live process: status says not running, start goes ahead',
  withRoot('stalepid', async (root, started) => {
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      mkdirSync(join(root, 'run'), { recursive: true });
      writeFileSync(join(root, 'run', 'quail.pid'), `${other.pid ?? 0}\n`);
      const st = spawnSync(process.execPath, [MAIN, 'status', '--root', root], { encoding: 'utf8' });
      assert.equal(st.status, 1, st.stdout + st.stderr);
      assert.match(st.stdout, /^quail is not running/);
      const q = await startProcess(root);
      started.push(q);
      assert.match(quail(['status', '--root', root]), new RegExp(`^quail is running \\(pid ${q.child.pid ?? 0}\\)`));
    } finally {
      other.kill('SIGKILL');
    }
  }),
);
