// The directory's commands on a full disk (SQLite's file on a filled tmpfs): exit 111 with a text saying the disk is
// full and what to do, nothing half-written (control files and users/assign still in step with the database), and the
// same command works once space is back.
// tier: system (needs root and a tmpfs mount)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAIN, quail } from '../../test/support/start.js';

const asRoot = process.getuid?.() === 0;

void test(
  'full disk: user add and domain add exit 111 saying the disk is full, change nothing, and work once space is back',
  { skip: !asRoot && 'needs root (tmpfs mount)' },
  (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'quail-cli-diskfull-'));
    const root = join(dir, 'root');
    mkdirSync(root, { mode: 0o755 });
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0755', 'tmpfs', root], { encoding: 'utf8' });
    if (m.status !== 0) {
      t.skip(`cannot mount a tmpfs (${m.stderr.trim()})`);
      rmSync(dir, { recursive: true, force: true });
      return;
    }
    try {
      quail(['init', '--root', root, '--me', 'mx.df.test']);
      quail(['domain', 'add', 'df.test', '--root', root]);
      const files = ['control/rcpthosts', 'control/virtualdomains', 'users/assign'];
      const before = files.map((f) => readFileSync(join(root, f), 'utf8'));
      const filler = join(root, 'filler');
      const fd = openSync(filler, 'w', 0o600);
      try {
        for (const block = Buffer.alloc(4096); ;) writeSync(fd, block);
      } catch (err) {
        if (!(err instanceof Error && 'code' in err && err.code === 'ENOSPC')) throw err;
      } finally {
        closeSync(fd);
      }
      for (const args of [
        ['user', 'add', 'ann@df.test', '--password', 'secretpw'],
        ['domain', 'add', 'two.test'],
      ]) {
        const r = spawnSync(process.execPath, [MAIN, ...args, '--root', root], { encoding: 'utf8' });
        assert.equal(r.status, 111, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /^quail [a-z ]+: fatal: .*full.*: free some space/m, r.stderr);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      }
      assert.deepEqual(
        files.map((f) => readFileSync(join(root, f), 'utf8')),
        before,
        'control files unchanged',
      );
      assert.match(quail(['directory', 'check', '--root', root]), /no drift/);

      unlinkSync(filler);
      quail(['user', 'add', 'ann@df.test', '--password', 'secretpw', '--root', root]);
      quail(['domain', 'add', 'two.test', '--root', root]);
      assert.match(readFileSync(join(root, 'control/rcpthosts'), 'utf8'), /^two\.test$/m);
    } finally {
      spawnSync('umount', [root]);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
