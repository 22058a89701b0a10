// quail office export: the files a plain qmail+vpopmail office needs, checked against the directory they came from;
// the forwarder run by sh with a stand-in qmail-remote printing qmail-remote's report format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openDirectory, SQLITE_FILE } from '../directory/index.js';
import { MAIN } from '../../test/support/start.js';

const D = 'megacorp.example';
const acct = { user: 'quail', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

async function megacorp(root: string): Promise<void> {
  const dir = await openDirectory({ root });
  try {
    await dir.addDomain({ name: D, account: acct });
    await dir.addAliasDomain('megacorp.test', D);
    await dir.addOffice({ name: 'ny', host: '127.0.0.2' });
    await dir.addOffice({ name: 'atl', host: '127.0.0.3', port: 2525 });
    await dir.addOffice({ name: 'den', host: 'mail.den.megacorp.example' });
    for (const [local, office] of [
      ['nick', 'ny'],
      ['nancy', 'ny'],
      ['postmaster', 'ny'],
      ['alex', 'atl'],
      ['alice', 'atl'],
      ['dave', 'den'],
      ['Diane.Smith', 'den'],
    ] as const)
      await dir.addMailbox({ domain: D, local, passwordHash: '', office });
    await dir.addAlias(D, 'sales', [`nick@${D}`, `alex@${D}`]);
  } finally {
    await dir.close();
  }
}

void test('office export: .qmail forwards for every mailbox elsewhere, aliases, smtproutes, the mailboxes here', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-export-'));
  try {
    await megacorp(root);
    const out = join(root, 'out');
    const r = spawnSync(process.execPath, [MAIN, 'office', 'export', '--office', 'ATL', '--dir', out, '--root', root], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /wrote \d+ files for office atl under /);
    const dd = join(out, 'domains', D);
    const names = readdirSync(dd).sort();
    // Mailboxes of ny and den (the one postmaster among them), each with its -default link; alex and alice are here.
    const elsewhere = ['nick', 'nancy', 'postmaster', 'dave', 'diane:smith'];
    assert.deepEqual(
      names,
      [...elsewhere.flatMap((l) => [`.qmail-${l}`, `.qmail-${l}-default`]), '.qmail-sales'].sort(),
    );
    const office = { nick: 'ny', nancy: 'ny', postmaster: 'ny', dave: 'den', 'diane:smith': 'den' } as const;
    for (const l of elsewhere) {
      assert.equal(
        readFileSync(join(dd, `.qmail-${l}`), 'utf8'),
        `|/var/qmail/bin/quail-office-forward ${office[l as keyof typeof office]}.offices.invalid "$EXT@$HOST"\n`,
      );
      assert.equal(readlinkSync(join(dd, `.qmail-${l}-default`)), `.qmail-${l}`);
    }
    assert.equal(readFileSync(join(dd, '.qmail-sales'), 'utf8'), `&nick@${D}\n&alex@${D}\n`);
    assert.equal(
      readFileSync(join(out, 'control', 'smtproutes'), 'utf8'),
      'den.offices.invalid:mail.den.megacorp.example:25\nny.offices.invalid:127.0.0.2:25\n',
    );
    assert.equal(readFileSync(join(out, 'mailboxes.txt'), 'utf8'), `alex@${D}\nalice@${D}\n`);
    assert.match(readFileSync(join(out, 'README.txt'), 'utf8'), /megacorp\.example \(alias domains: megacorp\.test\)/);
    // Exported again (after a change): the same files replaced, no error.
    assert.equal(
      spawnSync(process.execPath, [MAIN, 'office', 'export', '--office', 'atl', '--dir', out, '--root', root]).status,
      0,
    );
    // ny holds the postmaster: its export has no forward for it, and atl's and den's mailboxes are forwarded.
    const outNy = join(root, 'out-ny');
    assert.equal(
      spawnSync(process.execPath, [MAIN, 'office', 'export', '--office', 'ny', '--dir', outNy, '--root', root]).status,
      0,
    );
    assert.ok(!existsSync(join(outNy, 'domains', D, '.qmail-postmaster')));
    assert.match(readFileSync(join(outNy, 'domains', D, '.qmail-alex'), 'utf8'), /atl\.offices\.invalid/);
    assert.equal(
      readFileSync(join(outNy, 'control', 'smtproutes'), 'utf8'),
      'atl.offices.invalid:127.0.0.3:2525\nden.offices.invalid:mail.den.megacorp.example:25\n',
    );
    // An office that does not exist: exit 100 naming the offices there are.
    const bad = spawnSync(
      process.execPath,
      [MAIN, 'office', 'export', '--office', 'bos', '--dir', outNy, '--root', root],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(bad.status, 100);
    assert.match(bad.stderr, /no office bos in the directory \(there are: atl, den, ny\)/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('office export: quail-office-forward turns qmail-remote reports into 0, 100 and 111', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-export-'));
  try {
    await megacorp(root);
    const out = join(root, 'out');
    assert.equal(
      spawnSync(process.execPath, [MAIN, 'office', 'export', '--office', 'atl', '--dir', out, '--root', root]).status,
      0,
    );
    const forward = join(out, 'bin', 'quail-office-forward');
    // A stand-in for qmail-remote: records its arguments and the message, prints the report it is told to.
    const stand = join(root, 'qmail-remote');
    writeFileSync(stand, `#!/bin/sh\necho "$@" > "${root}/args"\ncat > "${root}/msg"\nprintf "$REPORT"\n`);
    chmodSync(stand, 0o755);
    const run = (report: string): { status: number | null; out: string } => {
      const r = spawnSync('sh', [forward, 'ny.offices.invalid', `nick@${D}`], {
        input: 'Subject: hi\n\nbody\n',
        encoding: 'utf8',
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          QMAILREMOTE: stand,
          REPORT: report,
          SENDER: 'alex@megacorp.example',
        },
      });
      return { status: r.status, out: r.stdout };
    };
    assert.equal(run('r250 ok\\0Kgiving up, delivered\\0').status, 0);
    assert.equal(readFileSync(join(root, 'args'), 'utf8'), `ny.offices.invalid alex@megacorp.example nick@${D}\n`);
    assert.equal(readFileSync(join(root, 'msg'), 'utf8'), 'Subject: hi\n\nbody\n');
    const perm = run('h550 no such user\\0Dgiving up\\0');
    assert.equal(perm.status, 100);
    assert.match(perm.out, /550 no such user/);
    const temp = run("ZSorry, I wasn't able to establish an SMTP connection.\\0");
    assert.equal(temp.status, 111);
    assert.match(temp.out, /establish an SMTP connection/);
    assert.equal(run('s451 try later\\0Zlater\\0').status, 111);
    assert.equal(run('').status, 111, 'no report at all: temporary');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/** Every path under `dir` (relative, sorted), links not followed. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

void test('office export: forged rows in the shared directory are refused and reported, nothing written outside --dir', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-export-'));
  try {
    await megacorp(root);
    // What another office (or anyone with the directory's password) can write into the shared file.
    const db = new Database(join(root, SQLITE_FILE));
    const now = Date.now();
    const domain = db.prepare(
      "INSERT INTO domains (name, policy, account, uid, gid, created) VALUES (?, 'bounce-no-mailbox', 'quail', 1000, 1000, ?)",
    );
    const box = db.prepare("INSERT INTO mailboxes (domain, local, password, created, office) VALUES (?, ?, '', ?, ?)");
    const alias = db.prepare('INSERT INTO aliases (domain, local, position, target) VALUES (?, ?, 0, ?)');
    const office = db.prepare('INSERT INTO offices (name, host, port, tls, created) VALUES (?, ?, ?, ?, ?)');
    domain.run('../../../escape-domain', now);
    box.run('../../../escape-domain', 'bob', now, 'ny');
    domain.run('evil.example/../../../../escape-slash', now);
    box.run('evil.example/../../../../escape-slash', 'bob', now, 'ny');
    box.run(D, 'x/y', now, 'ny'); // a '/' in a mailbox name: a sub-directory
    box.run(D, 'eve\n|touch /tmp/quail-export-pwned', now, 'ny'); // a newline in a mailbox name
    office.run('evil;touch${IFS}/tmp/quail-export-pwned;', '127.0.0.9', 25, '', now); // an office name for sh
    box.run(D, 'mallory', now, 'evil;touch${IFS}/tmp/quail-export-pwned;');
    box.run(D, 'oscar', now, 'ny "$(touch /tmp/quail-export-pwned)"'); // a mailbox's office not in the table
    office.run('bos', '127.0.0.5\nmegacorp.example:evil.example', 25, '', now); // a newline in a host: a route
    office.run('sfo', '127.0.0.6', 'x\nmegacorp.example:evil.example:25', '', now); // and in a port
    box.run(D, 'brian', now, 'bos');
    alias.run(D, 'support', `nick@${D}\n|touch /tmp/quail-export-pwned`); // a newline in an alias target
    alias.run(D, 'ops', '|touch /tmp/quail-export-pwned'); // a program from the shared directory
    alias.run(D, 'esc', `nick\x1b]0;x\x07@${D}`); // a control character (a terminal's escape) in a forward
    alias.run(D, '../../../../escape-alias', `nick@${D}`);
    db.prepare('INSERT INTO alias_domains (alias, domain) VALUES (?, ?)').run('evil.test\nrm -rf /', D);
    db.close();
    const out = join(root, 'a', 'out');
    mkdirSync(join(root, 'a'));
    const before = readdirSync(root).sort();
    const r = spawnSync(process.execPath, [MAIN, 'office', 'export', '--office', 'atl', '--dir', out, '--root', root], {
      encoding: 'utf8',
    });
    // Something was left out: exit 100, each row named on stderr; the rest was written.
    assert.equal(r.status, 100, r.stderr);
    assert.deepEqual(readdirSync(root).sort(), before, 'nothing new beside the output directory');
    assert.deepEqual(readdirSync(join(root, 'a')), ['out']);
    assert.equal(existsSync('/tmp/quail-export-pwned'), false);
    const dd = join(out, 'domains', D);
    // Exactly the good rows' files: no sub-directory, no forward for a mailbox at a refused or unknown office.
    assert.deepEqual(
      tree(join(out, 'domains')),
      [
        D,
        ...['nick', 'nancy', 'postmaster', 'dave', 'diane:smith'].flatMap((l) => [
          join(D, `.qmail-${l}`),
          join(D, `.qmail-${l}-default`),
        ]),
        join(D, '.qmail-sales'),
      ].sort(),
    );
    assert.equal(
      readFileSync(join(dd, '.qmail-nick'), 'utf8'),
      '|/var/qmail/bin/quail-office-forward ny.offices.invalid "$EXT@$HOST"\n',
    );
    assert.equal(readFileSync(join(dd, '.qmail-sales'), 'utf8'), `&nick@${D}\n&alex@${D}\n`);
    assert.equal(
      readFileSync(join(out, 'control', 'smtproutes'), 'utf8'),
      'den.offices.invalid:mail.den.megacorp.example:25\nny.offices.invalid:127.0.0.2:25\n',
    );
    assert.equal(readFileSync(join(out, 'mailboxes.txt'), 'utf8'), `alex@${D}\nalice@${D}\n`);
    const readme = readFileSync(join(out, 'README.txt'), 'utf8');
    assert.match(readme, /megacorp\.example \(alias domains: megacorp\.test\)\n/);
    assert.doesNotMatch(readme, /evil|rm -rf/);
    for (const want of [
      /domain "\.\.\/\.\.\/\.\.\/escape-domain" refused: .*not a domain name/,
      /domain "evil\.example\/\.\.\/\.\.\/\.\.\/\.\.\/escape-slash" refused/,
      /mailbox "x\/y@megacorp\.example" refused: .*not a mailbox name/,
      /mailbox "eve\\n\|touch \/tmp\/quail-export-pwned@megacorp\.example" refused/,
      /office "evil;touch\$\{IFS\}\/tmp\/quail-export-pwned;" refused: .*office name/,
      /mailbox "mallory@megacorp\.example" refused: .*office/,
      /mailbox "oscar@megacorp\.example" refused: .*office/,
      /office "bos" refused: .*host/,
      /office "sfo" refused: .*port/,
      /mailbox "brian@megacorp\.example" refused: .*office "bos"/,
      /alias "support@megacorp\.example" refused: .*target/,
      /alias "ops@megacorp\.example" refused: .*program/,
      /alias "esc@megacorp\.example" refused: .*control character/,
      /alias "\.\.\/\.\.\/\.\.\/\.\.\/escape-alias@megacorp\.example" refused/,
      /alias domain "evil\.test\\nrm -rf \/" \(of megacorp\.example\) refused/,
    ])
      assert.match(r.stderr, want);
    // One line per refusal (a newline in a row is shown escaped, never as a line of its own) and a summary.
    for (const line of r.stderr.trimEnd().split('\n'))
      assert.match(line, /^quail office export: (.* refused: .*|.*left out.*)$/, line);
    assert.match(r.stdout, /wrote \d+ files for office atl under /);
    // quail office list shows the forged offices quoted, one line each, and says they are refused.
    const list = spawnSync(process.execPath, [MAIN, 'office', 'list', '--root', root], { encoding: 'utf8' });
    assert.equal(list.status, 0, list.stderr);
    const rows = list.stdout.trimEnd().split('\n');
    assert.equal(rows.length, 6, list.stdout);
    assert.ok(rows.includes('ny\t127.0.0.2:25\ttls-when-offered\t7 mailboxes'), list.stdout);
    assert.ok(
      rows.some((l) =>
        l.startsWith('"bos"\t"127.0.0.5\\nmegacorp.example:evil.example":25\t""\t1 mailboxes\trefused here: its host'),
      ),
      list.stdout,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync('/tmp/quail-export-pwned', { force: true });
  }
});

void test('office export: a symbolic link planted in the output directory is not followed', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-export-'));
  try {
    await megacorp(root);
    const out = join(root, 'out');
    const victim = join(root, 'victim');
    mkdirSync(victim);
    writeFileSync(join(victim, 'smtproutes'), 'kept\n');
    const run = (): ReturnType<typeof spawnSync> =>
      spawnSync(process.execPath, [MAIN, 'office', 'export', '--office', 'atl', '--dir', out, '--root', root], {
        encoding: 'utf8',
      });
    // A directory of the export replaced by a link elsewhere: refused, nothing written through it.
    mkdirSync(out);
    symlinkSync(victim, join(out, 'domains'));
    const r = run();
    assert.equal(r.status, 100, String(r.stderr));
    assert.match(String(r.stderr), /domains is a symbolic link/);
    assert.deepEqual(readdirSync(victim), ['smtproutes']);
    // A file of the export replaced by a link: the link is replaced, its target untouched.
    rmSync(join(out, 'domains'));
    mkdirSync(join(out, 'control'), { recursive: true });
    symlinkSync(join(victim, 'smtproutes'), join(out, 'control', 'smtproutes'));
    symlinkSync(join(victim, 'planted'), join(out, 'README.txt')); // a dangling link: O_CREAT would follow it
    assert.equal(run().status, 0);
    assert.equal(readFileSync(join(victim, 'smtproutes'), 'utf8'), 'kept\n');
    assert.deepEqual(readdirSync(victim), ['smtproutes']);
    assert.match(readFileSync(join(out, 'control', 'smtproutes'), 'utf8'), /^den\.offices\.invalid:/);
    assert.match(readFileSync(join(out, 'README.txt'), 'utf8'), /office atl/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
