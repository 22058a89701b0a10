// The progress bars end to end: on a terminal (a pty from util-linux `script`) the long commands draw one on stderr;
// through a pipe they print only their own lines.
// tier: system (needs script from util-linux)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAIN, quail } from '../../test/support/start.js';

const have = spawnSync('script', ['--version']).status === 0;
const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

void test(
  'directory check, queue export and backup draw a bar on a terminal and none on a pipe',
  { skip: !have && process.env['QUAIL_REQUIRE_TOOLS'] !== '1' && 'apt-get install util-linux (script)' },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'quail-tty-'));
    chmodSync(dir, 0o755);
    const root = join(dir, 'root');
    try {
      quail(['init', '--root', root, '--me', 'mx.tty.test']);
      quail(['domain', 'add', 'a.test', '--root', root]);
      quail(['domain', 'add', 'b.test', '--root', root]);
      // two queued messages (nothing runs to deliver them)
      for (const n of [1, 2]) quail(['inject', '--root', root, 'joe@a.test'], `Subject: ${n}\n\nhi\n`);
      const runs: Array<[string[], RegExp]> = [
        [['directory', 'check'], /directory check \[[^\]]*\] 2\/2 domains/],
        [['queue', 'export', join(dir, 'q.export')], /queue export \[[^\]]*\] 2\/2 messages/],
        [['backup', join(dir, 'b.tgz')], /backup \[[^\]]*\] 1\/1 archive \(tar\)/],
      ];
      for (const [args, bar] of runs) {
        const cmd = [process.execPath, MAIN, ...args, '--root', root].map(sh).join(' ');
        const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8' });
        assert.equal(tty.status, 0, tty.stdout);
        assert.match(tty.stdout, bar, args.join(' '));
        rmSync(join(dir, 'q.export'), { force: true });
        rmSync(join(dir, 'b.tgz'), { force: true });
        const piped = spawnSync(process.execPath, [MAIN, ...args, '--root', root], { encoding: 'utf8' });
        assert.equal(piped.status, 0, piped.stderr);
        assert.equal(piped.stderr, '', `no bar without a terminal: ${args.join(' ')}`);
        assert.doesNotMatch(piped.stdout, /\[[\u2588\u2591]/);
        rmSync(join(dir, 'q.export'), { force: true });
        rmSync(join(dir, 'b.tgz'), { force: true });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
