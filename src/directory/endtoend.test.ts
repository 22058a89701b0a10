// Issue 5's "Done means", black box: init, domain add, user add, quail start, swaks → Maildir (in-process vdeliver), policy, login.
// tier: system (needs PostgreSQL, quail start, swaks)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errText } from '../core/index.js';
import { startCluster, type Cluster } from '../../test/support/pgcluster.js';
import { waitFor } from '../../test/support/wait.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

function quail(args: readonly string[]): string {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `quail ${args.join(' ')}: exit ${String(r.status)}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

interface Running {
  readonly child: ChildProcess;
  readonly log: () => string;
  readonly exited: Promise<number | null>;
}

async function start(root: string): Promise<Running> {
  const child = spawn(
    process.execPath,
    [MAIN, 'start', '--root', root, '--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let text = '';
  child.stdout?.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (text += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  await waitFor(
    () => gone || text.includes('quail.started'),
    30_000,
    () => text,
  );
  assert.equal(gone, false, `quail start exited:\n${text}`);
  return { child, log: () => text, exited };
}

function killGroup(p: Running | undefined): void {
  try {
    if (p?.child.pid !== undefined) process.kill(-p.child.pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

function smtpPort(root: string): number {
  const state = JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as {
    listeners: Array<{ port: number; kind: string }>;
  };
  const l = state.listeners.find((x) => x.kind === 'smtp');
  assert.ok(l, 'an smtp listener in run/quail.json');
  return l.port;
}

/** Returns false when the server refused the recipient at RCPT time (a 5xx), true when it took the message. */
function swaks(port: number, to: string, subject: string): boolean {
  const r = spawnSync(
    'swaks',
    [
      '--server',
      `127.0.0.1:${port}`,
      '--from',
      'ann@sender.test',
      '--to',
      to,
      '--h-Subject',
      subject,
      '--body',
      `body of ${subject}`,
      '--helo',
      'client.test',
    ],
    { encoding: 'utf8' },
  );
  if (r.status === 24) {
    assert.match(r.stdout, /<\*\* 550 5\.1\.1 /, r.stdout);
    return false;
  }
  assert.equal(r.status, 0, `swaks to ${to}: ${r.stdout}${r.stderr}`);
  return true;
}

/** checkpassword with `input` on fd 3, as qmail-popup runs it; the program prints who logged in. */
function login(root: string, input: string): ReturnType<typeof spawnSync> {
  const dir = mkdtempSync(join(tmpdir(), 'quail-e2e-cp-'));
  try {
    writeFileSync(join(dir, 'fd3'), input);
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
        'echo "$USER|$MAILDIR"',
      ],
      { encoding: 'utf8', env: { ...process.env, F: join(dir, 'fd3') } },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The walkthrough; `url` set: the directory is that PostgreSQL database (control/directory via `quail directory use`). */
async function walkthrough(url?: string): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'quail-e2e-'));
  chmodSync(root, 0o755); // the delivery account must reach domains/
  let q: Running | undefined;
  try {
    quail(['init', '--root', root, '--me', 'mx.test']);
    if (url !== undefined)
      assert.match(quail(['directory', 'use', url, '--root', root]), /^control\/directory: postgres /);
    quail(['domain', 'add', 'example.com', '--root', root]);
    quail(['domain', 'add', 'catch.test', '--policy', 'mailbox:joe', '--root', root]);
    quail(['user', 'add', 'joe@example.com', '--password', 'x', '--root', root]);
    quail(['user', 'add', 'joe@catch.test', '--password', 'y', '--root', root]);
    // A `quail` on the programs' PATH that only leaves a mark: the in-process hook must never run it.
    mkdirSync(join(root, 'bin'), { recursive: true, mode: 0o755 }); // quail init may have made it (its own bin/ scripts)
    writeFileSync(join(root, 'bin', 'quail'), `#!/bin/sh\ntouch ${root}/program-ran\nexit 111\n`, { mode: 0o755 });

    q = await start(root);
    const port = smtpPort(root);
    swaks(port, 'joe@example.com', 'to-joe');
    // bounce-no-mailbox: refused at RCPT when smtpd checks the directory, else a permanent delivery failure.
    const nobodyTaken = swaks(port, 'nobody@example.com', 'to-nobody');
    swaks(port, 'someone@catch.test', 'to-catchall');

    const joeNew = join(root, 'domains', 'example.com', 'joe', 'Maildir', 'new');
    const log = q.log;
    await waitFor(
      () => readdirSync(joeNew).length > 0,
      30_000,
      () => `nothing in ${joeNew}\n${log()}`,
    );
    const files = readdirSync(joeNew);
    assert.equal(files.length, 1);
    const text = readFileSync(join(joeNew, files[0] ?? ''), 'utf8');
    assert.match(text, /^Return-Path: <ann@sender\.test>\nDelivered-To: example\.com-joe@example\.com\nReceived: /);
    assert.match(text, /Subject: to-joe\n/);
    if (nobodyTaken)
      await waitFor(
        () => /result=failure report="Sorry, no mailbox here by that name \(nobody@example\.com\)/.test(log()),
        30_000,
        () => log(),
      );
    // mailbox:joe: the catch-all mailbox of catch.test gets someone@.
    const catchNew = join(root, 'domains', 'catch.test', 'joe', 'Maildir', 'new');
    await waitFor(
      () => readdirSync(catchNew).length > 0,
      30_000,
      () => `nothing in ${catchNew}\n${log()}`,
    );
    assert.match(readFileSync(join(catchNew, readdirSync(catchNew)[0] ?? ''), 'utf8'), /Subject: to-catchall\n/);
    await waitFor(
      () => /report="delivered to [^"]*example\.com\/joe\/Maildir\/\\ndid 0\+0\+1\\n"/.test(log()),
      30_000,
      () => log(),
    );
    assert.equal(existsSync(join(root, 'program-ran')), false, 'the vdeliver line ran in-process, not as a program');

    const good = login(root, 'joe@example.com\0x\0' + '1700000000\0');
    assert.equal(good.status, 0, String(good.stderr));
    assert.equal(good.stdout, `joe@example.com|${root}/domains/example.com/joe/Maildir/\n`);
    assert.equal(login(root, 'joe@example.com\0wrong\0\0').status, 1);

    q.child.kill('SIGTERM');
    assert.equal(await q.exited, 0, log());
  } finally {
    killGroup(q);
    rmSync(root, { recursive: true, force: true });
  }
}

void test('end to end (SQLite): domain add, user add, start, SMTP → Maildir in-process, policies, checkpassword', async () => {
  await walkthrough();
});

let cluster: Cluster | null = null;
after(() => cluster?.stop());

void test('end to end (PostgreSQL via quail directory use): the same walkthrough', async () => {
  try {
    cluster = await startCluster();
  } catch (err) {
    assert.fail(`PostgreSQL is required for this test: ${errText(err)}`);
  }
  await walkthrough(await cluster.newDatabase());
});
