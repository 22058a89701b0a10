// quail import vpopmail|qmail on trees the test builds: dry run changes nothing, the real run brings users, aliases, mail, files.
// tier: system (needs cdb, openssl)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseVpasswdLine, vpopPolicy } from '../directory/index.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'main.js');
const q = (root: string, args: string[]): SpawnSyncReturns<string> =>
  spawnSync(process.execPath, [MAIN, ...args, '--root', root], { encoding: 'utf8' });
function ok(r: SpawnSyncReturns<string>): string {
  assert.equal(r.status, 0, `exit ${String(r.status)}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}
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

void test('vpasswd lines and vdelivermail lines (golden)', () => {
  assert.deepEqual(parseVpasswdLine('joe:$1$ab$cd:1:18:Joe Q:/home/vpopmail/domains/ex.com/joe:5000000S,100C'), {
    local: 'joe',
    hash: '$1$ab$cd',
    flags: ['no-pop', 'bounce-all'],
    gecos: 'Joe Q',
    dir: '/home/vpopmail/domains/ex.com/joe',
    quotaBytes: 5000000,
    quotaMessages: 100,
  });
  assert.equal(parseVpasswdLine('ann:x:1:0::/d/ann:NOQUOTA:clear')?.quotaBytes, null);
  assert.equal(parseVpasswdLine(''), null);
  assert.throws(() => parseVpasswdLine('bad:line'));
  assert.deepEqual(vpopPolicy("| /home/vpopmail/bin/vdelivermail '' bounce-no-mailbox"), { kind: 'bounce-no-mailbox' });
  assert.deepEqual(vpopPolicy("| /home/vpopmail/bin/vdelivermail '' delete"), { kind: 'delete' });
  assert.deepEqual(vpopPolicy("| /home/vpopmail/bin/vdelivermail '' /home/vpopmail/domains/ex.com/postmaster"), {
    kind: 'mailbox',
    local: 'postmaster',
  });
  assert.deepEqual(vpopPolicy("| /home/vpopmail/bin/vdelivermail '' catch@other.test"), {
    kind: 'forward',
    address: 'catch@other.test',
  });
  assert.equal(vpopPolicy('./Maildir/'), null);
});

/** A vpopmail domains/ tree: ex.com (2 users, one with mail, an alias, a catch-all, limits), alias domain, a broken domain. */
function vpopTree(base: string): string {
  const d = join(base, 'domains');
  const ex = join(d, 'ex.com');
  mkdirSync(join(ex, 'joe', 'Maildir', 'new'), { recursive: true });
  for (const s of ['cur', 'tmp']) mkdirSync(join(ex, 'joe', 'Maildir', s));
  writeFileSync(join(ex, 'joe', 'Maildir', 'new', '1700000000.1.old'), 'Subject: old mail\n\nkept\n');
  const md5 = spawnSync('openssl', ['passwd', '-1', '-salt', 'abcdefgh', 'joepw'], { encoding: 'utf8' }).stdout.trim();
  writeFileSync(
    join(ex, 'vpasswd'),
    [
      `joe:${md5}:1:32:Joe Q:/home/vpopmail/domains/ex.com/joe:5000000S,100C`,
      'postmaster:$6$salt$abc:1:4096:Postmaster:/home/vpopmail/domains/ex.com/postmaster:NOQUOTA',
      'bad name:x:1:0::/x:NOQUOTA',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(ex, '.qmail-default'),
    "| /home/vpopmail/bin/vdelivermail '' /home/vpopmail/domains/ex.com/postmaster\n",
  );
  writeFileSync(join(ex, '.qmail-info'), '&joe@ex.com\npostmaster@ex.com\n');
  writeFileSync(join(ex, '.qmail-sales:team'), '|/usr/bin/true\n');
  writeFileSync(join(ex, '.qmailadmin-limits'), 'maxpopaccounts: 50\nmaxaliases: -1\n');
  symlinkSync('ex.com', join(d, 'alias.test'));
  mkdirSync(join(d, 'sqlonly.test'));
  return d;
}

void test('quail import vpopmail: --dry-run changes nothing; the import brings domains, mailboxes, hashes, mail, aliases', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-imp-'));
  const src = mkdtempSync(join(tmpdir(), 'quail-imp-src-'));
  try {
    ok(q(root, ['init', '--me', 'mx.test']));
    const dir = vpopTree(src);
    const dry = ok(q(root, ['import', 'vpopmail', dir, '--dry-run']));
    assert.match(dry, /would import: domain ex\.com\n/);
    assert.match(dry, /would import: mailbox joe@ex\.com\n/);
    assert.match(dry, /not imported: domain sqlonly\.test: no vpasswd file/);
    assert.match(dry, /\(dry run: nothing changed\)\n$/);
    assert.equal(ok(q(root, ['domain', 'list'])), '');

    const rep = JSON.parse(ok(q(root, ['import', 'vpopmail', dir, '--json']))) as {
      imported: string[];
      skipped: Array<{ what: string }>;
    };
    assert.deepEqual(rep.imported, [
      'domain ex.com',
      'mailbox joe@ex.com',
      'mailbox postmaster@ex.com',
      'alias info@ex.com',
      'alias sales.team@ex.com',
      'alias domain alias.test -> ex.com',
    ]);
    assert.deepEqual(rep.skipped.map((s) => s.what).sort(), ['domain sqlonly.test', 'mailbox bad name@ex.com']);
    const joe = JSON.parse(ok(q(root, ['user', 'info', 'joe@ex.com', '--json']))) as Record<string, unknown>;
    assert.deepEqual(
      [joe['realName'], joe['quotaBytes'], joe['quotaMessages'], joe['flags']],
      ['Joe Q', 5000000, 100, ['no-relay']],
    );
    assert.equal(login(root, 'joe@ex.com', 'joepw'), 0, 'the imported MD5-crypt password still works');
    const pm = JSON.parse(ok(q(root, ['user', 'info', 'postmaster@ex.com', '--json']))) as Record<string, unknown>;
    assert.deepEqual(pm['flags'], ['domain-admin']);
    const kept = readdirSync(join(root, 'domains', 'ex.com', 'joe', 'Maildir', 'new'));
    assert.deepEqual(kept, ['1700000000.1.old']);
    const dom = JSON.parse(ok(q(root, ['domain', 'info', 'ex.com', '--json']))) as Record<string, unknown>;
    assert.equal(dom['policy'], 'mailbox:postmaster');
    assert.deepEqual(dom['aliases'], ['alias.test']);
    assert.equal((dom['limits'] as Record<string, unknown>)['maxMailboxes'], 50);
    assert.equal(
      ok(q(root, ['alias', 'list', 'ex.com'])),
      'info@ex.com -> &joe@ex.com, postmaster@ex.com\nsales.team@ex.com -> |/usr/bin/true\n',
    );
    assert.match(readFileSync(join(root, 'control', 'rcpthosts'), 'latin1'), /^ex\.com$/m);
    // A second run imports nothing twice.
    const again = JSON.parse(ok(q(root, ['import', 'vpopmail', dir, '--json']))) as { imported: string[] };
    assert.ok(
      !again.imported.some((i) => i.startsWith('mailbox') || i.startsWith('domain ex')),
      again.imported.join(','),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(src, { recursive: true, force: true });
  }
});

void test('quail import qmail: control lists merged, missing files copied, differing ones kept, users/assign merged + cdb', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-impq-'));
  const old = mkdtempSync(join(tmpdir(), 'quail-impq-src-'));
  try {
    ok(q(root, ['init', '--me', 'mx.test']));
    mkdirSync(join(old, 'control'));
    mkdirSync(join(old, 'users'));
    writeFileSync(join(old, 'control', 'me'), 'old.host\n');
    writeFileSync(join(old, 'control', 'rcpthosts'), 'mx.test\nlegacy.test\n');
    writeFileSync(join(old, 'control', 'virtualdomains'), 'legacy.test:legacy\n');
    writeFileSync(join(old, 'control', 'databytes'), '1000000\n');
    writeFileSync(join(old, 'control', 'conf-foo'), 'x\n');
    writeFileSync(
      join(old, 'users', 'assign'),
      '+legacy-:legacy:1001:1001:/home/legacy:-::\n=bob:bob:1002:1002:/home/bob:::\n.\n',
    );
    // a source that is not a directory: said so, exit 100, no system call's message
    for (const [kind, what] of [
      ['qmail', /a qmail root/],
      ['vpopmail', /vpopmail's domains\/ tree/],
    ] as const) {
      const missing = q(root, ['import', kind, join(old, 'no-such-dir')]);
      assert.equal(missing.status, 100, missing.stderr);
      assert.match(missing.stderr, /^quail import \w+: fatal: .*no-such-dir is not a directory: give /);
      assert.match(missing.stderr, what);
    }
    const dry = ok(q(root, ['import', 'qmail', old, '--dry-run']));
    assert.match(dry, /would import: control\/rcpthosts: 1 line\(s\) added/);
    assert.equal(existsSync(join(root, 'control', 'databytes')), false);
    const out = ok(q(root, ['import', 'qmail', old]));
    assert.match(out, /not imported: control\/me: kept ours/);
    assert.match(out, /not imported: control\/conf-foo: not a control file quail reads/);
    assert.deepEqual(
      readFileSync(join(root, 'control', 'rcpthosts'), 'latin1')
        .split('\n')
        .filter(Boolean),
      ['mx.test', 'legacy.test'],
    );
    assert.equal(readFileSync(join(root, 'control', 'databytes'), 'latin1'), '1000000\n');
    assert.match(readFileSync(join(root, 'control', 'virtualdomains'), 'latin1'), /^legacy\.test:legacy$/m);
    assert.match(
      readFileSync(join(root, 'users', 'assign'), 'latin1'),
      /^\+legacy-:legacy:1001:1001:\/home\/legacy:-::\n=bob:bob:1002:1002:\/home\/bob:::\n\.\n$/m,
    );
    const cdb = spawnSync('cdb', ['-q', join(root, 'users', 'cdb'), '!legacy-'], { encoding: 'latin1' });
    assert.equal(cdb.stdout.split('\0')[3], '/home/legacy');
    mkdirSync(join(old, 'nothing')); // a directory without control/ or users/assign: reported, nothing imported
    assert.equal(q(root, ['import', 'qmail', join(old, 'nothing')]).stdout.includes('is this a qmail root'), true);
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(old, { recursive: true, force: true });
  }
});

/** A fresh mail root (quail init done) and a directory to build the old system in, both removed afterwards. */
function withRoots(body: (root: string, src: string) => void): void {
  const root = mkdtempSync(join(tmpdir(), 'quail-imph-'));
  const src = mkdtempSync(join(tmpdir(), 'quail-imph-src-'));
  try {
    ok(q(root, ['init', '--me', 'mx.test']));
    body(root, src);
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(src, { recursive: true, force: true });
  }
}

void test('hostile vpopmail tree: no mail of other mailboxes copied, no symlink into a Maildir, no file outside read, no FIFO waited on', () => {
  withRoots((root, src) => {
    ok(q(root, ['domain', 'add', 'victim.test']));
    ok(q(root, ['user', 'add', 'ceo@victim.test', '--password', 'x']));
    const secret = join(root, 'domains', 'victim.test', 'ceo', 'Maildir', 'new', '1700000000.1.secret');
    writeFileSync(secret, 'Subject: the plan\n\nsecret\n');
    const outside = join(src, 'outside');
    writeFileSync(outside, 'someone@outside.test\n');
    const ev = join(src, 'domains', 'evil.test');
    for (const s of ['new', 'cur', 'tmp']) mkdirSync(join(ev, 'bob', 'Maildir', s), { recursive: true });
    mkdirSync(join(ev, 'eve'));
    writeFileSync(join(ev, 'bob', 'Maildir', 'cur', '1700000001.2.own:2,S'), 'Subject: own\n\nmine\n');
    symlinkSync(secret, join(ev, 'bob', 'Maildir', 'new', '1700000002.3.stolen'));
    writeFileSync(
      join(ev, 'vpasswd'),
      'bob::1:0:Bob:/home/vpopmail/domains/evil.test/bob:NOQUOTA\n' +
        `eve::1:0:Eve:/home/vpopmail/domains/evil.test/${'../'.repeat(12)}${join(root, 'domains', 'victim.test', 'ceo')}:NOQUOTA\n`,
    );
    writeFileSync(join(ev, '.qmail-info'), 'bob@evil.test\n');
    symlinkSync('.qmail-info', join(ev, '.qmail-sales')); // vpopmail's own habit: kept
    symlinkSync(outside, join(ev, '.qmail-leak'));
    assert.equal(spawnSync('mkfifo', [join(ev, '.qmail-fifo')]).status, 0);
    const r = spawnSync(
      process.execPath,
      [MAIN, 'import', 'vpopmail', join(src, 'domains'), '--json', '--root', root],
      {
        encoding: 'utf8',
        timeout: 60_000, // without the fix the FIFO is waited on for ever
      },
    );
    const rep = JSON.parse(ok(r)) as { imported: string[]; skipped: Array<{ what: string; why: string }> };
    assert.deepEqual(rep.imported, [
      'domain evil.test',
      'mailbox bob@evil.test',
      'mailbox eve@evil.test',
      'alias info@evil.test',
      'alias sales@evil.test',
    ]);
    const why = Object.fromEntries(rep.skipped.map((s) => [s.what, s.why]));
    assert.match(why['evil.test/.qmail-leak'] ?? '', /leads outside/);
    assert.match(why['evil.test/.qmail-fifo'] ?? '', /not a regular file/);
    assert.match(why['mail of bob@evil.test: Maildir/new/1700000002.3.stolen'] ?? '', /symlink/);
    assert.match(why['mail of eve@evil.test'] ?? '', /leads outside/);
    const home = (u: string, s: string): string[] => readdirSync(join(root, 'domains', 'evil.test', u, 'Maildir', s));
    assert.deepEqual([home('bob', 'new'), home('bob', 'cur')], [[], ['1700000001.2.own:2,S']]);
    assert.deepEqual([home('eve', 'new'), home('eve', 'cur')], [[], []]);
  });
});

void test('hostile qmail root: a control file symlinked out of it is not read (nor greeted with), a FIFO not waited on', () => {
  withRoots((root, old) => {
    const secret = join(mkdtempSync(join(tmpdir(), 'quail-impqh-secret-')), 'shadow');
    writeFileSync(secret, 'root:$6$secret:20000:0:99999:7:::\n');
    mkdirSync(join(old, 'control'));
    symlinkSync(secret, join(old, 'control', 'smtpgreeting'));
    mkdirSync(join(old, 'users'));
    assert.equal(spawnSync('mkfifo', [join(old, 'users', 'assign')]).status, 0);
    writeFileSync(join(old, 'control', 'databytes'), '1000000\n');
    const r = spawnSync(process.execPath, [MAIN, 'import', 'qmail', old, '--json', '--root', root], {
      encoding: 'utf8',
      timeout: 60_000, // without the fix the FIFO is waited on for ever
    });
    const rep = JSON.parse(ok(r)) as { imported: string[]; skipped: Array<{ what: string; why: string }> };
    assert.deepEqual(rep.imported, ['control/databytes']);
    const why = Object.fromEntries(rep.skipped.map((s) => [s.what, s.why]));
    assert.match(why['control/smtpgreeting'] ?? '', /leads outside/);
    assert.match(why['users/assign'] ?? '', /not a regular file/);
    assert.equal(existsSync(join(root, 'control', 'smtpgreeting')), false);
    rmSync(dirname(secret), { recursive: true, force: true });
  });
});
