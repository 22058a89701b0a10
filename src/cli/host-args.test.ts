// Host arguments through the real CLI: a host starting with `-` (or otherwise not a host name) is refused with exit
// 100 and a line saying what to give, before anything is written.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAIN, setupRoot } from '../../test/support/start.js';

void test('quail held add --host, maildirsmtp HOST and office add HOST: `-x`, bad names and ports refused, exit 100', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-hostargs-'));
  try {
    setupRoot(root, 'mx.example.com', [{ domain: 'example.com', boxes: ['joe'] }]);
    const before = readFileSync(join(root, 'control', 'rcpthosts'), 'latin1');
    const run = (args: string[]): { status: number | null; err: string } => {
      const r = spawnSync(process.execPath, [MAIN, ...args], {
        encoding: 'latin1',
        env: { ...process.env, QUAIL_ROOT: root },
      });
      return { status: r.status, err: `${r.stderr}${r.stdout}` };
    };
    const cases: Array<[string[], RegExp]> = [
      [
        ['held', 'add', 'held.example', '--host', '-x', '--root', root],
        /--host: bad host "-x": give HOST or HOST:PORT/,
      ],
      [['held', 'add', 'held.example', '--host=-oProxyCommand=x:25', '--root', root], /bad host/],
      [['held', 'add', 'held.example', '--host', 'mail.-x.example', '--root', root], /bad host/],
      [['held', 'add', 'held.example', '--host', 'mail.example:0', '--root', root], /bad port/],
      [['maildirsmtp', join(root, 'nowhere'), 'held.example-', 'x-.example'], /bad host "x-.example"/],
      [['held', 'add', 'held.example', '--host', '[mail.example]', '--root', root], /bad host/],
      [['office', 'add', '--root', root, 'atl', '--', '-x:25'], /the office's SMTP server: bad host "-x:25"/],
      [['office', 'add', 'atl', 'a b', '--root', root], /the office's SMTP server: bad host/],
      [['office', 'add', 'atl', '[nonsense]:25', '--root', root], /the office's SMTP server: bad host/],
      [['office', 'add', 'atl', 'mail.example:70000', '--root', root], /the office's SMTP server: bad port/],
    ];
    for (const [args, want] of cases) {
      const r = run(args);
      assert.equal(r.status, 100, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, want, args.join(' '));
      assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
    }
    assert.equal(readFileSync(join(root, 'control', 'rcpthosts'), 'latin1'), before, 'nothing written');
    // a good host still passes the check (office add goes on to the directory)
    const ok = run(['office', 'add', 'atl', 'mail-1.atl.example:2525', '--root', root]);
    assert.equal(ok.status, 0, ok.err);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
