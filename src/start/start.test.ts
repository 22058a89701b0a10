// quail start / quail status end to end (a real process, real sockets, real signals) and the listeners parser.
// tier: system (needs quail start)
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseListeners } from './services.js';
import { textLine } from './log.js';
import { waitUntil } from '../../test/support/wait.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

void test('control/listeners: golden table', () => {
  const r = parseListeners(
    '# c\n\n127.0.0.1:2525 smtp\n[::1]:587 submission maxrcpt=5\n:25 smtp\n0.0.0.0:110 pop3\nx smtp\n1.2.3.4:99999 smtp\n1.2.3.4:25 imap\n1.2.3.4:25 smtp junk\n',
  );
  assert.deepEqual(
    r.listeners.map((l) => [l.service, l.spec]),
    [
      ['smtpd', { host: '127.0.0.1', port: 2525, kind: 'smtp', options: {} }],
      ['smtpd', { host: '::1', port: 587, kind: 'submission', options: { maxrcpt: '5' } }],
      ['smtpd', { host: '0.0.0.0', port: 25, kind: 'smtp', options: {} }],
      ['pop3d', { host: '0.0.0.0', port: 110, implicitTls: false }],
    ],
  );
  assert.equal(r.errors[2]?.reason, 'unknown kind "imap" (smtp, submission, pop3, metrics, admin or odmr)');
  assert.deepEqual(
    r.errors.map((e) => e.line),
    [7, 8, 9, 10],
  );
  // issue 12: options are checked (a mistyped security option must not be ignored)
  const opts = parseListeners(
    '0.0.0.0:587 submission senderauth=off maxnoop=50\n0.0.0.0:25 smtp senderauth=of\n0.0.0.0:25 smtp maxrcpt=lots\n0.0.0.0:25 smtp sendrauth=off\n',
  );
  assert.deepEqual(
    opts.listeners.map((l) => l.spec),
    [{ host: '0.0.0.0', port: 587, kind: 'submission', options: { senderauth: 'off', maxnoop: '50' } }],
  );
  assert.deepEqual(
    opts.errors.map((e) => e.reason),
    [
      'option senderauth=of: the value must be on or off',
      'option maxrcpt=lots: the value must be a number',
      'unknown option "sendrauth" (databytes=N, maxconn=N, maxperip=N, maxrcpt=N, maxline=N, maxerrors=N, maxnoop=N, maxunsent=N, tarpitcount=N, tarpitdelay=N, greetdelay=N, rbltimeout=N, rbldeadline=N, stresstimeout=N, senderauth=on|off, authcheck=off|header|reject, auth=required|offered|off, tls=required, rblbounce=on|off, rblfail=open|closed, queue=NAME, rcpthosts=none|FILE, tcprules=FILE, rbl=ZONE, rblallow=ZONE, filter=/PATH)',
    ],
  );
  // rbl= and rblallow= repeat and keep their line order (rblsmtpd tries -r and -a in order): one option for smtpd
  const rbl = parseListeners('127.0.0.1:25 smtp rbl=A.test rblallow=ok.test rbl=c.test greetdelay=5 filter=/bin/qq\n');
  assert.deepEqual(rbl.errors, []);
  assert.deepEqual(rbl.listeners[0]?.spec, {
    host: '127.0.0.1',
    port: 25,
    kind: 'smtp',
    options: { greetdelay: '5', filter: '/bin/qq', rbl: 'a.test +ok.test c.test' },
  });
  assert.deepEqual(
    parseListeners('127.0.0.1:25 smtp filter=qq\n127.0.0.1:26 smtp tcprules=.hidden\n').errors.map((e) => e.reason),
    [
      'option filter=qq: the absolute path of a qmail-queue program (as QMAILQUEUE)',
      'option tcprules=.hidden: the name of a file in control/ (letters, digits, . _ -)',
    ],
  );
  assert.equal(
    textLine(new Date(0), 'info', 'smtp.queued', { id: 'x', report: 'did 1+0+0\n', n: 2 }),
    '1970-01-01T00:00:00.000Z info smtp.queued id=x report="did 1+0+0\\n" n=2',
  );
});

/** One command per reply line (no pipelining); a function in `lines` is awaited before the next command. */
function converse(port: number, lines: Array<string | (() => Promise<void>)>): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let out = '';
    let i = 0;
    s.on('data', (c: Buffer) => {
      out += c.toString('latin1');
      if (!out.endsWith('\r\n') || i >= lines.length) return;
      const next = lines[i++];
      if (typeof next === 'function') void next().then(() => s.write(`${String(lines[i++])}\r\n`));
      else s.write(`${next ?? ''}\r\n`);
    });
    s.on('error', reject);
    s.on('close', () => resolve(out));
  });
}

void test('quail start --init: serves, reloads on SIGHUP without dropping a session, stops on SIGTERM; quail status', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-start-'));
  chmodSync(root, 0o755); // as root, the SMTP child runs as control/quailuser and must reach the mail root
  // a number file quail cannot use (qmail ignores it silently): warned at start; another, written later, at SIGHUP
  mkdirSync(join(root, 'control'));
  writeFileSync(join(root, 'control', 'timeoutsmtpd'), 'twenty minutes\n');
  const child = spawn(
    process.execPath,
    [MAIN, 'start', '--root', root, '--init', '--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    const state = join(root, 'run', 'quail.json');
    for (let i = 0; i < 200 && !(existsSync(state) && log.includes('quail.started')); i++)
      await new Promise((r) => setTimeout(r, 50));
    const st = JSON.parse(readFileSync(state, 'utf8')) as { listeners: Array<{ port: number; kind: string }> };
    const smtp = st.listeners.find((l) => l.kind === 'smtp');
    assert.ok(smtp && smtp.port > 0, log);
    const me = readFileSync(join(root, 'control', 'me'), 'utf8').trim();
    const reload = async (): Promise<void> => {
      child.kill('SIGHUP'); // in the middle of a transaction
      await waitUntil(() => log.includes('quail.reloaded'), 4000, 20);
    };
    const out = await converse(smtp.port, [
      'HELO c',
      'MAIL FROM:<a@b.test>',
      reload,
      `RCPT TO:<postmaster@${me}>`,
      'DATA',
      'Subject: t\r\n\r\nhi\r\n.',
      'QUIT',
    ]);
    assert.match(out, /354 go ahead\r\n250 ok \d+ qp \S+\r\n221 /, `${out}\n${log}`);
    assert.match(log, /quail\.reloaded/);
    assert.match(
      log,
      / warn quail\.warning file=control\/timeoutsmtpd why="does not start with a digit, so the default 1200 holds"/,
    );
    assert.doesNotMatch(log, /quail\.warning file=control\/concurrencyremote/, 'not before the file exists');
    writeFileSync(join(root, 'control', 'concurrencyremote'), 'lots\n');
    writeFileSync(join(root, 'control', 'smtproutes'), 'typo.test [192.0.2.1]\n'); // the ':' forgotten
    await reload();
    await waitUntil(() => log.includes('file=control/concurrencyremote'), 4000, 20);
    assert.match(
      log,
      / warn quail\.warning file=control\/concurrencyremote why="does not start with a digit, so the default 20 holds"/,
    );
    assert.match(
      log,
      / warn quail\.warning file=control\/smtproutes:1 why="\\"typo\.test \[192\.0\.2\.1\]\\" has no \\":\\" and is ignored"/,
    );
    const status = spawnSync(process.execPath, [MAIN, 'status', '--root', root], { encoding: 'utf8' });
    assert.equal(status.status, 0, status.stderr);
    assert.match(status.stdout, /^quail is running \(pid \d+\)/);
    assert.match(status.stdout, new RegExp(`listener: 127\\.0\\.0\\.1:${smtp.port} smtp`));
    assert.match(status.stdout, /queue: \d+ messages/);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, log);
    assert.match(log, /quail\.stopped/);
    assert.equal(existsSync(join(root, 'run', 'quail.pid')), false);
    const after = spawnSync(process.execPath, [MAIN, 'status', '--root', root], { encoding: 'utf8' });
    assert.equal(after.status, 1);
    assert.match(after.stdout, /^quail is not running/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
});
