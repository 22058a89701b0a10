// vpopmail's command names through the real CLI: option letters, effects in the directory, logins with imported hashes.
// tier: system (needs openssl)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseVpopQuota, randomPassword } from './vpopmail.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'main.js');

function q(root: string, args: string[], input = ''): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [MAIN, ...args], {
    input,
    encoding: 'utf8',
    env: { ...process.env, QUAIL_ROOT: root },
  });
}
function ok(r: SpawnSyncReturns<string>): string {
  assert.equal(r.status, 0, `exit ${String(r.status)}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}
const info = (root: string, address: string): Record<string, unknown> =>
  JSON.parse(ok(q(root, ['user', 'info', address, '--json']))) as Record<string, unknown>;

/** checkpassword with the login on fd 3 (exit 0 good, 1 bad). */
function login(root: string, user: string, pw: string): number | null {
  return spawnSync(
    '/bin/sh',
    [
      '-c',
      'printf "%s\\0%s\\0\\0" "$U" "$P" | { exec 3<&0 </dev/null; exec "$@"; }',
      'sh',
      process.execPath,
      MAIN,
      'checkpassword',
      '--root',
      root,
      '--',
      '/bin/true',
    ],
    { encoding: 'utf8', env: { ...process.env, U: user, P: pw } },
  ).status;
}

void test('parseVpopQuota: vpopmail quota spellings (golden)', () => {
  const table: Array<[string, { bytes: number | null; messages: number | null }]> = [
    ['NOQUOTA', { bytes: null, messages: null }],
    ['noquota', { bytes: null, messages: null }],
    ['5000000', { bytes: 5000000, messages: null }],
    ['50M', { bytes: 50 * 1024 * 1024, messages: null }],
    ['1000000S', { bytes: 1000000, messages: null }],
    ['1000000S,200C', { bytes: 1000000, messages: 200 }],
    ['300C', { bytes: null, messages: 300 }],
  ];
  for (const [text, want] of table) assert.deepEqual(parseVpopQuota(text), want, text);
  assert.throws(() => parseVpopQuota('lots'));
  assert.match(randomPassword(12), /^[A-Za-z0-9]{12}$/);
});

void test('vadddomain, vadduser, vmoduser, valias, vuserinfo, vdominfo, vsetuserquota, vpasswd, vdeluser, vdeldomain', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-vpop-'));
  try {
    ok(q(root, ['init', '--me', 'mx.test']));
    ok(q(root, ['vadddomain', '-q', '5M', '-e', 'joe', 'example.com', 'pmpw']));
    assert.match(readFileSync(join(root, 'control', 'rcpthosts'), 'latin1'), /^example\.com$/m);
    const pm = info(root, 'postmaster@example.com');
    assert.equal(pm['quotaBytes'], 5 * 1024 * 1024);
    assert.deepEqual(pm['flags'], ['domain-admin']);
    assert.equal(login(root, 'postmaster@example.com', 'pmpw'), 0);
    assert.equal(
      (JSON.parse(ok(q(root, ['domain', 'info', 'example.com', '--json']))) as { policy: string }).policy,
      'mailbox:joe',
    );

    ok(q(root, ['vadduser', '-c', 'Joe Q', '-q', '1000000S,200C', 'joe@example.com', 'pw1']));
    assert.deepEqual(
      [info(root, 'joe@example.com')['realName'], info(root, 'joe@example.com')['quotaMessages']],
      ['Joe Q', 200],
    );
    // -e: an imported MD5-crypt hash is stored as given and logs in.
    const hash = spawnSync('openssl', ['passwd', '-1', '-salt', 'saltsalt', 'oldpw'], {
      encoding: 'utf8',
    }).stdout.trim();
    ok(q(root, ['vadduser', '-e', hash, 'old@example.com']));
    assert.equal(info(root, 'old@example.com')['passwordScheme'], 'md5-crypt');
    assert.equal(login(root, 'old@example.com', 'oldpw'), 0);
    assert.equal(login(root, 'old@example.com', 'nope'), 1);
    // -r: a random password is printed and works; `-r ADDRESS` is not mistaken for a length.
    const random =
      /Random password for ann@example\.com: (\S+)/.exec(ok(q(root, ['vadduser', '-r', 'ann@example.com'])))?.[1] ?? '';
    assert.equal(random.length, 8);
    assert.equal(login(root, 'ann@example.com', random), 0);

    ok(q(root, ['vmoduser', '-p', '-b', '-a', 'joe@example.com']));
    assert.deepEqual(info(root, 'joe@example.com')['flags'], ['no-pop', 'bounce-all', 'domain-admin']);
    ok(q(root, ['vmoduser', '-x', '-s', 'joe@example.com']));
    assert.deepEqual(info(root, 'joe@example.com')['flags'], ['no-smtp-auth']);
    assert.equal(ok(q(root, ['vuserinfo', '-c', '-q', 'joe@example.com'])), 'Joe Q\n1000000S,200C\n');
    assert.match(
      ok(q(root, ['vuserinfo', 'joe@example.com'])),
      new RegExp(`^name: +joe\\n[^]*dir: +${root}/domains/example\\.com/joe\\n`),
    );

    ok(q(root, ['valias', '-i', 'joe@example.com', 'info@example.com']));
    ok(q(root, ['valias', '-i', '|/bin/true', 'info@example.com']));
    assert.equal(
      ok(q(root, ['valias', 'example.com'])),
      'info@example.com -> joe@example.com\ninfo@example.com -> |/bin/true\n',
    );
    assert.equal(ok(q(root, ['valias', '-n', 'example.com'])), 'info@example.com\n');
    assert.equal(
      q(root, ['valias', '-i', 'joe@example.com', 'info@example.com']).status,
      100,
      'an existing line is refused',
    );
    ok(q(root, ['valias', '-d', 'info@example.com']));
    assert.equal(ok(q(root, ['valias', 'example.com'])), '');

    ok(q(root, ['vaddaliasdomain', 'alias.test', 'example.com'])); // swapped order is accepted, as vpopmail does
    assert.equal(ok(q(root, ['vdominfo', '-r', 'alias.test'])), 'example.com\n');
    assert.equal(ok(q(root, ['vdominfo', '-t', 'example.com'])), '4\n');
    ok(q(root, ['vsetuserquota', 'example.com', 'NOQUOTA']));
    assert.equal(ok(q(root, ['vuserinfo', '-q', '-D', 'example.com'])), 'NOQUOTA\n'.repeat(4));
    ok(q(root, ['vpasswd', 'joe@example.com', 'pw2']));
    assert.equal(login(root, 'joe@example.com', 'pw2'), 0);
    ok(q(root, ['vdeluser', 'old@example.com']));
    assert.equal(existsSync(join(root, 'domains', 'example.com', 'old')), false);
    const bad = q(root, ['vadddomain', '-i', '5', 'x.test', 'pw']);
    assert.equal(bad.status, 100);
    assert.match(bad.stderr, /-i is not supported/);
    ok(q(root, ['vdeldomain', 'example.com']));
    assert.equal(existsSync(join(root, 'domains', 'example.com')), false);
    assert.doesNotMatch(readFileSync(join(root, 'control', 'rcpthosts'), 'latin1'), /example\.com/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
