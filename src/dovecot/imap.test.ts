// docs/IMAP.md tested: Dovecot's IMAP beside quail on the same Maildirs, passwords through quail checkpassword, quota agreed.
// tier: system (needs dovecot, python3, quail start, swaks)
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { dovecotConfig } from './config.js';
import { dovecotBinary, freePort, startDovecot, type RunningDovecot } from '../../test/support/dovecot.js';
import { repoPath } from '../../test/support/paths.js';
import { waitFor } from '../../test/support/wait.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

function quail(args: readonly string[]): string {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `quail ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

function run(cmd: string, args: readonly string[]): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', (status) => resolve({ status, out }));
  });
}

const IMAPLIB = `
import imaplib, json, re, sys
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
m = imaplib.IMAP4('127.0.0.1', port, timeout=30)
try:
    m.login(user, pw)
except imaplib.IMAP4.error as e:
    print(json.dumps({'refused': str(e)})); sys.exit(0)
typ, data = m.select('INBOX')
count = int(data[0])
msgs = [m.fetch(str(i + 1), '(RFC822)')[1][0][1].decode() for i in range(count)]
typ, q = m.getquotaroot('INBOX')
m.logout()
print(json.dumps({'count': count, 'msgs': msgs, 'quota': [x.decode() for x in q[1]]}))
`;

/** Maildir++ usage as quail keeps it: the limit line, then the sum of the `bytes count` lines. */
function maildirsize(maildir: string): { limitBytes: number; limitMessages: number; bytes: number; messages: number } {
  const [head = '', ...rest] = readFileSync(join(maildir, 'maildirsize'), 'utf8').split('\n');
  let bytes = 0;
  let messages = 0;
  for (const l of rest) {
    const [b, c] = l.trim().split(/\s+/);
    if (b === undefined || c === undefined) continue;
    bytes += Number(b);
    messages += Number(c);
  }
  return {
    limitBytes: Number(/(\d+)S/.exec(head)?.[1] ?? NaN),
    limitMessages: Number(/(\d+)C/.exec(head)?.[1] ?? NaN),
    bytes,
    messages,
  };
}

void test('the documented config is the tested one', () => {
  const doc = readFileSync(repoPath('docs', 'IMAP.md'), 'utf8');
  const conf = dovecotConfig({
    root: '/var/quail',
    checkpassword: '/usr/local/bin/quail-checkpassword',
    uid: 999,
    gid: 999,
    baseDir: '/run/dovecot-quail',
    imapPort: 143,
    logPath: '/var/log/dovecot-quail.log',
  });
  assert.ok(doc.includes(conf), `docs/IMAP.md must carry the output of dovecotConfig for its example:\n${conf}`);
});

void test('IMAP through Dovecot: quail SMTP delivers, imaplib reads via quail checkpassword, no-imap refused, quota agrees', async () => {
  const bin = dovecotBinary();
  assert.ok(!('missing' in bin), 'missing' in bin ? bin.missing : ''); // a failure in CI, never a skip
  assert.ok(spawnSync('sh', ['-c', 'command -v swaks']).status === 0, 'swaks is missing: apt-get install swaks');
  const dir = mkdtempSync(join(tmpdir(), 'quail-imap-'));
  chmodSync(dir, 0o755);
  const root = join(dir, 'root');
  let q: ChildProcess | undefined;
  let dovecot: RunningDovecot | undefined;
  let log = '';
  try {
    quail(['init', '--root', root, '--me', 'mail.test']);
    quail(['domain', 'add', 'example.com', '--root', root]);
    quail([
      'user',
      'add',
      'joe@example.com',
      '--password',
      'joe-secret',
      '--quota',
      '10M',
      '--quota-messages',
      '100',
      '--root',
      root,
    ]);
    quail(['user', 'add', 'popper@example.com', '--password', 'pop-secret', '--flag', 'no-imap', '--root', root]);
    q = spawn(
      process.execPath,
      [MAIN, 'start', '--root', root, '--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0', '--pop3', 'none'],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    q.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    q.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    await waitFor(
      () => /quail\.started/.test(log),
      60_000,
      () => log,
    );
    const smtp = Number(/smtp\.listening address=\S+ port=(\d+) kind=smtp/.exec(log)?.[1] ?? NaN);
    for (const n of [1, 2]) {
      const r = await run('swaks', [
        '--server',
        '127.0.0.1',
        '--port',
        String(smtp),
        '--from',
        'a@example.net',
        '--to',
        'joe@example.com',
        '--header',
        `Subject: imap-${n}`,
        '--body',
        `message ${n} for dovecot`,
        '--helo',
        'client.test',
      ]);
      assert.equal(r.status, 0, r.out);
    }
    const maildir = join(root, 'domains', 'example.com', 'joe', 'Maildir');
    await waitFor(
      () => readdirSync(join(maildir, 'new')).length === 2,
      30_000,
      () => log,
    );

    const owner = readFileSync(join(root, 'control', 'quailuser'), 'utf8').trim();
    const ids = spawnSync('id', ['-u', owner], { encoding: 'utf8' }).stdout.trim();
    const gid = spawnSync('id', ['-g', owner], { encoding: 'utf8' }).stdout.trim();
    const imapPort = await freePort();
    dovecot = await startDovecot(join(dir, 'dovecot'), {
      root,
      uid: Number(ids),
      gid: Number(gid),
      imapPort,
      quail: { node: process.execPath, main: MAIN },
    });

    const r = await run('python3', ['-c', IMAPLIB, String(imapPort), 'joe@example.com', 'joe-secret']);
    assert.equal(r.status, 0, `${r.out}\n${dovecot.log()}`);
    const got = JSON.parse(r.out) as { count: number; msgs: string[]; quota: string[]; refused?: string };
    assert.equal(got.refused, undefined, `${r.out}\n${dovecot.log()}`);
    assert.equal(got.count, 2);
    assert.match(got.msgs.join(''), /Subject: imap-1\r\n[\s\S]*message 1 for dovecot/);
    assert.match(got.msgs.join(''), /Subject: imap-2\r\n[\s\S]*message 2 for dovecot/);

    // Quota: Dovecot's GETQUOTAROOT (KiB, rounded up) says what quail's maildirsize says.
    const mine = maildirsize(maildir);
    assert.equal(mine.messages, 2);
    const quota = got.quota.join(' ');
    const m = /STORAGE (\d+) (\d+) MESSAGE (\d+) (\d+)/.exec(quota);
    assert.ok(m, quota);
    assert.deepEqual(
      m.slice(1).map(Number),
      [Math.ceil(mine.bytes / 1024), mine.limitBytes / 1024, mine.messages, mine.limitMessages],
      quota,
    );

    // The same passwords and flags as POP3: a wrong password and a no-imap mailbox are refused.
    for (const [user, pw] of [
      ['joe@example.com', 'wrong'],
      ['popper@example.com', 'pop-secret'],
    ] as const) {
      const x = await run('python3', ['-c', IMAPLIB, String(imapPort), user, pw]);
      assert.match(x.out, /"refused"/, `${user}: ${x.out}`);
    }
    // and the password check is quail's: changed with quail user passwd, seen by Dovecot at once.
    quail(['user', 'passwd', 'joe@example.com', '--password', 'new-secret', '--root', root]);
    const y = await run('python3', ['-c', IMAPLIB, String(imapPort), 'joe@example.com', 'new-secret']);
    assert.match(y.out, /"count": 2/, `${y.out}\n${dovecot.log()}`);
  } finally {
    await dovecot?.stop();
    if (q?.pid !== undefined && q.exitCode === null) {
      const exited = new Promise((r) => q?.once('exit', r));
      q.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      try {
        process.kill(-q.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
