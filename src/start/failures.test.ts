// quail start under failures around it: an unreadable control file at SIGHUP, a start that fails late, a run/ that
// tier: system (needs quail start)
// cannot be written, a root killed with a delivery in progress, damaged mail found by recovery, stale pid files.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  listenerPort,
  setupRoot,
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
