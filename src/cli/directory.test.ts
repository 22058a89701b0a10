// End to end through the real CLI on a temp root: domain add, user add, files in step, checkpassword (fd 3), vdeliver, drift.
// tier: system (needs cdb)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'main.js');

function q(args: string[], input = '', env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [MAIN, ...args], { input, encoding: 'utf8', env: { ...process.env, ...env } });
}

function ok(r: SpawnSyncReturns<string>): string {
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** checkpassword with `input` on fd 3 and a program that prints what it was given. */
function checkpasswordFd3(root: string, input: string): SpawnSyncReturns<string> {
  const dir = mkdtempSync(join(tmpdir(), 'quail-cp-'));
  try {
    const f = join(dir, 'fd3');
    writeFileSync(f, input);
    // The shell opens the file on fd 3 and execs node: exactly what qmail-popup does with a pipe.
    return spawnSync(
      '/bin/sh',
      [
        '-c',
        'exec "$@" 3<"$F"',
        'sh',
        process.execPath,
        MAIN,
        'checkpassword',
        '--root',
        root,
        '--',
        '/bin/sh',
        '-c',
        'echo "$USER|$HOME|$MAILDIR|$(pwd)"',
      ],
      { encoding: 'utf8', env: { ...process.env, F: f } },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void test('quail domain/user/alias/checkpassword/vdeliver/directory check end to end', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-dir-cli-'));
  try {
    ok(q(['init', '--root', root, '--me', 'mx.test.example']));
    const account = readFileSync(join(root, 'control', 'quailuser'), 'latin1').trim();
    // issue 18: RFC 5321 4.5.1's postmaster works at once (an alias to the server's postmaster)
    assert.equal(
      ok(q(['domain', 'add', 'Example.COM', '--root', root])),
      'added domain example.com\npostmaster@example.com -> postmaster@mx.test.example\n',
    );
    assert.deepEqual(
      readFileSync(join(root, 'control', 'rcpthosts'), 'latin1')
        .split('\n')
        .filter(Boolean),
      ['mx.test.example', 'example.com'],
    );
    assert.match(readFileSync(join(root, 'control', 'virtualdomains'), 'latin1'), /^example\.com:example\.com$/m);
    const assign = readFileSync(join(root, 'users', 'assign'), 'latin1');
    assert.match(
      assign,
      new RegExp(`^\\+example\\.com-:${account}:\\d+:\\d+:${root}/domains/example\\.com:-::\\n\\.\\n$`, 'm'),
    );
    const cdb = spawnSync('cdb', ['-q', join(root, 'users', 'cdb'), '!example.com-'], { encoding: 'latin1' });
    assert.equal(cdb.stdout.split('\0')[3], `${root}/domains/example.com`);
    assert.equal(
      readFileSync(join(root, 'domains', 'example.com', '.qmail-default'), 'latin1'),
      "| quail vdeliver '' bounce-no-mailbox\n",
    );
    assert.equal(q(['domain', 'add', 'example.com', '--root', root]).status, 100);

    assert.equal(
      ok(q(['user', 'add', 'joe@example.com', '--password-stdin', '--name', 'Joe', '--root', root], 'secret\n')),
      'added joe@example.com\n',
    );
    for (const s of ['cur', 'new', 'tmp']) assert.ok(existsSync(join(root, 'domains/example.com/joe/Maildir', s)));
    const info = JSON.parse(ok(q(['user', 'info', 'joe@example.com', '--json', '--root', root]))) as Record<
      string,
      unknown
    >;
    assert.deepEqual(
      [info['address'], info['realName'], info['passwordScheme'], 'passwordHash' in info],
      ['joe@example.com', 'Joe', 'scrypt', false],
    );
    assert.equal(q(['user', 'add', 'joe@nosuch.example', '--password', 'x', '--root', root]).status, 100);
    ok(q(['alias', 'add', 'info@example.com', 'joe@example.com', '--root', root]));
    assert.equal(
      ok(q(['alias', 'list', 'example.com', '--root', root])),
      'info@example.com -> joe@example.com\npostmaster@example.com -> postmaster@mx.test.example\n',
    );
    assert.deepEqual(
      (JSON.parse(ok(q(['domain', 'list', '--json', '--root', root]))) as Array<{ name: string }>).map((d) => d.name),
      ['example.com'],
    );

    // checkpassword: good login runs the program as the mailbox; bad password exits 1.
    const home = `${root}/domains/example.com/joe`;
    const good = checkpasswordFd3(root, 'joe@example.com\0secret\0' + '1700000000\0');
    assert.equal(good.status, 0, good.stderr);
    assert.equal(good.stdout, `joe@example.com|${home}|${home}/Maildir/|${home}\n`);
    assert.equal(checkpasswordFd3(root, 'joe%example.com\0secret\0\0').status, 0);
    assert.equal(checkpasswordFd3(root, 'joe@example.com\0wrong\0\0').status, 1);
    assert.equal(checkpasswordFd3(root, 'nobody@example.com\0secret\0\0').status, 1);

    // vdeliver as /bin/sh would run the .qmail-default line.
    const env = {
      EXT: 'joe',
      HOST: 'example.com',
      LOCAL: 'example.com-joe',
      SENDER: 'ann@other.example',
      RPLINE: 'Return-Path: <ann@other.example>\n',
      DTLINE: 'Delivered-To: example.com-joe@example.com\n',
    };
    ok(q(['vdeliver', '', 'bounce-no-mailbox', '--root', root], 'Subject: t\n\nbody\n', env));
    const newDir = join(home, 'Maildir', 'new');
    const files = readdirSync(newDir);
    assert.equal(files.length, 1);
    assert.equal(
      readFileSync(join(newDir, files[0] ?? ''), 'latin1'),
      `${env.RPLINE}${env.DTLINE}Subject: t\n\nbody\n`,
    );
    const unknown = q(['vdeliver', '', 'bounce-no-mailbox', '--root', root], 'x\n', {
      ...env,
      EXT: 'nobody',
      LOCAL: 'example.com-nobody',
    });
    assert.equal(unknown.status, 100);
    assert.match(unknown.stdout, /no mailbox here by that name/);

    // Drift: a restore lost rcpthosts' line and the .qmail-default; check finds it, --repair fixes it.
    writeFileSync(join(root, 'control', 'rcpthosts'), 'mx.test.example\n');
    unlinkSync(join(root, 'domains', 'example.com', '.qmail-default'));
    const drift = q(['directory', 'check', '--root', root]);
    assert.equal(drift.status, 1);
    assert.match(drift.stdout, /rcpthosts: example\.com is missing/);
    assert.match(drift.stdout, /\.qmail-default: missing/);
    ok(q(['directory', 'check', '--repair', '--root', root]));
    assert.equal(ok(q(['directory', 'check', '--root', root])), 'no drift: the files agree with the directory\n');
    assert.ok(existsSync(join(root, 'domains', 'example.com', '.qmail-default')));

    // Deleting reverses it all.
    ok(q(['domain', 'del', 'example.com', '--root', root]));
    assert.equal(readFileSync(join(root, 'control', 'rcpthosts'), 'latin1'), 'mx.test.example\n');
    assert.doesNotMatch(readFileSync(join(root, 'control', 'virtualdomains'), 'latin1'), /example\.com/);
    assert.doesNotMatch(readFileSync(join(root, 'users', 'assign'), 'latin1'), /example\.com/);
    assert.ok(!existsSync(join(root, 'domains', 'example.com')));
    assert.equal(checkpasswordFd3(root, 'joe@example.com\0secret\0\0').status, 1);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('issue 18: domain add --subdomains takes every host below the domain; --no-postmaster, --postmaster', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-dir-cli-'));
  try {
    ok(q(['init', '--root', root, '--me', 'mx.test.example']));
    assert.equal(
      ok(
        q([
          'domain',
          'add',
          'example.com',
          '--subdomains',
          '--postmaster',
          'hostmaster@elsewhere.example',
          '--root',
          root,
        ]),
      ),
      'added domain example.com and every host below it (.example.com)\npostmaster@example.com -> hostmaster@elsewhere.example\n',
    );
    const lines = (f: string): string[] =>
      readFileSync(join(root, 'control', f), 'latin1')
        .split('\n')
        .filter(Boolean);
    assert.deepEqual(lines('rcpthosts'), ['mx.test.example', 'example.com', '.example.com']);
    assert.ok(lines('virtualdomains').includes('.example.com:example.com'), lines('virtualdomains').join('|'));
    assert.equal(ok(q(['directory', 'check', '--root', root])), 'no drift: the files agree with the directory\n');
    ok(q(['user', 'add', 'joe@example.com', '--password', 'secret', '--root', root]));
    // a host below the domain is the domain: vdeliver finds joe for joe@lists.example.com
    const env = {
      EXT: 'joe',
      HOST: 'lists.example.com',
      LOCAL: 'example.com-joe',
      SENDER: 'ann@other.example',
      RPLINE: 'Return-Path: <ann@other.example>\n',
      DTLINE: 'Delivered-To: example.com-joe@lists.example.com\n',
    };
    ok(q(['vdeliver', '', 'bounce-no-mailbox', '--root', root], 'Subject: t\n\nbody\n', env));
    assert.equal(readdirSync(join(root, 'domains/example.com/joe/Maildir/new')).length, 1);
    // the dotted entry is not example.com itself, and not a look-alike domain
    const other = q(['vdeliver', '', 'bounce-no-mailbox', '--root', root], 'x\n', { ...env, HOST: 'badexample.com' });
    assert.notEqual(other.status, 0);
    // --no-postmaster: no alias; the domain's postmaster is the administrator's to make
    ok(q(['domain', 'add', 'bare.example', '--no-postmaster', '--root', root]));
    assert.equal(ok(q(['alias', 'list', 'bare.example', '--root', root])), '');
    // deleting the domain takes the dotted lines with it
    ok(q(['domain', 'del', 'example.com', '--root', root]));
    assert.ok(!lines('rcpthosts').includes('.example.com'));
    assert.ok(!lines('virtualdomains').some((l) => l.startsWith('.example.com:')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('checkpassword without fd 3 (as under npx): 111 and a message that says what fd 3 must carry', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-dir-cli-'));
  try {
    // stdio has three entries: fd 3 is not the caller's, as when npx or npm start the command
    const r = spawnSync(process.execPath, [MAIN, 'checkpassword', '--root', root, '/bin/true'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.equal(r.status, 111, r.stderr);
    assert.match(
      r.stderr,
      /^quail checkpassword: unable to read fd 3: E[A-Z]+ \(fd 3 must carry user\\0password\\0timestamp\\0 .*npx and npm do not pass fd 3 on/,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test("a mailbox under an alias's name is made, with a warning that the alias takes its mail", () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-dir-cli-'));
  try {
    ok(q(['init', '--root', root, '--me', 'mx.test.example']));
    ok(q(['domain', 'add', 'example.com', '--root', root]));
    // vpopmail's .qmail-postmaster beside a postmaster user (seed 000): allowed, but the alias wins at delivery
    const under = q(['user', 'add', 'postmaster@example.com', '--password', 'x', '--root', root]);
    assert.equal(under.status, 0, under.stderr);
    assert.match(under.stderr, /warning: the alias postmaster@example\.com takes this address's mail/);
    const plain = q(['user', 'add', 'ann@example.com', '--password', 'x', '--root', root]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(plain.stderr, '');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
