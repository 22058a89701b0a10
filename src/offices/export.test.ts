// quail office export: the files a plain qmail+vpopmail office needs, checked against the directory they came from;
// the forwarder run by sh with a stand-in qmail-remote printing qmail-remote's report format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDirectory } from '../directory/index.js';
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
