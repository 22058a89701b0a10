// Golden table for `quail newu` / `quail newmrh` run as real processes: exit code, stdout, stderr, files.
// tier: system (needs cdb)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'main.js');

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const CASES: Array<[string, string, number, string]> = [
  ['good file', '=joe:joe:503:78:/home/joe:::\n.\n', 0, ''],
  [
    'missing dot',
    '=joe:joe:503:78:/home/joe:::\n',
    111,
    'quail newu: fatal: bad format in users/assign line 2: end of file without the terminating "." line; the old users/cdb is kept\n',
  ],
  [
    'too few fields',
    '=joe:joe:503:78:/home/joe::\n.\n',
    111,
    'quail newu: fatal: bad format in users/assign line 1: 5 ":" after the local field, need 7 (=local:user:uid:gid:homedir:dash:ext:); the old users/cdb is kept\n',
  ],
  [
    'line starting with colon',
    '=a:u:1:2:/h:::\n:joe:503:78:/home/joe::::\n.\n',
    111,
    'quail newu: fatal: bad format in users/assign line 2: the line starts with ":" (begin it with "=" or "+"); the old users/cdb is kept\n',
  ],
];

for (const [name, assign, status, stderr] of CASES) {
  void test(`quail newu: ${name}`, () => {
    const root = mkdtempSync(join(tmpdir(), 'quail-newu-cli-'));
    try {
      mkdirSync(join(root, 'users'));
      writeFileSync(join(root, 'users', 'cdb'), 'OLD');
      writeFileSync(join(root, 'users', 'assign'), assign);
      const r = run(['newu', '--root', root]);
      assert.deepEqual(r, { status, stdout: '', stderr });
      const cdb = readFileSync(join(root, 'users', 'cdb'));
      if (status === 0) assert.equal(cdb.length, 2048 + 8 + 5 + 22 + 8 + 32);
      else assert.equal(cdb.toString(), 'OLD');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}

void test('quail newu: missing users/assign is a temporary failure naming the file', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-newu-cli-'));
  try {
    const r = run(['newu', '--root', root]);
    assert.equal(r.status, 111);
    assert.equal(r.stderr, `quail newu: fatal: unable to read ${join(root, 'users', 'assign')}: ENOENT\n`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('quail newmrh: builds control/morercpthosts.cdb', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-newmrh-cli-'));
  try {
    mkdirSync(join(root, 'control'));
    writeFileSync(join(root, 'control', 'morercpthosts'), 'A.test\n');
    assert.deepEqual(run(['newmrh', '--root', root]), { status: 0, stdout: '', stderr: '' });
    assert.ok(existsSync(join(root, 'control', 'morercpthosts.cdb')));
    assert.ok(readFileSync(join(root, 'control', 'morercpthosts.cdb')).includes(Buffer.from('a.test')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
