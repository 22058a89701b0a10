// `quail local`: the eight arguments pass through verbatim (empty, starting with '-'), usage and exit codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));
const local = (...args: string[]) => spawnSync(process.execPath, [CLI, 'local', ...args], { encoding: 'latin1' });

void test('quail local -n: empty and dash-leading arguments after --', () => {
  const home = mkdtempSync(join(tmpdir(), 'quail-cli-local-'));
  try {
    writeFileSync(join(home, '.qmail--x'), '&-odd@x.test\n|echo hi\n');
    const r = local('-n', '--', 'u', home, 'u--x', '-', '-x', 'local.test', '', './Maildir/\n');
    assert.equal(r.stdout, 'forward -odd@x.test\nprogram echo hi\ndid 0+1+1\n');
    assert.equal(r.stderr, '');
    assert.equal(r.status, 0);
    const main = local('--dry-run', '--', 'u', home, 'u', '', '', 'local.test', '', './Maildir/\n');
    assert.equal(main.stdout, 'maildir ./Maildir/\ndid 1+0+0\n');
    const none = local('-n', '--', 'u', home, 'u-y', '-', 'y', 'local.test', '', './Maildir/\n');
    assert.deepEqual(
      [none.status, none.stdout, none.stderr],
      [100, '', 'Sorry, no mailbox here by that name. (#5.1.1)\n'],
    );
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

void test('quail local: wrong number of arguments prints qmail-local usage, exit 100', () => {
  const r = local('-n', '--', 'u', '/');
  assert.equal(r.status, 100);
  assert.equal(
    r.stderr,
    'qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext domain sender aliasempty\n',
  );
});
