// Disk failures simulated honestly: a tiny tmpfs (ENOSPC), a read-only remount (EROFS), a directory replaced by a file.
// tier: system (needs mount)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QuailError } from '../core/index.js';
import { openQueue } from './index.js';

function mountTiny(dir: string): string | undefined {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0
    ? undefined
    : `cannot mount a tmpfs here (${(r.stderr || r.error?.message || 'not root').trim()})`;
}
const umount = (dir: string): void => void spawnSync('umount', [dir]);
const temp =
  (re: RegExp) =>
  (e: unknown): boolean =>
    e instanceof QuailError && e.temporary && re.test(e.message);

void test('ENOSPC: a full queue file system is a clear temporary error and leaves no message', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'quail-enospc-'));
  const qdir = join(root, 'queue');
  mkdirSync(qdir);
  const skip = mountTiny(qdir);
  if (skip) {
    t.skip(skip);
    rmSync(root, { recursive: true, force: true });
    return;
  }
  // closed before the unmount: the queue keeps mess/ and env/ open for their fsyncs (durable.ts DirSyncer)
  let q: Awaited<ReturnType<typeof openQueue>> | undefined;
  try {
    q = await openQueue(root);
    await assert.rejects(
      q.inject({
        sender: 'a@x',
        recipients: ['b@y'],
        data: Buffer.alloc(200_000, 0x41),
        injector: { kind: 'uid', uid: 0 },
      }),
      temp(/queue file system is full \(ENOSPC\)/),
    );
    for (const d of ['tmp', 'mess', 'env']) assert.deepEqual(readdirSync(join(qdir, d)), [], d);
    // the space was given back: a small message fits
    const id = await q.inject({
      sender: 'a@x',
      recipients: ['b@y'],
      data: Buffer.from('small\n'),
      injector: { kind: 'network' },
    });
    assert.deepEqual(await q.ids(), [id]);
  } finally {
    q?.close();
    umount(qdir);
    rmSync(root, { recursive: true, force: true });
  }
});

void test('EROFS: a read-only queue is a clear temporary error; nothing committed', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'quail-erofs-'));
  const qdir = join(root, 'queue');
  mkdirSync(qdir);
  const skip = mountTiny(qdir);
  if (skip) {
    t.skip(skip);
    rmSync(root, { recursive: true, force: true });
    return;
  }
  try {
    const q = await openQueue(root);
    const r = spawnSync('mount', ['-o', 'remount,ro', qdir], { encoding: 'utf8' });
    if (r.status !== 0) {
      t.skip(`cannot remount read-only: ${r.stderr.trim()}`);
      return;
    }
    await assert.rejects(
      q.inject({ sender: 'a@x', recipients: ['b@y'], data: Buffer.from('x\n'), injector: { kind: 'network' } }),
      temp(/read-only \(EROFS\)/),
    );
    assert.deepEqual(await q.ids(), []);
  } finally {
    umount(qdir);
    rmSync(root, { recursive: true, force: true });
  }
});

void test('a queue directory replaced by a file: temporary error, no committed message, tmp cleaned', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-notdir-'));
  try {
    const q = await openQueue(root);
    rmSync(join(q.dir, 'env'), { recursive: true });
    writeFileSync(join(q.dir, 'env'), 'not a directory');
    await assert.rejects(
      q.inject({ sender: 'a@x', recipients: ['b@y'], data: Buffer.from('x\n'), injector: { kind: 'network' } }),
      temp(/not a directory \(ENOTDIR\)/),
    );
    assert.deepEqual(readdirSync(join(q.dir, 'tmp')), []);
    assert.deepEqual(readdirSync(join(q.dir, 'mess')), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
