// Users imported from vpopmail with bcrypt ($2y$) and DES crypt hashes log in: authenticate, quail checkpassword, POP3;
// a slow SHA-crypt hash is verified off the event loop of the POP3 process, of the SMTP process (AUTH on submission) and
// of the ODMR process (AUTH on the odmr listener).
// tier: system (needs perl, quail start)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { authenticate } from './auth.js';
import { PopClient } from '../../test/support/pop3d.js';
import { waitFor } from '../../test/support/wait.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

function quail(args: readonly string[]): string {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `quail ${args.join(' ')}: exit ${String(r.status)}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The system's crypt(3) (libxcrypt through perl): how vpopmail made the hashes. */
function crypt(pw: string, setting: string): string {
  const r = spawnSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1]) // "undef"', pw, setting], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** checkpassword as qmail-popup runs it (login on fd 3); the program prints who logged in. */
function checkpassword(root: string, user: string, pw: string): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'quail-implogin-fd3-'));
  try {
    writeFileSync(join(dir, 'fd3'), `${user}\0${pw}\x001700000000\0`);
    const r = spawnSync(
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
        'echo "$USER|$MAILDIR"',
      ],
      { encoding: 'utf8', env: { ...process.env, F: join(dir, 'fd3') } },
    );
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** USER/PASS/STAT/QUIT on the plain POP3 port; the server's replies, one per line (the greeting first). */
async function pop(port: number, user: string, pw: string): Promise<string[]> {
  const c = await PopClient.open(port);
  try {
    const lines = [(await c.line()) ?? '<eof>'];
    for (const cmd of [`USER ${user}`, `PASS ${pw}`, 'STAT', 'QUIT']) lines.push(await c.cmd(cmd));
    return lines;
  } finally {
    c.socket.destroy();
  }
}

void test('vpopmail import: $2y$ bcrypt and DES crypt users log in (authenticate, checkpassword, POP3, SMTP AUTH, ODMR AUTH); wrong passwords do not', async () => {
  const base = mkdtempSync(join(tmpdir(), 'quail-implogin-'));
  chmodSync(base, 0o755); // as root the POP3 child runs as control/quailuser and must reach the mail root
  const root = join(base, 'root');
  let q: ChildProcess | undefined;
  const opened: PopClient[] = [];
  try {
    // The vpopmail domains/ tree: bob has a bcrypt hash and one message, dee a DES hash, eve a BSDi DES hash.
    const old = join(base, 'vpopmail', 'domains', 'old.test');
    mkdirSync(join(old, 'bob', 'Maildir', 'new'), { recursive: true });
    for (const s of ['cur', 'tmp']) mkdirSync(join(old, 'bob', 'Maildir', s));
    writeFileSync(join(old, 'bob', 'Maildir', 'new', '1700000000.1.old'), 'Subject: kept\n\nfrom vpopmail\n');
    const bob = crypt('bob-pw-2y', '$2y$05$abcdefghijklmnopqrstuu');
    const dee = crypt('deepass1', 'dX');
    const eve = crypt('eve has a long one', '_J9..eeee');
    // a SHA-crypt hash of 1,000,000 rounds: about a second to verify, long enough to see what else is served meanwhile
    const sal = crypt('sal-slow-pw', '$6$rounds=1000000$slowsalt$');
    assert.match(sal, /^\$6\$rounds=1000000\$slowsalt\$.{86}$/);
    assert.match(bob, /^\$2y\$05\$.{53}$/);
    assert.match(dee, /^dX.{11}$/);
    writeFileSync(
      join(old, 'vpasswd'),
      [
        `bob:${bob}:1:0:Bob:/home/vpopmail/domains/old.test/bob:NOQUOTA`,
        `dee:${dee}:1:0:Dee:/home/vpopmail/domains/old.test/dee:NOQUOTA`,
        `eve:${eve}:1:0:Eve:/home/vpopmail/domains/old.test/eve:NOQUOTA`,
        `sal:${sal}:1:0:Sal:/home/vpopmail/domains/old.test/sal:NOQUOTA`,
        'sam:$2x$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q:1:0:Sam:/home/vpopmail/domains/old.test/sam:NOQUOTA',
        '',
      ].join('\n'),
    );

    quail(['init', '--root', root, '--me', 'mx.test']);
    const rep = JSON.parse(
      quail(['import', 'vpopmail', join(base, 'vpopmail', 'domains'), '--json', '--root', root]),
    ) as { imported: string[] };
    // Only the hash quail cannot verify ($2x$, crypt_blowfish's buggy variant) is reported for a reset.
    assert.deepEqual(rep.imported, [
      'domain old.test',
      'mailbox bob@old.test',
      'mailbox dee@old.test',
      'mailbox eve@old.test',
      'mailbox sal@old.test',
      'mailbox sam@old.test (password hash of a scheme quail cannot verify: reset it)',
    ]);

    const ok = async (login: string, pw: string): Promise<string | null> => {
      const m = await authenticate(root, login, pw, { recordLogin: false });
      return m === null ? null : `${m.local}@${m.domain}`;
    };
    assert.equal(await ok('bob@old.test', 'bob-pw-2y'), 'bob@old.test');
    assert.equal(await ok('dee%old.test', 'deepass1'), 'dee@old.test');
    assert.equal(await ok('dee@old.test', 'deepass1 and anything'), 'dee@old.test', 'DES reads 8 characters');
    assert.equal(await ok('eve@old.test', 'eve has a long one'), 'eve@old.test');
    assert.equal(await ok('bob@old.test', 'bob-pw-2Y'), null);
    assert.equal(await ok('dee@old.test', 'deepass'), null);
    assert.equal(await ok('eve@old.test', 'eve has a long on'), null);
    assert.equal(await ok('sam@old.test', 'pw'), null);

    for (const [user, pw] of [
      ['bob@old.test', 'bob-pw-2y'],
      ['dee@old.test', 'deepass1'],
    ] as const) {
      const good = checkpassword(root, user, pw);
      assert.equal(good.status, 0, good.out);
      assert.equal(good.out, `${user}|${root}/domains/old.test/${user.split('@')[0] ?? ''}/Maildir/\n`);
      assert.equal(checkpassword(root, user, `${pw}x`.slice(1)).status, 1, `${user} with a wrong password`);
    }

    // this test speaks plain USER/PASS: the one client it comes from may (POP3 refuses clear-text logins otherwise)
    writeFileSync(join(root, 'control', 'tcp.pop3'), '127.0.0.1:allow,QUAIL_CLEARAUTH="1"\n');
    // and AUTH PLAIN without STARTTLS on submission; one SMTP process, so that both SMTP sessions below share it
    writeFileSync(join(root, 'control', 'tcp.smtp'), '127.0.0.1:allow,QUAIL_CLEARAUTH="1"\n');
    writeFileSync(join(root, 'control', 'smtpdprocesses'), '1\n');
    // an ODMR listener (RFC 2645) on a free port; the flags below give the other listeners
    writeFileSync(join(root, 'control', 'listeners'), '127.0.0.1:0 odmr\n');
    // ODMR authenticates only the ATRN login of a held domain: sal's
    const atrn = ['--host', '127.0.0.1:9', '--every', '1h', '--atrn', 'sal@old.test'];
    quail(['held', 'add', 'sal.held.test', '--root', root, ...atrn]);
    q = spawn(
      process.execPath,
      [
        MAIN,
        'start',
        '--root',
        root,
        '--smtp',
        '127.0.0.1:0',
        '--submission',
        '127.0.0.1:0',
        '--pop3',
        '127.0.0.1:0',
        '--pop3s',
        'none',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    let log = '';
    q.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    q.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    await waitFor(
      () => /quail\.started/.test(log),
      60_000,
      () => `quail start did not start:\n${log}`,
    );
    const port = Number(/pop3\.listening address=\S+ port=(\d+)/.exec(log)?.[1] ?? NaN);
    assert.ok(port > 0, log);
    const b = await pop(port, 'bob@old.test', 'bob-pw-2y');
    assert.match(b[2] ?? '', /^\+OK/, b.join('\n'));
    assert.match(b[3] ?? '', /^\+OK 1 \d+$/, b.join('\n'));
    const d = await pop(port, 'dee@old.test', 'deepass1');
    assert.match(d[2] ?? '', /^\+OK/, d.join('\n'));
    assert.match(d[3] ?? '', /^\+OK 0 0$/, d.join('\n'));
    // The slow hash is computed on a thread of the POP3 process (src/directory/crypt-pool.ts): commands of another
    // session sent while it is computed are answered before the login is. Computed on the process's event loop, the
    // first NOOP's answer would wait for the hash. (Before any failed login: that would delay the next ones from this
    // address, and the NOOP would be answered during the delay.)
    const dee2 = await PopClient.open(port);
    opened.push(dee2);
    await dee2.line();
    await dee2.cmd('USER dee@old.test');
    assert.match(await dee2.cmd('PASS deepass1'), /^\+OK/);
    const slow = await PopClient.open(port);
    opened.push(slow);
    await slow.line();
    await slow.cmd('USER sal@old.test');
    let slowAnswer: string | undefined;
    const slowLogin = slow.cmd('PASS sal-slow-pw').then((l) => (slowAnswer = l));
    await new Promise((r) => setTimeout(r, 200)); // the PASS is read and its hash under way
    // 50 NOOPs one after the other take milliseconds; the hash takes about a second, and inline the first NOOP would
    // be answered only after it, the rest after the login's last steps
    for (let n = 1; n <= 50; n++) assert.match(await dee2.cmd('NOOP'), /^\+OK/, `NOOP ${n}`);
    assert.equal(slowAnswer, undefined, '50 NOOPs answered while the slow login is verified');
    assert.match(await slowLogin, /^\+OK/, 'the slow hash verifies');
    // The same through the SMTP process: AUTH PLAIN with the slow hash on submission, while another session's NOOPs
    // are answered (15: smtpd closes a session after 20 commands without a mail).
    const sub = Number(/smtp\.listening address=\S+ port=(\d+) kind=submission/.exec(log)?.[1] ?? NaN);
    assert.ok(sub > 0, log);
    const ehlo = async (c: PopClient): Promise<void> => {
      assert.match((await c.line()) ?? '', /^220 /);
      c.write('EHLO client.test\r\n');
      for (let l = await c.line(); !/^250 /.test(l ?? '250 '); l = await c.line()) assert.match(l ?? '', /^250-/);
    };
    const other = await PopClient.open(sub);
    opened.push(other);
    await ehlo(other);
    const authing = await PopClient.open(sub);
    opened.push(authing);
    await ehlo(authing);
    let authAnswer: string | undefined;
    const plain = Buffer.from('\0sal@old.test\0sal-slow-pw').toString('base64');
    const slowAuth = authing.cmd(`AUTH PLAIN ${plain}`).then((l) => (authAnswer = l));
    await new Promise((r) => setTimeout(r, 200));
    for (let n = 1; n <= 15; n++) assert.match(await other.cmd('NOOP'), /^250 /, `SMTP NOOP ${n}`);
    assert.equal(authAnswer, undefined, '15 NOOPs answered while the slow AUTH is verified');
    assert.match(await slowAuth, /^235 /, 'the slow hash verifies for AUTH');
    // And through the ODMR process (its own child, src/start/odmr-child.ts): AUTH PLAIN with the slow hash on the odmr
    // listener (allowed without TLS from a loopback address), while a session opened after it is greeted, says EHLO
    // and has its NOOPs answered (the ODMR server counts no NOOPs).
    const odmr = Number(/odmr\.listening address=\S+ port=(\d+)/.exec(log)?.[1] ?? NaN);
    assert.ok(odmr > 0, log);
    const turning = await PopClient.open(odmr);
    opened.push(turning);
    await ehlo(turning);
    let turnAnswer: string | undefined;
    const slowTurn = turning.cmd(`AUTH PLAIN ${plain}`).then((l) => (turnAnswer = l));
    await new Promise((r) => setTimeout(r, 200));
    const waiter = await PopClient.open(odmr);
    opened.push(waiter);
    await ehlo(waiter);
    for (let n = 1; n <= 50; n++) assert.match(await waiter.cmd('NOOP'), /^250 /, `ODMR NOOP ${n}`);
    assert.equal(turnAnswer, undefined, 'a greeting, EHLO and 50 NOOPs answered while the slow ODMR AUTH is verified');
    assert.match(await slowTurn, /^235 /, 'the slow hash verifies for ODMR AUTH');
    const bad = await pop(port, 'bob@old.test', 'deepass1');
    assert.match(bad[2] ?? '', /^-ERR/, bad.join('\n'));
  } finally {
    for (const c of opened) c.destroy();
    try {
      if (q?.pid !== undefined) process.kill(-q.pid, 'SIGKILL');
    } catch {
      // gone already
    }
    rmSync(base, { recursive: true, force: true });
  }
});
