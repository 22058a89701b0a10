// quail backup / restore through the real CLI: a root with a domain, a mailbox, a delivered and a queued message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { authenticate } from '../directory/index.js';
import { openQueue } from '../queue/index.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'main.js');
const q = (args: string[], input = '', env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> =>
  spawnSync(process.execPath, [MAIN, ...args], { input, encoding: 'utf8', env: { ...process.env, ...env } });
function ok(r: SpawnSyncReturns<string>): string {
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function queued(root: string): Promise<Array<{ sender: string; recipients: string[]; body: string }>> {
  const qu = await openQueue(root, { create: false });
  try {
    const out = [];
    for (const id of await qu.ids()) {
      const e = await qu.envelope(id);
      if (e)
        out.push({
          sender: e.sender,
          recipients: e.recipients.map((r) => r.original),
          body: readFileSync(qu.messagePath(id), 'latin1'),
        });
    }
    return out;
  } finally {
    qu.close();
  }
}

void test('quail backup then restore into a fresh root: no drift, the mail, the queue, the password', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'quail-backup-'));
  const root = join(tmp, 'a');
  const fresh = join(tmp, 'b');
  const archive = join(tmp, 'root.tar.gz');
  try {
    ok(q(['init', '--root', root, '--me', 'mx.test.example']));
    ok(q(['domain', 'add', 'example.com', '--root', root]));
    ok(q(['user', 'add', 'joe@example.com', '--password', 'secret', '--root', root]));
    const env = {
      EXT: 'joe',
      HOST: 'example.com',
      LOCAL: 'example.com-joe',
      SENDER: 'ann@other.example',
      RPLINE: 'Return-Path: <ann@other.example>\n',
      DTLINE: 'Delivered-To: example.com-joe@example.com\n',
    };
    ok(q(['vdeliver', '', 'bounce-no-mailbox', '--root', root], 'Subject: kept\n\nbody\n', env));
    ok(
      q(
        ['inject', '-f', 'joe@example.com', 'bob@remote.example', '--root', root],
        'Subject: waiting\n\nin the queue\n',
      ),
    );
    const before = await queued(root);
    assert.equal(before.length, 1);

    assert.match(
      ok(q(['backup', archive, '--root', root])),
      /directory sqlite, 1 queued messages, control users alias domains/,
    );
    assert.match(
      spawnSync('tar', ['-tzf', archive], { encoding: 'utf8' }).stdout,
      /^quail-backup\.json\ndirectory\.sqlite\nqueue\.export\ncontrol\//,
    );
    const again = q(['backup', archive, '--root', root]);
    assert.deepEqual([again.status, /exists/.test(again.stderr)], [100, true], again.stderr);
    // a file in a directory that does not exist: said so, no stack trace, no system call's message
    const nowhere = q(['backup', join(tmp, 'no-such-dir', 'b.tgz'), '--root', root]);
    assert.equal(nowhere.status, 100, nowhere.stderr);
    assert.match(
      nowhere.stderr,
      /^quail backup: fatal: cannot write .*b\.tgz: the directory .*no-such-dir does not exist/,
    );

    ok(q(['restore', archive, '--root', fresh]));
    assert.deepEqual(
      (JSON.parse(ok(q(['directory', 'check', '--root', fresh, '--json']))) as { drift: unknown[] }).drift,
      [],
      'no drift',
    );
    const nd = join(fresh, 'domains', 'example.com', 'joe', 'Maildir', 'new');
    assert.deepEqual(
      readdirSync(nd).map((f) => readFileSync(join(nd, f), 'latin1')),
      [`${env.RPLINE}${env.DTLINE}Subject: kept\n\nbody\n`],
    );
    assert.deepEqual(await queued(fresh), before);
    assert.equal((await authenticate(fresh, 'joe@example.com', 'secret'))?.local, 'joe');
    assert.equal(await authenticate(fresh, 'joe@example.com', 'wrong'), null);

    // A non-empty root is refused without --force.
    const busy = join(tmp, 'c');
    mkdirSync(busy);
    writeFileSync(join(busy, 'something'), 'x');
    const refused = q(['restore', archive, '--root', busy]);
    assert.deepEqual([refused.status, /not empty.*--force/.test(refused.stderr)], [100, true], refused.stderr);
    ok(q(['restore', archive, '--root', busy, '--force']));
    assert.equal((await authenticate(busy, 'joe@example.com', 'secret'))?.local, 'joe');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
