// quail queue-inject's queue: --queue, else QUAIL_QUEUE (what smtpd or inject chose), else control/queuerules; a name
// control/queues does not define is qmail-queue's exit 61.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAIN } from '../../test/support/start.js';

void test('queue-inject joins --queue, else QUAIL_QUEUE, else the rules; an undefined queue is exit 61', () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-qi-'));
  const root = join(dir, 'root');
  try {
    const init = spawnSync(process.execPath, [MAIN, 'init', '--root', root, '--me', 'mx.example.com'], {
      encoding: 'utf8',
    });
    assert.equal(init.status, 0, init.stderr);
    writeFileSync(join(root, 'control', 'queues'), 'slow lifetime=3600\nfast lifetime=600\n');
    writeFileSync(join(root, 'control', 'queuerules'), 'sender rules.test slow\n');
    const run = (
      from: string,
      args: string[],
      env: Record<string, string> = {},
    ): { status: number | null; err: string } => {
      const envFile = join(dir, 'env');
      writeFileSync(envFile, `F${from}\0Tfriend@far.test\0\0`);
      const fd = openSync(envFile, 'r');
      try {
        const r = spawnSync(process.execPath, [MAIN, 'queue-inject', '--root', root, ...args], {
          input: 'Subject: q\n\nbody\n',
          stdio: ['pipe', fd, 'pipe'],
          env: { ...process.env, ...env },
          encoding: 'utf8',
        });
        return { status: r.status, err: r.stderr };
      } finally {
        closeSync(fd);
      }
    };
    const list = (queue: string): string =>
      spawnSync(process.execPath, [MAIN, 'queue', 'list', '--queue', queue, '--root', root], { encoding: 'utf8' })
        .stdout;
    assert.equal(run('a@rules.test', []).status, 0);
    assert.equal(run('b@rules.test', [], { QUAIL_QUEUE: 'fast' }).status, 0);
    assert.equal(run('c@rules.test', ['--queue', 'fast'], { QUAIL_QUEUE: 'slow' }).status, 0);
    assert.equal(run('d@other.test', []).status, 0);
    const bad = run('e@rules.test', ['--queue', 'nosuch']);
    assert.equal(bad.status, 61);
    assert.match(bad.err, /queue nosuch is not defined in control\/queues/);
    assert.match(list('slow'), /a@rules\.test/);
    assert.doesNotMatch(list('slow'), /<[bcd]@/);
    assert.match(list('fast'), /b@rules\.test[^]*c@rules\.test|c@rules\.test[^]*b@rules\.test/);
    assert.match(list('default'), /d@other\.test/);
    assert.doesNotMatch(list('default'), /<e@rules\.test/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
