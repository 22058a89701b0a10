// LastLogins over a real SQLite directory: one transaction per window, the latest time of each login, nothing lost
// at a write in progress or at close, a failing directory logged and tried again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDomain, openDirectory, type Directory, type LoginTime } from '../directory/index.js';
import { LastLogins } from './last-login.js';
import type { EventLog } from './log.js';
import { waitFor } from '../../test/support/wait.js';

const acct = { user: 'nobody', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

interface World {
  root: string;
  dir: Directory;
  /** Each recordLogins call's batch, in order. */
  batches: LoginTime[][];
  events: string[];
  log: EventLog;
  done: () => Promise<void>;
}

async function world(): Promise<World> {
  const root = mkdtempSync(join(tmpdir(), 'quail-lastlogin-'));
  const dir = await openDirectory({ root });
  await createDomain({ root, dir }, { name: 'example.com', account: acct });
  for (const local of ['joe', 'ann', 'bob']) await dir.addMailbox({ domain: 'example.com', local, passwordHash: '' });
  const batches: LoginTime[][] = [];
  const real = dir.recordLogins.bind(dir);
  dir.recordLogins = (logins) => {
    batches.push([...logins]);
    return real(logins);
  };
  const events: string[] = [];
  return {
    root,
    dir,
    batches,
    events,
    log: { event: (name, fields) => void events.push(`${name} ${JSON.stringify(fields)}`) },
    done: async () => {
      await dir.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

const at = (s: number): Date => new Date(1_700_000_000_000 + s * 1000);

async function lastLogin(w: World, local: string): Promise<Date | null | undefined> {
  return (await w.dir.getMailbox('example.com', local))?.lastLogin;
}

void test('LastLogins: the logins of a window are one recordLogins, with the latest time of each', async () => {
  const w = await world();
  const ll = new LastLogins(w.root, w.log, { delayMs: 100, open: () => Promise.resolve(w.dir) });
  try {
    for (let i = 0; i < 200; i++) ll.note(i % 2 === 0 ? 'joe@example.com' : 'ann@example.com', at(i));
    ll.note('joe@example.com', at(5)); // earlier than joe's latest in this window: not what is written
    ll.note('bob@example.com', new Date('not a time')); // nothing to write: left out, not the whole batch failing
    ll.note('nobody', at(6));
    assert.equal(w.batches.length, 0, 'nothing is written before the window ends');
    await waitFor(() => w.batches.length === 1, 5_000, 'the window was written');
    assert.deepEqual(w.batches[0]?.map((x) => `${x.local}@${x.domain} ${x.at.getTime()}`).sort(), [
      `ann@example.com ${at(199).getTime()}`,
      `joe@example.com ${at(198).getTime()}`,
    ]);
    assert.deepEqual(await lastLogin(w, 'joe'), at(198));
    assert.deepEqual(await lastLogin(w, 'ann'), at(199));
    assert.equal(await lastLogin(w, 'bob'), null);

    // A login noted while a batch is being written is not lost: it goes in the next window's batch.
    let release = (): void => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const record = w.dir.recordLogins.bind(w.dir);
    let writing = false;
    w.dir.recordLogins = async (logins) => {
      writing = true;
      await gate;
      return record(logins);
    };
    ll.note('bob@example.com', at(300));
    await waitFor(() => writing, 5_000, 'a write is in progress');
    ll.note('joe@example.com', at(301));
    release();
    await waitFor(() => w.batches.length === 3, 5_000, 'both batches were written');
    assert.deepEqual(
      w.batches.slice(1).map((b) => b.map((x) => x.local)),
      [['bob'], ['joe']],
    );
    assert.deepEqual(await lastLogin(w, 'bob'), at(300));
    assert.deepEqual(await lastLogin(w, 'joe'), at(301));
    assert.deepEqual(w.events, []);
  } finally {
    await ll.close();
    await w.done();
  }
});

void test('LastLogins: a failing directory is logged and opened again; close writes what waits at once', async () => {
  const w = await world();
  let opens = 0;
  const ll = new LastLogins(w.root, w.log, {
    delayMs: 50,
    open: () => (++opens === 1 ? Promise.reject(new Error('database is down')) : openDirectory({ root: w.root })),
  });
  // the default: the root's directory, opened when first needed
  const slow = new LastLogins(w.root, w.log, { delayMs: 3_600_000 });
  try {
    ll.note('joe@example.com', at(1));
    ll.note('ann@example.com', at(2));
    await waitFor(() => w.events.length === 1, 5_000, 'the failure was logged');
    assert.match(w.events[0] ?? '', /^pop3\.warning .*"logins":2.*last-login times not recorded: database is down/);
    ll.note('joe@example.com', at(3));
    await waitFor(() => opens === 2, 5_000, 'the next window opened the directory again');
    await ll.close();
    assert.deepEqual(await lastLogin(w, 'joe'), at(3));
    assert.equal(await lastLogin(w, 'ann'), null, 'the failed window was dropped, not retried');

    slow.note('bob@example.com', at(7));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await lastLogin(w, 'bob'), null, 'an hour-long window has not ended');
    await slow.close();
    assert.deepEqual(await lastLogin(w, 'bob'), at(7), 'close wrote the waiting time');
    assert.equal(w.events.length, 1);

    // A write that fails is logged, and the next window gets a directory opened afresh.
    const opened: Directory[] = [];
    const flaky = new LastLogins(w.root, w.log, {
      delayMs: 50,
      open: async () => {
        const d = await openDirectory({ root: w.root });
        opened.push(d);
        if (opened.length === 1) d.recordLogins = () => Promise.reject(new Error('disk I/O error'));
        return d;
      },
    });
    flaky.note('ann@example.com', at(20));
    await waitFor(() => w.events.length === 2, 5_000, 'the failed write was logged');
    assert.match(w.events[1] ?? '', /^pop3\.warning .*"logins":1.*disk I\/O error/);
    flaky.note('ann@example.com', at(21));
    await waitFor(() => opened.length === 2, 5_000, 'the next window opened the directory again');
    await flaky.close();
    assert.deepEqual(await lastLogin(w, 'ann'), at(21));
  } finally {
    await ll.close();
    await slow.close();
    await w.done();
  }
});
