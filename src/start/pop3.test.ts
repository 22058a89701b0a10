// POP3 in quail start: the pop3 listener plan (golden table) and issue 6's "Done means" end to end with real clients.
// tier: system (needs fetchmail, python3, quail start, swaks)
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server } from 'node:net';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { errText } from '../core/index.js';
import { Control } from '../control/index.js';
import type { Pop3ListenerSpec } from '../pop3d/index.js';
import { pop3ClientRules } from './pop3.js';
import { listenerPlan, startServices, type RunningService } from './services.js';
import { overridesOf, type Pop3Flags } from './supervisor.js';
import type { EventLog } from './log.js';
import { LoginHub } from './login-hub.js';
import { LoginThrottle } from '../throttle/index.js';
import { waitFor } from '../../test/support/wait.js';

/** The pop3 listeners of control/listeners (or the embedded default), or of the flags: the services table's plan. */
function pop3Plan(control: Control, flags: Pop3Flags): { specs: Pop3ListenerSpec[]; embedded: boolean } {
  const mine = listenerPlan(control, overridesOf({ pop3: flags })).listeners.filter((l) => l.kind === 'pop3');
  return {
    specs: mine.map((l) => l.spec as Pop3ListenerSpec),
    embedded: mine.length > 0 && mine.every((l) => l.embedded === true),
  };
}

/** POP3 alone, as quail start runs it (not root: in this process). */
async function startPop3(root: string, log: EventLog, flags: Pop3Flags = {}): Promise<RunningService> {
  const control = new Control(root);
  const plan = listenerPlan(control, overridesOf({ pop3: flags }));
  const [pop] = await startServices({ listeners: plan.listeners.filter((l) => l.kind === 'pop3') }, () => ({
    root,
    control,
    account: undefined,
    log,
    onQueued: () => undefined,
    onServing: () => undefined,
    onCrash: () => undefined,
    logins: new LoginHub(new LoginThrottle()),
  }));
  assert.ok(pop, 'the pop3 service started');
  return pop;
}
import { connectionHolders, listeningInode, procUids, socketHolders } from '../../test/support/start.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

void test('pop3 listeners: control/listeners, the embedded default, --pop3/--pop3s (golden table)', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-pop3plan-'));
  try {
    const rows: Array<[string | null, Pop3Flags, string]> = [
      [null, {}, 'embedded 127.0.0.1:2110 127.0.0.1:2995/implicit'],
      ['127.0.0.1:25 smtp\n', {}, 'configured'],
      [
        '127.0.0.1:25 smtp\n0.0.0.0:995 pop3 tls=implicit idle=60\n[::1]:110 pop3 plaintext=allow maxperip=3\n',
        {},
        'configured 0.0.0.0:995/implicit/idle=60000 ::1:110/plaintext=allow/max=3',
      ],
      [
        '0.0.0.0:110 pop3\n',
        { pop3: ['127.0.0.1:0'], pop3s: ['127.0.0.1:0'] },
        'configured 127.0.0.1:0 127.0.0.1:0/implicit',
      ],
      [null, { pop3: ['none'] }, 'configured'],
      [null, { pop3: ['nohost'] }, 'error --pop3 "nohost" is not ADDRESS:PORT'],
      ['0.0.0.0:110 pop3 tls=maybe\n', {}, 'error line'],
      ['0.0.0.0:99999 pop3\n', {}, 'error line'],
    ];
    for (const [file, flags, want] of rows) {
      if (file === null) rmSync(join(root, 'control', 'listeners'), { force: true });
      else {
        spawnSync('mkdir', ['-p', join(root, 'control')]);
        writeFileSync(join(root, 'control', 'listeners'), file);
      }
      let got: string;
      try {
        const p = pop3Plan(new Control(root), flags);
        got = [
          p.embedded ? 'embedded' : 'configured',
          ...p.specs.map((s) =>
            [
              `${s.host}:${s.port}`,
              s.implicitTls ? 'implicit' : '',
              s.plaintext ? `plaintext=${s.plaintext}` : '',
              s.idleTimeoutMs ? `idle=${s.idleTimeoutMs}` : '',
              s.maxPerIp ? `max=${s.maxPerIp}` : '',
            ]
              .filter((x) => x !== '')
              .join('/'),
          ),
        ].join(' ');
      } catch (err) {
        const m = errText(err);
        got = /control\/listeners line \d+: /.test(m) && /fix the line/.test(m) ? 'error line' : `error ${m}`;
      }
      assert.equal(got, want, `listeners ${JSON.stringify(file)} flags ${JSON.stringify(flags)}`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

function quail(args: readonly string[]): string {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `quail ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

function run(
  cmd: string,
  args: readonly string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', (status) => resolve({ status, out }));
    c.stdin.end(opts.input ?? '');
  });
}

const POPLIB = `
import poplib, ssl, sys, json
port, user, pw, delete = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == 'delete'
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
p = poplib.POP3_SSL('127.0.0.1', port, context=ctx, timeout=30)
p.user(user)
try:
    p.pass_(pw)
except poplib.error_proto as e:
    print(json.dumps({'refused': e.args[0].decode()})); sys.exit(0)
count, size = p.stat()
msgs = [b'\\n'.join(p.retr(i + 1)[1]).decode() for i in range(count)]
uidl = [l.decode().split(' ')[1] for l in p.uidl()[1]]
if delete and count > 0: p.dele(1)
p.quit()
print(json.dumps({'count': count, 'msgs': msgs, 'uidl': uidl}))
`;

void test('issue 12: pop3ClientRules: control/tcp.pop3, plaintext=loopback, control/defaultdomain only from the file (golden table)', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-pop3rules-'));
  try {
    spawnSync('mkdir', ['-p', join(root, 'control')]);
    writeFileSync(join(root, 'control', 'me'), 'mail.test\n');
    const rows: Array<[string | null, string | null, 'tls' | 'loopback' | undefined, string, string]> = [
      // [tcp.pop3, defaultdomain, listener plaintext=, client ip, rules]
      [null, null, undefined, '127.0.0.1', 'deny=false clear=false dd=-'],
      [null, null, 'loopback', '127.0.0.1', 'deny=false clear=true dd=-'],
      [null, null, 'loopback', '::1', 'deny=false clear=true dd=-'],
      [null, null, 'loopback', '192.0.2.1', 'deny=false clear=false dd=-'],
      ['192.0.2.:allow,QUAIL_CLEARAUTH="1"\n', null, undefined, '192.0.2.1', 'deny=false clear=true dd=-'],
      ['192.0.2.:allow,QUAIL_CLEARAUTH="1"\n', null, undefined, '127.0.0.1', 'deny=false clear=false dd=-'],
      ['192.0.2.1:deny\n:allow,QUAIL_CLEARAUTH="1"\n', null, undefined, '192.0.2.1', 'deny=true clear=false dd=-'],
      ['[::1]:allow,QUAIL_CLEARAUTH="1"\n', 'Example.COM\n', 'tls', '::1', 'deny=false clear=true dd=Example.COM'],
      [null, '\n', undefined, '127.0.0.1', 'deny=false clear=false dd=-'],
    ];
    for (const [tcp, dd, plaintext, ip, want] of rows) {
      for (const [name, text] of [
        ['tcp.pop3', tcp],
        ['defaultdomain', dd],
      ] as const) {
        if (text === null) rmSync(join(root, 'control', name), { force: true });
        else writeFileSync(join(root, 'control', name), text);
      }
      const r = pop3ClientRules(new Control(root), ip, plaintext === undefined ? {} : { plaintext });
      assert.equal(
        `deny=${String(r.deny)} clear=${String(r.clearAuth)} dd=${r.defaultDomain ?? '-'}`,
        want,
        JSON.stringify([tcp, dd, plaintext, ip]),
      );
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('issue 6 Done means: init, domain add, user add, start; swaks → SMTP; poplib (implicit TLS) and fetchmail (POP3) fetch and delete', async () => {
  assert.ok(has('swaks'), 'swaks is missing: apt-get install swaks (.ci/run installs it)');
  assert.ok(has('fetchmail'), 'fetchmail is missing: apt-get install fetchmail (.ci/run installs it)');
  const dir = mkdtempSync(join(tmpdir(), 'quail-pop3e2e-'));
  chmodSync(dir, 0o755); // as root the POP3 child runs as control/quailuser and must reach the mail root
  const root = join(dir, 'root');
  let q: ChildProcess | undefined;
  let log = '';
  try {
    quail(['init', '--root', root, '--me', 'mail.test']);
    quail(['domain', 'add', 'example.com', '--root', root]);
    quail(['user', 'add', 'joe@example.com', '--password', 'joe-secret', '--root', root]);
    quail(['user', 'add', 'nopop@example.com', '--password', 'np-secret', '--flag', 'no-pop', '--root', root]);
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
        '127.0.0.1:0',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    q.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    q.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    await waitFor(
      () => /quail\.started/.test(log),
      60_000,
      () => `quail start did not start:\n${log}`,
    );
    const port = (re: RegExp): number => Number(re.exec(log)?.[1] ?? NaN);
    const smtp = port(/smtp\.listening address=\S+ port=(\d+) kind=smtp/);
    const pop3 = port(/pop3\.listening address=\S+ port=(\d+) tls=stls/);
    const pop3s = port(/pop3\.listening address=\S+ port=(\d+) tls=implicit/);
    assert.ok(smtp > 0 && pop3 > 0 && pop3s > 0, log);
    if (process.getuid?.() === 0) {
      // As root, the processes holding the POP3 sockets run as control/quailuser (real, effective, saved, fs uid).
      const want = /pop3d\.started pid=\d+ user=\S+ uid=(\d+)/.exec(log)?.[1];
      assert.ok(want !== undefined && want !== '0', log);
      // Root keeps the listening sockets (a child's death never closes a port); each connection is read only by the child.
      for (const p of [pop3, pop3s]) {
        assert.deepEqual(socketHolders(listeningInode(p)), [q.pid], `only the root parent listens on ${p}`);
        const holders = await connectionHolders(p, q.pid);
        assert.equal(holders.length, 1, `one process holds a connection to ${p}: ${holders.join(',')}`);
        for (const pid of holders)
          assert.deepEqual(
            procUids(pid),
            [want, want, want, want].map(Number),
            `pid ${pid} holding a connection to ${p}`,
          );
      }
    }

    for (const token of ['first', 'second']) {
      const r = await run('swaks', [
        '--server',
        '127.0.0.1',
        '--port',
        String(smtp),
        '--from',
        'sender@example.net',
        '--to',
        'joe@example.com',
        '--header',
        `Subject: pop3-e2e-${token}`,
        '--body',
        `body of ${token}`,
        '--helo',
        'client.test',
      ]);
      assert.equal(r.status, 0, r.out);
    }
    const maildir = join(root, 'domains', 'example.com', 'joe', 'Maildir');
    const files = (): string[] => [...readdirSync(join(maildir, 'new')), ...readdirSync(join(maildir, 'cur'))];
    await waitFor(
      () => files().length === 2,
      30_000,
      () => `not delivered to ${maildir}:\n${log}`,
    );

    // Python's poplib over implicit TLS: both messages, deletes the first.
    const py = await run('python3', ['-c', POPLIB, String(pop3s), 'joe@example.com', 'joe-secret', 'delete']);
    assert.equal(py.status, 0, py.out);
    const got = JSON.parse(py.out) as { count: number; msgs: string[]; uidl: string[] };
    assert.equal(got.count, 2, py.out);
    assert.match(got.msgs.join('\n'), /Subject: pop3-e2e-first/);
    assert.match(got.msgs.join('\n'), /Subject: pop3-e2e-second/);
    await waitFor(
      () => files().length === 1,
      10_000,
      () => `DELE + QUIT did not remove a message: ${files().join(' ')}`,
    );

    // fetchmail over the plain port (STLS, USER/PASS): the other message, deleted on the server.
    const mbox = join(dir, 'fetched.mbox');
    const rc = join(dir, 'fetchmailrc');
    writeFileSync(
      rc,
      [
        'set no bouncemail',
        `poll 127.0.0.1 with proto POP3 port ${pop3}`,
        `  user 'joe@example.com' there with password 'joe-secret' is 'root' here`,
        `  options no keep fetchall sslproto 'tls1.2+' no sslcertck`,
        `  mda "/bin/sh -c 'cat >> ${mbox}'"`,
        '',
      ].join('\n'),
    );
    chmodSync(rc, 0o600);
    const fm = await run(
      'fetchmail',
      ['--nosyslog', '-N', '-f', rc, '-i', join(dir, 'fmids'), '--pidfile', join(dir, 'fm.pid')],
      { env: { ...process.env, HOME: dir } },
    );
    assert.equal(fm.status, 0, fm.out);
    const fetched = readFileSync(mbox, 'utf8');
    assert.equal((fetched.match(/Subject: pop3-e2e-/g) ?? []).length, 1, fetched);
    assert.deepEqual(files(), [], 'fetchmail deleted the last message on the server');

    // A mailbox with no-pop and a wrong password get the same refusal.
    for (const [user, pw] of [
      ['nopop@example.com', 'np-secret'],
      ['joe@example.com', 'wrong'],
    ] as const) {
      const r = await run('python3', ['-c', POPLIB, String(pop3s), user, pw, 'keep']);
      assert.equal(r.status, 0, r.out);
      assert.match(r.out, /"refused": "-ERR \[AUTH\] authentication failed"/, `${user}: ${r.out}`);
    }

    // The directory has joe's last login (root writes the logins of a second in one batch); the event log has
    // logins, refusals and session counts.
    let info: { lastLogin: string | null } = { lastLogin: null };
    await waitFor(
      () => {
        info = JSON.parse(quail(['user', 'info', 'joe@example.com', '--json', '--root', root])) as typeof info;
        return info.lastLogin !== null;
      },
      10_000,
      () => JSON.stringify(info),
    );
    assert.ok(info.lastLogin !== null && Date.now() - Date.parse(info.lastLogin) < 5 * 60_000, JSON.stringify(info));
    await waitFor(
      () => (log.match(/pop3\.session /g) ?? []).length >= 2,
      10_000,
      () => log,
    );
    assert.match(log, /pop3\.login login=joe@example\.com ip=127\.0\.0\.1 tls=true .*messages=2 .*open=1/);
    assert.match(log, /pop3\.session login=joe@example\.com .*retrieved=2 deleted=1/);
    assert.match(log, /pop3\.refused login=nopop@example\.com .*reason=credentials/);
    assert.doesNotMatch(log, /np-secret|joe-secret/);
  } finally {
    if (q?.pid !== undefined && q.exitCode === null) {
      const exited = new Promise((r) => q?.once('exit', r));
      q.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      try {
        process.kill(-q.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The server's first line on a new connection. */
async function firstLine(port: number): Promise<string> {
  const sock = connect(port, '127.0.0.1');
  let text = '';
  sock.on('data', (d: Buffer) => (text += d.toString('latin1')));
  await waitFor(
    () => text.includes('\r\n'),
    20_000,
    () => text,
  );
  sock.destroy();
  return text.slice(0, text.indexOf('\r\n'));
}

/** USER/PASS/STAT/QUIT over a plain connection; the replies, one per line. */
async function popTalk(port: number, user: string, pw: string): Promise<string[]> {
  const sock = connect(port, '127.0.0.1');
  let text = '';
  sock.on('data', (d: Buffer) => (text += d.toString('latin1')));
  const lines = (): string[] => text.split('\r\n').filter((l) => l !== '');
  const want = async (n: number): Promise<void> =>
    waitFor(
      () => lines().length >= n,
      20_000,
      () => text,
    );
  await want(1);
  for (const [i, cmd] of [`USER ${user}`, `PASS ${pw}`, 'STAT', 'QUIT'].entries()) {
    sock.write(`${cmd}\r\n`);
    await want(i + 2);
  }
  sock.destroy();
  return lines();
}

void test('not root: POP3 in the quail start process itself; a default port that is taken is skipped with pop3.error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-pop3inproc-'));
  const root = join(dir, 'root');
  const events: string[] = [];
  const log = {
    event: (name: string, fields: Readonly<Record<string, unknown>>): void =>
      void events.push(`${name} ${JSON.stringify(fields)}`),
  };
  let blocker: Server | undefined;
  try {
    quail(['init', '--root', root, '--me', 'mail.test']);
    quail(['domain', 'add', 'example.com', '--root', root]);
    quail(['user', 'add', 'ann@example.com', '--password', 'ann-secret', '--root', root]);
    const pop = await startPop3(root, log, { pop3: ['127.0.0.1:0'] });
    try {
      const port = pop.listeners[0]?.port ?? 0;
      assert.equal(pop.listeners.length, 1);
      // issue 12: no USER/PASS before STLS, from 127.0.0.1 too, until control/tcp.pop3 allows the client (read per connection)
      const refused = await popTalk(port, 'ann@example.com', 'ann-secret');
      assert.equal(
        refused[1],
        '-ERR plaintext logins need an encrypted connection: use STLS first',
        refused.join('\n'),
      );
      writeFileSync(join(root, 'control', 'tcp.pop3'), '127.0.0.1:allow,QUAIL_CLEARAUTH="1"\n:allow\n');
      const replies = await popTalk(port, 'ann@example.com', 'ann-secret');
      assert.match(replies[2] ?? '', /^\+OK/, replies.join('\n'));
      assert.match(replies[3] ?? '', /^\+OK 0 0$/, replies.join('\n'));
      const bad = await popTalk(port, 'ann@example.com', 'wrong');
      assert.equal(bad[2], '-ERR [AUTH] authentication failed');
      // control/defaultdomain (vpopmail's meaning): a bare login is user@defaultdomain; without the file it is refused
      assert.equal((await popTalk(port, 'ann', 'ann-secret'))[2], '-ERR [AUTH] authentication failed');
      writeFileSync(join(root, 'control', 'defaultdomain'), 'example.com\n');
      assert.match((await popTalk(port, 'ann', 'ann-secret'))[2] ?? '', /^\+OK/);
      // tcp.pop3 deny refuses the connection
      writeFileSync(join(root, 'control', 'tcp.pop3'), '127.0.0.1:deny\n:allow\n');
      assert.equal(await firstLine(port), '-ERR this host may not use this server');
    } finally {
      await pop.stop(1000);
    }
    const info = JSON.parse(quail(['user', 'info', 'ann@example.com', '--json', '--root', root])) as {
      lastLogin: string | null;
    };
    assert.ok(info.lastLogin !== null, 'the in-process login recorded the last-login time');
    assert.ok(
      events.some((e) => e.startsWith('pop3.login ') && e.includes('"open":1')),
      events.join('\n'),
    );

    // The embedded default (no control/listeners): 127.0.0.1:2110 is taken (by us, or by another quail) → skipped.
    const b = createServer();
    blocker = b;
    await new Promise<void>((r) => {
      b.once('listening', () => r());
      b.once('error', () => r()); // already taken by another quail: just as good
      b.listen(2110, '127.0.0.1');
    });
    events.length = 0;
    const def = await startPop3(root, log);
    await def.stop(1000);
    assert.ok(!def.listeners.some((l) => l.port === 2110), JSON.stringify(def.listeners));
    assert.ok(
      events.some((e) => e.startsWith('pop3.error ') && e.includes('127.0.0.1:2110')),
      events.join('\n'),
    );
  } finally {
    blocker?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
