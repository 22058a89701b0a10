// quail start with the user directory: AUTH over STARTTLS (swaks --tls --auth, smtplib) and RCPT-time mailbox checks.
// tier: system (needs python3, quail start)
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { swaks } from '../../test/support/start.js';
import { waitFor } from '../../test/support/wait.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

/** A sink on 127.0.0.2 that records each message's data. */
function sink(): Promise<{ server: Server; port: number; got: string[] }> {
  const got: string[] = [];
  const server = createServer((sock) => {
    let buf = '';
    let data = false;
    sock.write('220 sink\r\n');
    sock.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      for (;;) {
        if (data) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          got.push(buf.slice(0, end + 2));
          buf = buf.slice(end + 5);
          data = false;
          sock.write('250 ok\r\n');
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const verb = buf.slice(0, 4).toUpperCase();
        buf = buf.slice(nl + 2);
        if (verb === 'DATA') {
          data = true;
          sock.write('354 go\r\n');
        } else if (verb === 'QUIT') return void sock.end('221 bye\r\n');
        else sock.write('250 ok\r\n');
      }
    });
    sock.on('error', () => undefined);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.2', () => resolve({ server, port: (server.address() as AddressInfo).port, got })),
  );
}

function cli(root: string, ...args: string[]): void {
  const r = spawnSync(process.execPath, [MAIN, ...args, '--root', root], { encoding: 'utf8' });
  assert.equal(r.status, 0, `quail ${args.join(' ')}: ${r.stderr}`);
}

const SMTPLIB = `
import smtplib, ssl, sys, time
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP('127.0.0.1', port, timeout=20)
s.starttls(context=ctx)
t0 = time.monotonic()
try:
    s.login(user, pw)
except smtplib.SMTPAuthenticationError as e:
    print('AUTHFAIL', e.smtp_code); s.quit(); sys.exit(0)
ms = int((time.monotonic() - t0) * 1000)
s.sendmail(user, ['pal@remote.test'], 'Subject: via smtplib\\r\\n\\r\\nhello\\r\\n')
print('SENT', ms); s.quit()
`;

void test('quail start + directory: AUTH with swaks and smtplib relays (ESMTPA, login in Received and log); unknown mailbox 550 5.1.1; catch-all accepted', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-auth-'));
  chmodSync(root, 0o755);
  const remote = await sink();
  let child: ChildProcess | undefined;
  let log = '';
  try {
    cli(root, 'init');
    cli(root, 'domain', 'add', 'example.org');
    cli(root, 'user', 'add', 'joe@example.org', '--password', 's3cret');
    cli(root, 'user', 'add', 'ann@example.org', '--password', 'other');
    cli(root, 'alias', 'add', 'sales@example.org', 'joe@example.org');
    cli(root, 'domain', 'alias', 'example.net', 'example.org');
    cli(root, 'domain', 'add', 'catchall.test');
    cli(root, 'user', 'add', 'box@catchall.test', '--password', 'x');
    cli(root, 'domain', 'mod', 'catchall.test', '--policy', 'mailbox:box');
    writeFileSync(join(root, 'control', 'smtproutes'), `remote.test:127.0.0.2:${remote.port}\n`);
    child = spawn(
      process.execPath,
      [MAIN, 'start', '--root', root, '--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
    const exited = new Promise<number | null>((r) => child?.on('exit', (code) => r(code)));
    const stateFile = join(root, 'run', 'quail.json');
    await waitFor(
      () => log.includes('quail.started') && existsSync(stateFile),
      20_000,
      () => `quail.started\n${log}`,
    );
    const st = JSON.parse(readFileSync(stateFile, 'utf8')) as { listeners: Array<{ port: number; kind: string }> };
    const smtp = st.listeners.find((l) => l.kind === 'smtp')?.port ?? 0;
    const submission = st.listeners.find((l) => l.kind === 'submission')?.port ?? 0;

    // no tcp.smtp: without AUTH nobody relays
    assert.match(
      swaks(smtp, ['--to', 'pal@remote.test', '--quit-after', 'RCPT'], 'joe@example.org').out,
      /553 5\.7\.1 sorry, that domain isn't in my list of allowed rcpthosts/,
    );
    // no AUTH in clear text, not even from 127.0.0.1 (no tcp.smtp rule allows it)
    const clear = swaks(
      smtp,
      ['--auth', 'PLAIN', '--auth-user', 'joe@example.org', '--auth-password', 's3cret', '--to', 'pal@remote.test'],
      'joe@example.org',
    );
    assert.notEqual(clear.status, 0);
    assert.doesNotMatch(clear.out, /<- *250[- ]AUTH/, 'AUTH is not offered before STARTTLS');
    assert.match(clear.out, /did not advertise authentication/);
    // wrong password (over STARTTLS: quail init made control/servercert.pem)
    const bad = swaks(
      smtp,
      [
        '--tls',
        '--auth',
        'PLAIN',
        '--auth-user',
        'joe@example.org',
        '--auth-password',
        'wrong',
        '--to',
        'pal@remote.test',
      ],
      'joe@example.org',
    );
    assert.notEqual(bad.status, 0);
    assert.match(bad.out, /535 5\.7\.8 authentication failed/);
    // AUTH PLAIN after STARTTLS, then relay
    const good = swaks(
      smtp,
      [
        '--tls',
        '--auth',
        'PLAIN',
        '--auth-user',
        'joe@example.org',
        '--auth-password',
        's3cret',
        '--to',
        'pal@remote.test',
        '--header',
        'Subject: via swaks',
      ],
      'joe@example.org',
    );
    assert.equal(good.status, 0, good.out);
    assert.match(good.out, /235 2\.7\.0 authentication successful/);
    await waitFor(
      () => remote.got.length === 1,
      20_000,
      () => `relay to the sink\n${log}`,
    );
    assert.match(
      remote.got[0] ?? '',
      /Received: from unknown \(HELO [^)]*\) \(joe@example\.org@127\.0\.0\.1\)\r\n {2}by \S+ with ESMTPSA; /,
    );
    assert.match(log, /smtp\.queued [^\n]*auth=joe@example\.org/);
    // issue 12: after AUTH the sender must be joe's: his address or an alias that reaches him, not ann's
    const authAs = (from: string): { status: number | null; out: string } =>
      swaks(
        smtp,
        [
          '--tls',
          '--auth',
          'PLAIN',
          '--auth-user',
          'joe@example.org',
          '--auth-password',
          's3cret',
          '--to',
          'pal@remote.test',
          '--quit-after',
          'RCPT',
        ],
        from,
      );
    assert.match(
      authAs('ann@example.org').out,
      /553 5\.7\.1 sorry, joe@example\.org may not send as <ann@example\.org>: use your own address or one of its aliases/,
    );
    assert.match(authAs('sales@example.org').out, /<~ *250 2\.1\.5 ok/);
    assert.match(authAs('joe-lists@example.org').out, /<~ *250 2\.1\.5 ok/);

    // RCPT-time checks for directory domains
    assert.match(
      swaks(smtp, ['--to', 'nobody@example.org', '--quit-after', 'RCPT'], 'joe@example.org').out,
      /550 5\.1\.1 sorry, no mailbox here by that name/,
    );
    assert.match(
      swaks(smtp, ['--to', 'anything@catchall.test', '--quit-after', 'RCPT'], 'joe@example.org').out,
      /250 2\.1\.5 ok/,
    );
    // a mailbox with an extension, an alias, the same through the alias domain; unknown there too
    for (const to of ['joe-ext@example.org', 'sales@example.org', 'Joe-Ext@EXAMPLE.NET', 'sales@example.net'])
      assert.match(swaks(smtp, ['--to', to, '--quit-after', 'RCPT'], 'joe@example.org').out, /250 2\.1\.5 ok/, to);
    assert.match(
      swaks(smtp, ['--to', 'nobody-joe@example.net', '--quit-after', 'RCPT'], 'joe@example.org').out,
      /550 5\.1\.1 sorry, no mailbox here by that name/,
    );
    const local = swaks(smtp, ['--to', 'joe@example.org', '--header', 'Subject: to joe'], 'joe@example.org');
    assert.equal(local.status, 0, local.out);
    const joeNew = join(root, 'domains', 'example.org', 'joe', 'Maildir', 'new');
    await waitFor(
      () => existsSync(joeNew) && readdirSync(joeNew).length === 1,
      20_000,
      () => `delivery to joe\n${log}`,
    );

    // Python's smtplib: STARTTLS + AUTH on the submission port
    const py = spawnSync('python3', ['-c', SMTPLIB, String(submission), 'joe@example.org', 's3cret'], {
      encoding: 'utf8',
    });
    const [sent, loginMs] = py.stdout.trim().split(' ');
    assert.equal(sent, 'SENT', py.stdout + py.stderr);
    // the wrong password on the smtp port above slows this address's logins on the submission port too (1 s):
    // one failed-AUTH table for all the listeners of quail start
    assert.ok(Number(loginMs) >= 900, `login on the second port waited ${loginMs} ms`);
    await waitFor(
      () => remote.got.length === 2,
      20_000,
      () => `smtplib relay\n${log}`,
    );
    assert.match(remote.got[1] ?? '', /\(joe@example\.org@127\.0\.0\.1\)\r\n {2}by \S+ with ESMTPSA; /);
    const pyBad = spawnSync('python3', ['-c', SMTPLIB, String(submission), 'joe@example.org', 'nope'], {
      encoding: 'utf8',
    });
    assert.equal(pyBad.stdout.trim(), 'AUTHFAIL 535', pyBad.stderr);

    child.kill('SIGTERM');
    assert.equal(await exited, 0, log);
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    remote.server.close();
    rmSync(root, { recursive: true, force: true });
  }
});
