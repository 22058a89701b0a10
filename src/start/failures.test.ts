// quail start under failures around it: an unreadable control file at SIGHUP, a start that fails late, a run/ that
// tier: system (needs quail start)
// cannot be written, a root killed with a delivery in progress, damaged mail found by recovery, stale pid files.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
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
