// quail systemd-unit's output checked by systemd itself (systemd-analyze verify): no error and no warning.
// tier: system (needs systemd-analyze from Debian's systemd package)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAIN } from '../../test/support/start.js';

const have = spawnSync('systemd-analyze', ['--version']).status === 0;

void test(
  'systemd-analyze verify accepts the unit quail systemd-unit prints',
  { skip: !have && process.env['QUAIL_REQUIRE_TOOLS'] !== '1' && 'apt-get install systemd (systemd-analyze)' },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'quail-unit-'));
    try {
      const root = join(dir, 'mail root'); // a blank in the path: ExecStart's quoting is checked by systemd too
      const printed = spawnSync(process.execPath, [MAIN, 'systemd-unit', '--root', root], { encoding: 'utf8' });
      assert.equal(printed.status, 0, printed.stderr);
      const file = join(dir, 'quail.service');
      writeFileSync(file, printed.stdout);
      const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
      // unknown keys and bad values are only warnings for systemd: none may appear
      assert.equal(`${r.stdout}${r.stderr}`.trim(), '', printed.stdout);
      // the check can fail: a unit whose ExecStart is not executable is refused
      writeFileSync(file, printed.stdout.replace(/^ExecStart=\S+/m, 'ExecStart=/nonexistent/node'));
      const bad = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      assert.notEqual(bad.status, 0, 'systemd-analyze must refuse a missing binary');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
