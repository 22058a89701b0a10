// ControlFileCache: a changed control file is seen at the next snapshot, a failing read stays a failure, unchanged files are not re-read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Control, ControlFileCache, ControlReadError } from './index.js';

/** A mail root with control/me; `later` is a clock 60 s ahead, so every file counts as settled (not racy). */
function world(): { root: string; file: (name: string, text: string) => string; later: () => bigint } {
  const root = mkdtempSync(join(tmpdir(), 'quail-filecache-'));
  mkdirSync(join(root, 'control'));
  const file = (name: string, text: string): string => {
    const p = join(root, 'control', name);
    writeFileSync(p, text);
    return p;
  };
  file('me', 'mx.example.test\n');
  return { root, file, later: () => (BigInt(Date.now()) + 60_000n) * 1_000_000n };
}

void test('a snapshot reads what a fresh Control reads, for every kind of file', () => {
  const w = world();
  w.file('smtproutes', 'a.test:relay.test:2525\n:smart.test\n');
  w.file('timeoutremote', '30\n');
  w.file('dnsservers', '127.0.0.1\n');
  const cache = new ControlFileCache(w.root, w.later);
  for (let i = 0; i < 2; i++) {
    const s = cache.snapshot();
    const c = new Control(w.root);
    assert.deepEqual(s.single('helohost'), c.single('helohost')); // missing: the default from me
    assert.deepEqual(s.number('timeoutremote'), c.number('timeoutremote'));
    assert.deepEqual(s.number('timeoutconnect'), c.number('timeoutconnect'));
    assert.deepEqual(s.map('smtproutes'), c.map('smtproutes'));
    assert.deepEqual(s.list('dnsservers'), c.list('dnsservers'));
    assert.deepEqual(s.list('replyrules'), c.list('replyrules'));
  }
  // Second round from the cache: me, smtproutes, timeoutremote and dnsservers were read once each.
  assert.equal(cache.reads, 4);
  rmSync(w.root, { recursive: true });
});

void test('a file changed on disk is seen at the next snapshot: in place (same size), replaced, created, removed', () => {
  const w = world();
  const p = w.file('smtproutes', ':one.test\n');
  const OLD = 1_000_000_000; // a whole second: utimes can put it back exactly
  utimesSync(p, OLD, OLD);
  const cache = new ControlFileCache(w.root, w.later);
  const relay = (): string | undefined => cache.snapshot().map('smtproutes').value?.get('')?.value;
  assert.equal(relay(), 'one.test');
  assert.equal(relay(), 'one.test');
  assert.equal(cache.reads, 1, 'unchanged and settled: not read again');

  // In place, same size, same inode, and the mtime put back: only the ctime tells.
  writeFileSync(p, ':two.test\n');
  utimesSync(p, OLD, OLD);
  assert.equal(statSync(p).mtimeMs, OLD * 1000);
  assert.equal(relay(), 'two.test');

  // Replaced by rename (how editors and the directory's sync write): a new inode.
  writeFileSync(`${p}.tmp`, ':three.test\n');
  renameSync(`${p}.tmp`, p);
  assert.equal(relay(), 'three.test');

  rmSync(p);
  assert.equal(cache.snapshot().map('smtproutes').value, null, 'removed: missing again');
  // the fake clock calls control/ settled: make sure the creation below gives it other times than the removal did
  utimesSync(join(w.root, 'control'), OLD, OLD);
  w.file('smtproutes', ':four.test\n');
  assert.equal(relay(), 'four.test', 'created after it was missing');
  rmSync(w.root, { recursive: true });
});

void test('a file changed less than 2 s before it was read is read again at every snapshot', () => {
  const w = world();
  w.file('outgoingip', '127.0.0.2\n');
  const cache = new ControlFileCache(w.root); // the real clock: the file was written just now
  for (let i = 0; i < 3; i++) assert.equal(cache.snapshot().single('outgoingip').value, '127.0.0.2');
  assert.equal(cache.reads, 3, 'outgoingip, three times');
  rmSync(w.root, { recursive: true });
});

void test('a failing read stays a failure (never a cached value, never a default), and is seen fixed', () => {
  const w = world();
  const p = w.file('smtproutes', ':good.test\n');
  const cache = new ControlFileCache(w.root, w.later);
  assert.equal(cache.snapshot().map('smtproutes').value?.get('')?.value, 'good.test');

  // Unreadable (EISDIR) after a good read: the good value is not served.
  rmSync(p);
  mkdirSync(p);
  for (let i = 0; i < 2; i++) {
    assert.throws(
      () => cache.snapshot().map('smtproutes'),
      (err: unknown) => err instanceof ControlReadError && err.temporary,
    );
  }
  rmSync(p, { recursive: true });
  w.file('smtproutes', ':fixed.test\n');
  assert.equal(cache.snapshot().map('smtproutes').value?.get('')?.value, 'fixed.test');

  // The stat itself failing (control/ is a file: ENOTDIR) is a ControlReadError too, not "missing".
  rmSync(join(w.root, 'control'), { recursive: true });
  writeFileSync(join(w.root, 'control'), 'not a directory\n');
  assert.throws(() => cache.snapshot().single('helohost'), ControlReadError);
  assert.throws(() => new Control(w.root).single('helohost'), ControlReadError, 'as Control does');
  rmSync(w.root, { recursive: true });
});

void test('within one snapshot a file is looked at once, as in Control', () => {
  const w = world();
  const p = w.file('timeoutconnect', '5\n');
  const cache = new ControlFileCache(w.root, w.later);
  const s = cache.snapshot();
  assert.equal(s.number('timeoutconnect').value, 5);
  writeFileSync(p, '7\n');
  assert.equal(s.number('timeoutconnect').value, 5, 'the snapshot keeps what it read');
  assert.equal(cache.snapshot().number('timeoutconnect').value, 7, 'the next snapshot sees the change');
  rmSync(w.root, { recursive: true });
});

void test('a missing file is remembered while control/ is unchanged and settled: one stat of control/, none of the file', () => {
  const w = world();
  const cache = new ControlFileCache(w.root, w.later);
  assert.equal(cache.snapshot().single('helohost').value, 'mx.example.test', 'missing: the default from me');
  const after = cache.stats;
  for (let i = 0; i < 3; i++) assert.equal(cache.snapshot().single('helohost').value, 'mx.example.test');
  // me is present: stat'ed at each snapshot; helohost is missing: not stat'ed again
  assert.equal(cache.stats - after, 3, "only control/me was stat'ed again");
  rmSync(w.root, { recursive: true });
});

void test('a file created after it was remembered missing is seen at the next snapshot (control/ changed)', () => {
  const w = world();
  const dir = join(w.root, 'control');
  const OLD = 1_000_000_000;
  utimesSync(dir, OLD, OLD); // the directory's times now differ from any change made below
  const cache = new ControlFileCache(w.root, w.later);
  assert.equal(cache.snapshot().single('helohost').value, 'mx.example.test');
  assert.equal(cache.snapshot().single('helohost').value, 'mx.example.test');
  w.file('helohost', 'other.example.test\n');
  assert.equal(cache.snapshot().single('helohost').value, 'other.example.test');
  // and the cdb a session opens per key (Control.open) the same way
  const s = cache.snapshot();
  assert.equal(s.open('morercpthosts.cdb'), null);
  utimesSync(dir, OLD, OLD);
  w.file('morercpthosts.cdb', 'x');
  const fd = cache.snapshot().open('morercpthosts.cdb');
  assert.notEqual(fd, null, 'created: opened');
  closeSync(fd ?? -1);
  rmSync(w.root, { recursive: true });
});

void test('a dangling symlink in control/ is never remembered missing: its target may appear without control/ changing', () => {
  const w = world();
  const target = join(w.root, 'elsewhere');
  symlinkSync(target, join(w.root, 'control', 'helohost'));
  const cache = new ControlFileCache(w.root, w.later);
  assert.equal(cache.snapshot().single('helohost').value, 'mx.example.test', 'dangling: missing, the default');
  writeFileSync(target, 'linked.example.test\n');
  assert.equal(cache.snapshot().single('helohost').value, 'linked.example.test');
  rmSync(w.root, { recursive: true });
});

void test('control/ changed less than 2 s ago: a missing file is looked at at every snapshot', () => {
  const w = world(); // control/ was written just now
  const cache = new ControlFileCache(w.root); // the real clock
  cache.snapshot().single('helohost');
  const after = cache.stats;
  cache.snapshot().single('helohost');
  assert.equal(cache.stats - after, 2, "me and helohost, both stat'ed again");
  rmSync(w.root, { recursive: true });
});
