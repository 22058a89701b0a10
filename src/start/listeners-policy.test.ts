// Listeners with their own policy through a running `quail start`: seed 003's two instances on two addresses (one
// accepting its domains, one as if rcpthosts were empty), DNS blocklists over control/dnsservers, greeting delay,
// tarpitting, a listener's own rcpthosts and tcprules files.
// tier: system (needs quail start, swaks, bash, 127.0.0.2-127.0.0.5 on lo)
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoPath } from '../../test/support/paths.js';
import { freePort, MAIN, setupRoot, waitFor } from '../../test/support/start.js';
import { startDns, type DnsName } from '../../test/support/testdns.js';
import { Wire } from '../../test/support/hostile-wire.js';

function cli(root: string, ...args: string[]): string {
  const r = spawnSync(process.execPath, [MAIN, ...args, '--root', root], { encoding: 'utf8' });
  assert.equal(r.status, 0, `quail ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

function swaksTo(host: string, port: number, args: readonly string[]): { status: number | null; out: string } {
  const r = spawnSync('swaks', ['--server', `${host}:${port}`, '--timeout', '20', ...args], { encoding: 'latin1' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Connects from `from` to host:port and says each line, one reply each (the greeting first). */
async function dialogue(host: string, port: number, from: string, lines: readonly string[]): Promise<string[]> {
  const w = await Wire.connect(port, { host, localAddress: from });
  try {
    const out = [await w.reply()];
    for (const l of lines) {
      w.send(`${l}\r\n`);
      out.push(await w.reply());
    }
    return out;
  } finally {
    w.destroy();
  }
}

void test('seed 003: two smtp listeners on 127.0.0.2 and 127.0.0.3 with their own acceptance, blocklists, greetdelay, tarpit and files', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-listeners-'));
  chmodSync(root, 0o755);
  const dns = await startDns(
    new Map<string, DnsName>([['9.0.0.127.bl.test', { txt: ['127.0.0.9 is listed, see http://bl.test/'] }]]),
  );
  let child: ChildProcess | undefined;
  let log = '';
  try {
    cli(root, 'init', '--me', 'mx.test');
    cli(root, 'domain', 'add', 'example.org');
    cli(root, 'user', 'add', 'joe@example.org', '--password', 's3cret');
    const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
    const ctl = (name: string, text: string): void => writeFileSync(join(root, 'control', name), text);
    ctl(
      'listeners',
      [
        // the public MX: its domains (control/rcpthosts), blocklisted clients refused, a greeting delay, a tarpit
        `127.0.0.2:${p1} smtp rbl=bl.test greetdelay=1 tarpitcount=2 tarpitdelay=3`,
        // the submission instance: as if rcpthosts were empty (only AUTH or RELAYCLIENT may give recipients)
        `127.0.0.3:${p2} smtp rcpthosts=none`,
        // a third with its own rcpthosts and tcprules files
        `127.0.0.4:${p3} smtp rcpthosts=rcpthosts.partner tcprules=tcp.partner`,
        '',
      ].join('\n'),
    );
    ctl('dnsservers', `127.0.0.1:${dns.port}\n`);
    ctl('tcp.smtp', '127.0.0.8:allow,RBLSMTPD="-you may not"\n:allow\n');
    ctl('rcpthosts.partner', 'partner.test\n');
    ctl('tcp.partner', '127.0.0.7:deny\n:allow,RELAYCLIENT=""\n');
    child = spawn(process.execPath, [MAIN, 'start', '--root', root], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
    await waitFor(
      () => log.includes('quail.started'),
      30_000,
      () => log,
    );

    // 127.0.0.2: a real client, patient enough for the greeting delay, gets its message for example.org queued
    const mx = swaksTo('127.0.0.2', p1, ['--from', 'a@remote.test', '--to', 'joe@example.org']);
    assert.equal(mx.status, 0, mx.out);
    // ... relaying is refused there
    assert.match(
      (
        await dialogue('127.0.0.2', p1, '127.0.0.1', ['HELO c', 'MAIL FROM:<a@b.test>', 'RCPT TO:<x@elsewhere.test>'])
      )[3] ?? '',
      /^553 /,
    );
    // a client that talks first is refused before any greeting
    const eager = await Wire.connect(p1, { host: '127.0.0.2' });
    eager.send('EHLO eager.test\r\n');
    assert.match(await eager.reply(), /^554 5\.5\.0 SMTP protocol violation/);
    assert.ok(await eager.closes());
    eager.destroy();
    // a listed client (127.0.0.9 in bl.test, through control/dnsservers) gets the list's text, as rblsmtpd says it
    const listed = await dialogue('127.0.0.2', p1, '127.0.0.9', ['EHLO c', 'MAIL FROM:<a@b.test>', 'QUIT']);
    assert.deepEqual(listed, [
      '220 mx.test\r\n',
      '250 mx.test\r\n',
      '451 127.0.0.9 is listed, see http://bl.test/\r\n',
      '221 mx.test\r\n',
    ]);
    // RBLSMTPD="-text" in tcp.smtp: refused with 553 without a lookup
    assert.equal((await dialogue('127.0.0.2', p1, '127.0.0.8', ['MAIL FROM:<a@b.test>']))[1], '553 you may not\r\n');
    await waitFor(
      () => /smtp\.refused .*why=rbl/.test(log),
      10_000,
      () => log,
    );

    // the tarpit: past 2 recipients each RCPT reply waits 3 s (the third is still unanswered after 1.5 s)
    const w = await Wire.connect(p1, { host: '127.0.0.2' });
    assert.match(await w.reply(), /^220 /);
    w.send('HELO c\r\n');
    assert.match(await w.reply(), /^250 /);
    w.send('MAIL FROM:<a@b.test>\r\n');
    assert.match(await w.reply(), /^250 /);
    for (let n = 0; n < 2; n++) {
      w.send('RCPT TO:<joe@example.org>\r\n');
      assert.match(await w.reply(), /^250 /);
    }
    w.send('RCPT TO:<joe@example.org>\r\n');
    assert.equal(await w.reply(1500), 'timeout', 'the third RCPT reply is held back');
    assert.match(await w.reply(), /^250 /);
    w.destroy();

    // 127.0.0.3 (rcpthosts=none): example.org is refused without AUTH, accepted with it
    assert.match(
      (
        await dialogue('127.0.0.3', p2, '127.0.0.1', ['HELO c', 'MAIL FROM:<a@b.test>', 'RCPT TO:<joe@example.org>'])
      )[3] ?? '',
      /^553 sorry, that domain isn't in my list of allowed rcpthosts/,
    );
    const sub = swaksTo('127.0.0.3', p2, [
      ...['--tls', '--auth', 'PLAIN', '--auth-user', 'joe@example.org', '--auth-password', 's3cret'],
      ...['--from', 'joe@example.org', '--to', 'joe@example.org'],
    ]);
    assert.equal(sub.status, 0, sub.out);

    // 127.0.0.4: its own files — tcp.partner denies 127.0.0.7 and relays for the rest; rcpthosts.partner
    const denied = await Wire.connect(p3, { host: '127.0.0.4', localAddress: '127.0.0.7' });
    assert.match(await denied.reply(), /^5\d\d /);
    denied.destroy();
    const partner = swaksTo('127.0.0.4', p3, ['--from', 'a@b.test', '--to', 'joe@example.org']);
    assert.equal(partner.status, 0, partner.out);
    await waitFor(
      () => (log.match(/smtp\.queued/g) ?? []).length >= 3,
      20_000,
      () => log,
    );
  } finally {
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child?.on('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    await dns.close();
    rmSync(root, { recursive: true, force: true });
  }
});

void test('filter=PROGRAM on a listener line: the seed 003 qmail-queue wrapper runs for that listener only; QMAILQUEUE="" in tcp.smtp exempts a client', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-listeners-filter-'));
  let child: ChildProcess | undefined;
  let log = '';
  try {
    setupRoot(root, 'mx.example.com', [{ domain: 'example.com', boxes: ['joe'] }]);
    const bin = join(root, 'bin');
    mkdirSync(bin, { recursive: true, mode: 0o755 });
    // `quail` on the PATH quail start passes on, as an installed quail would be (the wrapper calls quail queue-inject)
    writeFileSync(join(bin, 'quail'), `#!/bin/sh\nexec ${process.execPath} ${MAIN} "$@"\n`, { mode: 0o755 });
    const wrapper = join(bin, 'qmail-queue');
    copyFileSync(repoPath('src', 'filter', 'testdata', 'sender-domain-wrapper.sh'), wrapper);
    chmodSync(wrapper, 0o755);
    const [p1, p2] = [await freePort(), await freePort()];
    const ctl = (name: string, text: string): void => writeFileSync(join(root, 'control', name), text);
    ctl('listeners', `127.0.0.2:${p1} smtp filter=${wrapper}\n127.0.0.3:${p2} smtp\n`);
    ctl('tcp.smtp', '127.0.0.5:allow,QMAILQUEUE=""\n:allow\n');
    child = spawn(process.execPath, [MAIN, 'start', '--root', root], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` },
    });
    child.stdout?.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
    await waitFor(
      () => log.includes('quail.started'),
      30_000,
      () => log,
    );

    const to = (host: string, port: number, from: string, subject: string, local?: string): string =>
      swaksTo(host, port, [
        ...['--from', from, '--to', 'joe@example.com', '--header', `Subject: ${subject}`],
        ...(local !== undefined ? ['--local-interface', local] : []),
      ]).out;
    // the filtered listener: the wrapper refuses refused.test with its own text, queues the rest through queue-inject
    assert.match(
      to('127.0.0.2', p1, 'bob@refused.test', 'refused'),
      /<\*\* *554 5\.7\.1 sorry, refused\.test may not send through this server/,
    );
    assert.match(to('127.0.0.2', p1, 'ann@good.test', 'filtered'), /<[-~] *250 2\.0\.0 ok \d+ qp \d+$/m);
    // the other listener runs no filter: the same sender is queued
    assert.match(to('127.0.0.3', p2, 'bob@refused.test', 'unfiltered'), /<[-~] *250 2\.0\.0 ok /m);
    // QMAILQUEUE="" for 127.0.0.5 in tcp.smtp: that client skips the listener's filter
    assert.match(to('127.0.0.2', p1, 'bob@refused.test', 'exempt', '127.0.0.5'), /<[-~] *250 2\.0\.0 ok /m);
    const newDir = join(root, 'domains', 'example.com', 'joe', 'Maildir', 'new');
    await waitFor(
      () => readdirSync(newDir).length === 3,
      30_000,
      () => `three deliveries; log:\n${log}`,
    );
    const subjects = readdirSync(newDir)
      .map((f) => /^Subject: (.*)$/m.exec(readFileSync(join(newDir, f), 'latin1'))?.[1])
      .sort();
    assert.deepEqual(subjects, ['exempt', 'filtered', 'unfiltered']);
    await waitFor(
      () => /smtp\.queued .*filter=/.test(log),
      10_000,
      () => log,
    );
  } finally {
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child?.on('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    rmSync(root, { recursive: true, force: true });
  }
});

void test('quail start refuses a listener naming a missing rcpthosts= or tcprules= file, and a bad rbl= zone', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-listeners-bad-'));
  chmodSync(root, 0o755);
  try {
    cli(root, 'init', '--me', 'mx.test');
    const run = (line: string): { status: number | null; out: string } => {
      writeFileSync(join(root, 'control', 'listeners'), `${line}\n`);
      const r = spawnSync(process.execPath, [MAIN, 'start', '--root', root], { encoding: 'utf8', timeout: 30_000 });
      return { status: r.status, out: `${r.stdout}${r.stderr}` };
    };
    let r = run('127.0.0.1:0 smtp rcpthosts=rcpthosts.nosuch');
    assert.equal(r.status, 100, r.out);
    assert.match(r.out, /says rcpthosts=rcpthosts\.nosuch, but \S+\/control\/rcpthosts\.nosuch does not exist/);
    r = run('127.0.0.1:0 smtp tcprules=tcp.nosuch');
    assert.equal(r.status, 100, r.out);
    assert.match(r.out, /says tcprules=tcp\.nosuch, but \S+\/control\/tcp\.nosuch does not exist/);
    r = run('127.0.0.1:0 smtp rcpthosts=../etc/passwd');
    assert.equal(r.status, 100, r.out);
    assert.match(r.out, /option rcpthosts=\.\.\/etc\/passwd: the name of a file in control\//);
    r = run('127.0.0.1:0 smtp rbl=bad_zone!');
    assert.equal(r.status, 100, r.out);
    assert.match(r.out, /option rbl=bad_zone!: a DNS zone/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
