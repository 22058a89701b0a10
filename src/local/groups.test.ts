// ProgramGroups, the supervisor's side of the program groups: what a delivering process says is taken only when well
// formed, and only a group that still holds a process of the delivering uid is ended when that process is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { GroupEndings, ProgramGroups } from './groups.js';

/** A `sleep` leading its own process group, as runProgram's /bin/sh does. */
function group(): ChildProcess {
  return spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
}

const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;

void test('ProgramGroups: garbage from a delivering process is taken and ignored; other messages are left to the caller', async () => {
  const uid = process.getuid?.() ?? 0;
  const c = group();
  try {
    const pgid = c.pid ?? 0;
    const groups = new ProgramGroups(uid, 50);
    assert.equal(groups.take({ type: 'result', id: 1 }), false, 'not a program note: the caller handles it');
    assert.equal(groups.take(null), false);
    for (const bad of [
      { type: 'program', pgid: String(pgid), running: true },
      { type: 'program', pgid: pgid + 0.5, running: true },
      { type: 'program', pgid, running: 'yes' },
      { type: 'program', pgid: -pgid, running: true },
      { type: 'program', pgid: 1, running: true },
      { type: 'program', pgid: 0, running: true },
    ])
      assert.equal(groups.take(bad), true, `a malformed note is swallowed: ${JSON.stringify(bad)}`);
    await groups.processGone();
    assert.equal(alive(c), true, 'no malformed note registered the group');
  } finally {
    c.kill('SIGKILL');
  }
});

void test('ProgramGroups: a gone process ends its registered groups, only those with a process of its uid', async () => {
  const uid = process.getuid?.() ?? 0;
  const mine = group();
  const foreign = group();
  const ended = group();
  try {
    const endings = new GroupEndings();
    const groups = new ProgramGroups(uid, 50);
    groups.take({ type: 'program', pgid: mine.pid, running: true });
    groups.take({ type: 'program', pgid: ended.pid, running: true });
    groups.take({ type: 'program', pgid: ended.pid, running: false }); // it said the group ended: not touched
    // the same pgid under another uid's supervisor: a group number that is not that uid's is never signalled
    const other = new ProgramGroups(uid + 1, 50);
    other.take({ type: 'program', pgid: foreign.pid, running: true });
    const exited = once(mine, 'exit');
    endings.gone(groups);
    endings.gone(other);
    await endings.settled();
    await exited;
    assert.equal(mine.signalCode, 'SIGTERM', 'the registered group got SIGTERM');
    assert.equal(alive(foreign), true, 'a group with no process of the uid is left alone');
    assert.equal(alive(ended), true, 'a group said ended is not signalled');
    // a note that comes after the death (read after the exit was seen) ends its group at once
    const late = once(foreign, 'exit');
    const after = new ProgramGroups(uid, 50);
    endings.gone(after);
    after.take({ type: 'program', pgid: foreign.pid, running: true });
    await endings.settled();
    await late;
    assert.equal(foreign.signalCode, 'SIGTERM');
  } finally {
    for (const c of [mine, foreign, ended]) c.kill('SIGKILL');
  }
});
