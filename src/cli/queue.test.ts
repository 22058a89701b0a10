// Black-box tests of `quail queue ...` (the built dist/cli/main.js) against a real queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openQueue } from '../queue/index.js';
import { formatAge } from './queue.js';
import { waitFor } from '../../test/support/wait.js';

const MAIN = join(process.cwd(), 'dist', 'cli', 'main.js');

function quail(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { encoding: 'utf8' }, (error, out, err) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, out, err });
    });
  });
}

void test('formatAge: golden table', () => {
  const table: Array<[number, string]> = [
    [0, '0s'],
    [59, '59s'],
    [61, '1m1s'],
    [3600, '1h0m'],
    [7980, '2h13m'],
    [90000, '1d1h'],
    [-5, '0s'],
  ];
  for (const [s, want] of table) assert.equal(formatAge(s), want);
});

void test('quail queue: stat, list, show, hold, release, delete, flush, export, import', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-cli-queue-'));
  const root = join(dir, 'root');
  try {
    const missing = await quail('queue', 'stat', '--root', join(dir, 'nothing'));
    assert.equal(missing.code, 111);
    assert.match(missing.err, /^quail queue stat: fatal: no queue at .*quail init/);

    const q = await openQueue(root);
    const a = await q.inject({
      sender: 'alice@example.com',
      recipients: ['bob@example.net'],
      data: Buffer.from('Subject: one\n\nbody one\n'),
      injector: { kind: 'uid', uid: 42 },
    });
    const b = await q.inject({
      sender: '',
      recipients: ['carol@example.org', 'dave@example.org'],
      data: Buffer.from('Subject: two\n\nbody two\n'),
      injector: { kind: 'bounce' },
    });
    await q.updateRecipients(b, [
      {
        original: 'carol@example.org',
        channel: 'remote',
        address: 'carol@example.org',
        status: 'pending',
        attempts: 1,
        nextAttempt: 4102444800,
        lastResult: 'deferral',
        lastReport: 'Connection refused. (#4.4.1)',
      },
      {
        original: 'dave@example.org',
        channel: 'remote',
        address: 'dave@example.org',
        status: 'failed',
        attempts: 1,
        lastResult: 'failure',
        lastReport: 'Sorry, no mailbox here by that name. (#5.1.1)',
      },
    ]);

    const stat = await quail('queue', 'stat', '--root', root);
    assert.equal(stat.code, 0);
    assert.match(
      stat.out,
      /^messages in queue: 2\nmessages in queue but not yet preprocessed: 1\nmessages held: 0\nrecipients: todo 1, pending 1, done 0, failed 1\n/,
    );

    const list = await quail('queue', 'list', '--root', root);
    assert.equal(list.code, 0);
    assert.match(
      list.out,
      new RegExp(`#${a}  \\d+  <alice@example\\.com>  age \\S+\\n\\ttodo\\t-\\tbob@example\\.net\\n`),
    );
    assert.match(
      list.out,
      new RegExp(
        `#${b}  \\d+  <>  age \\S+\\n\\tpending\\tremote\\tcarol@example\\.org\\tattempts 1; next in \\S+; deferral: Connection refused\\. \\(#4\\.4\\.1\\)\\n\\tfailed\\tremote\\tdave@example\\.org\\tattempts 1; failure: Sorry`,
      ),
    );

    const show = await quail('queue', 'show', a, '--root', root);
    assert.equal(show.code, 0);
    assert.match(show.out, /sender: <alice@example\.com>/);
    assert.match(
      show.out,
      /--- message ---\nReceived: \(qmail \d+ invoked by uid 42\); .*\nSubject: one\n\nbody one\n$/,
    );
    const bad = await quail('queue', 'show', '../../etc/passwd', '--root', root);
    assert.equal(bad.code, 100);
    assert.match(bad.err, /not a queue id/);
    const gone = await quail('queue', 'show', '0000000aa-aaaaaaaaaaaa', '--root', root);
    assert.equal(gone.code, 100);
    assert.match(gone.err, /is not in the queue/);

    assert.equal((await quail('queue', 'hold', a, '--root', root)).code, 0);
    assert.equal((await q.read(a))?.held, true);
    assert.match((await quail('queue', 'list', '--root', root)).out, new RegExp(`#${a} .*\\[held\\]`));
    assert.equal((await quail('queue', 'release', a, '--root', root)).code, 0);
    assert.equal((await q.read(a))?.held, false);

    const idle = await quail('queue', 'flush', '--root', root);
    assert.equal(idle.code, 0);
    assert.match(idle.out, /no scheduler is running/);
    const heard: string[] = [];
    const unsub = q.watch((what, domain) => heard.push(`${what} ${domain ?? '*'}`));
    await waitFor(() => readdirSync(join(q.dir, 'wake')).length > 0, 10_000, 'the wake socket', 10);
    const flush = await quail('queue', 'flush', '--domain', 'example.org', '--root', root);
    assert.match(flush.out, /flush requested for example\.org: 1 scheduler\(s\) woken/);
    await waitFor(
      () => heard.includes('flush example.org'),
      10_000,
      () => heard.join(','),
      10,
    );
    unsub();

    const file = join(dir, 'moved.q');
    // into a directory that does not exist: said so (not "a queue directory is missing"), nothing removed
    const nowhere = await quail('queue', 'export', join(dir, 'no-such-dir', 'x.q'), '--delete', '--root', root);
    assert.equal(nowhere.code, 100, nowhere.err);
    assert.match(
      nowhere.err,
      /^quail queue export: fatal: cannot write .*x\.q: the directory .*no-such-dir does not exist/,
    );
    assert.equal((await q.ids()).length, 2);
    const exp = await quail('queue', 'export', file, '--delete', '--root', root);
    assert.equal(exp.code, 0, exp.err);
    assert.match(exp.out, /exported 2 message\(s\)/);
    assert.deepEqual(await q.ids(), []);
    const root2 = join(dir, 'root2');
    await openQueue(root2);
    const imp = await quail('queue', 'import', file, '--root', root2);
    assert.equal(imp.code, 0, imp.err);
    assert.match(imp.out, /imported 2 message\(s\)/);
    const list2 = await quail('queue', 'list', '--root', root2);
    // still to be delivered: routed again by this root's scheduler (`-` until then); the failed one keeps its record
    assert.match(
      list2.out,
      new RegExp(`#${b} .*\\n\\tpending\\t-\\tcarol@example\\.org.*\\n\\tfailed\\tremote\\tdave@example\\.org`),
    );

    assert.equal((await quail('queue', 'delete', a, '--root', root2)).code, 0);
    assert.match((await quail('queue', 'stat', '--root', root2)).out, /^messages in queue: 1\n/);
    const rec = await quail('queue', 'recover', '--verify', '--root', root2);
    assert.equal(rec.code, 0);
    assert.match(rec.out, /^kept 1, undone 0/);
    q.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
