// Seed 003's set-ups through a running `quail start`: named queues with their own outgoing IPs, lifetimes and bounce
// queue, chosen by listener, AUTH domain, sender domain and recipient domain; a hung queue does not starve another.
// tier: system (needs quail start, swaks, 127.0.0.2 and 127.0.0.3 on lo)
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, MAIN, quail, waitFor } from '../../test/support/start.js';
import { testSmtp, type SmtpConnection, type TestSmtp } from '../../test/support/testsmtp.js';

function cli(root: string, ...args: string[]): string {
  const r = spawnSync(process.execPath, [MAIN, ...args, '--root', root], { encoding: 'utf8' });
  assert.equal(r.status, 0, `quail ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

function inject(root: string, from: string, to: string, subject: string): void {
  const r = spawnSync(process.execPath, [MAIN, 'inject', '--root', root, '-f', from, to], {
    input: `Subject: ${subject}\n\nbody\n`,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `quail inject: ${r.stderr}`);
}

function swaksTo(host: string, port: number, args: readonly string[]): string {
  const r = spawnSync('swaks', ['--server', `${host}:${port}`, '--timeout', '20', ...args], { encoding: 'latin1' });
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, out);
  return out;
}

/** Accepts connections and never says a word: a remote host whose deliveries hang until the test lets go. */
async function blackhole(): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  server.unref();
  const a = server.address();
  return { server, port: typeof a === 'object' && a !== null ? a.port : 0, sockets };
}

/** The sink connection that carried the message with this subject. */
const carrier = (sink: TestSmtp, subject: string): SmtpConnection | undefined =>
  sink.connections.find((c) => c.data.includes(`Subject: ${subject}`));

void test('seed 003: named queues by AUTH domain, sender domain, listener and recipient; own outgoing IPs, HELO, bounce queue, no starvation, SIGHUP', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-queues-'));
  chmodSync(root, 0o755);
  const sink = await testSmtp('127.0.0.1', { rcpt: (a) => (a.startsWith('bad@') ? '550 no such user' : undefined) });
  const hole = await blackhole();
  let child: ChildProcess | undefined;
  let log = '';
  try {
    cli(root, 'init', '--me', 'mx.test');
    cli(root, 'domain', 'add', 'example.org');
    cli(root, 'user', 'add', 'joe@example.org', '--password', 's3cret');
    const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
    const ctl = (name: string, text: string): void => writeFileSync(join(root, 'control', name), text);
    // Two SMTP instances on two addresses (seed 003), one line each; the second puts everything in `bulk`.
    ctl('listeners', `127.0.0.2:${p1} smtp\n127.0.0.3:${p2} smtp queue=bulk\n127.0.0.1:${p3} submission\n`);
    ctl('timeoutremote', '30\n'); // a safety net: the black hole's deliveries never wait longer
    ctl('tcp.smtp', '127.0.0.1:allow,RELAYCLIENT=""\n127.:allow\n');
    const sinkRoute = `127.0.0.1:${sink.port}`;
    ctl('smtproutes', `remote.test:${sinkRoute}\nexample.net:${sinkRoute}\nstuck.test:127.0.0.1:${hole.port}\n`);
    ctl(
      'queues',
      [
        `corp outgoingip=127.0.0.3 helohost=corp.example.org route=remote.test:${sinkRoute}`,
        `bulk outgoingip=127.0.0.2 helohost=bulk.example.net lifetime=3600 bouncefrom=bounce-robot`,
        `stuck concurrencyremote=1`,
        `bounces concurrencyremote=1 lifetime=7200`,
        '',
      ].join('\n'),
    );
    ctl('queuerules', 'auth example.org corp\nsender example.net bulk\nrcpt stuck.test stuck\nbounce bounces\n');
    child = spawn(process.execPath, [MAIN, 'start', '--root', root], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
    await waitFor(
      () => log.includes('quail.started') && existsSync(join(root, 'run', 'quail.json')),
      30_000,
      () => log,
    );

    // The hung queue first: three messages to a host that never answers, one slot.
    for (let i = 0; i < 3; i++) inject(root, 'a@other.test', `u${i}@stuck.test`, `stuck ${i}`);
    await waitFor(
      () => hole.sockets.size === 1,
      20_000,
      () => `blackhole connections ${hole.sockets.size}\n${log}`,
    );

    // AUTH login's domain (reliable): example.org → corp → from 127.0.0.3, HELO corp.example.org.
    swaksTo('127.0.0.2', p1, [
      ...['--tls', '--auth', 'PLAIN', '--auth-user', 'joe@example.org', '--auth-password', 's3cret'],
      ...['--from', 'joe@example.org', '--to', 'pal@remote.test', '--header', 'Subject: by auth'],
    ]);
    // Envelope sender's domain (forgeable) through sendmail/inject: example.net → bulk → from 127.0.0.2.
    inject(root, 'news@example.net', 'pal@remote.test', 'by sender');
    // The listener's queue=: anything on 127.0.0.3 → bulk.
    swaksTo('127.0.0.3', p2, ['--from', 'a@other.test', '--to', 'pal@remote.test', '--header', 'Subject: by listener']);
    // No rule: the default queue, qmail's behaviour (no outgoingip: the system picks 127.0.0.1).
    inject(root, 'a@other.test', 'pal@remote.test', 'by default');
    await waitFor(
      () => ['by auth', 'by sender', 'by listener', 'by default'].every((s) => carrier(sink, s) !== undefined),
      30_000,
      () => `sink saw ${sink.messages.length}\n${log}`,
    );
    const via = (s: string): [string, string | undefined] => {
      const c = carrier(sink, s);
      return [c?.remoteAddress ?? '', c?.lines.find((l) => /^(EHLO|HELO) /i.test(l))?.slice(5)];
    };
    assert.deepEqual(via('by auth'), ['127.0.0.3', 'corp.example.org']);
    assert.deepEqual(via('by sender'), ['127.0.0.2', 'bulk.example.net']);
    assert.deepEqual(via('by listener'), ['127.0.0.2', 'bulk.example.net']);
    assert.deepEqual(via('by default'), ['127.0.0.1', 'mx.test']);
    // No starvation: all that went out while the stuck queue still holds its one connection and three messages.
    assert.equal(hole.sockets.size, 1);
    assert.match(cli(root, 'queue', 'stat', '--queue', 'stuck'), /messages in queue: 3\n/);
    assert.match(cli(root, 'status'), /queues: stuck 3/);
    assert.equal(cli(root, 'queue', 'list', '--queue', 'stuck').match(/stuck\.test/g)?.length, 3);
    // The choice is logged (smtp.queued, send.info) and explained.
    await waitFor(
      () => /send\.info .* queue=corp rule="queuerules line 1: auth example.org corp"/.test(log),
      10_000,
      () => `send.info with queue=corp in the log:\n${log}`,
    );
    const ex = cli(root, 'explain', '--sender', 'news@example.net', 'pal@remote.test');
    assert.match(ex, /queue:\n {2}bulk \(queuerules line 2: sender example.net bulk\)/);
    assert.match(ex, /can be forged/);
    assert.match(ex, /outgoing IP: 127\.0\.0\.2; HELO bulk\.example\.net/);

    // A failure in bulk bounces with bulk's bouncefrom; the bounce itself goes through the bounce queue.
    inject(root, 'news@example.net', 'bad@remote.test', 'to bounce');
    await waitFor(
      () => sink.messages.some((m) => m.raw.includes('bounce-robot@')),
      30_000,
      () => log,
    );
    // the log travels in batches (src/start/log-batch.ts, a few ms behind the deliveries): wait for the line
    await waitFor(
      () => /send\.bounce .* queue=bounces/.test(log),
      10_000,
      () => `send.bounce with queue=bounces in the log:\n${log}`,
    );

    // SIGHUP re-reads the policy: bulk now leaves from 127.0.0.3.
    ctl('queues', `bulk outgoingip=127.0.0.3 helohost=bulk.example.net\nstuck concurrencyremote=1\nbounces\ncorp\n`);
    child.kill('SIGHUP');
    await waitFor(
      () => log.includes('send.reload'),
      10_000,
      () => log,
    );
    inject(root, 'news@example.net', 'pal@remote.test', 'after hup');
    await waitFor(
      () => carrier(sink, 'after hup') !== undefined,
      30_000,
      () => log,
    );
    assert.deepEqual(via('after hup'), ['127.0.0.3', 'bulk.example.net']);
  } finally {
    // No new connection to the black hole (refused: the stuck deliveries defer at once), then end the hung ones.
    hole.server.close();
    for (const s of hole.sockets) s.destroy();
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child?.on('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    await sink.close();
    rmSync(root, { recursive: true, force: true });
  }
});

void test('quail start refuses a control/queuerules line naming an undefined queue, and a listener queue= likewise', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-queues-bad-'));
  chmodSync(root, 0o755);
  try {
    quail(['init', '--root', root, '--me', 'mx.test']);
    writeFileSync(join(root, 'control', 'queuerules'), 'sender example.net nosuch\n');
    const run = (...over: string[]): { status: number | null; out: string } => {
      const r = spawnSync(process.execPath, [MAIN, 'start', '--root', root, ...over], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      return { status: r.status, out: `${r.stdout}${r.stderr}` };
    };
    let r = run('--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0');
    assert.equal(r.status, 100, r.out);
    assert.match(r.out, /control\/queuerules line 1: queue nosuch is not defined in control\/queues/);
    writeFileSync(join(root, 'control', 'queuerules'), '');
    writeFileSync(join(root, 'control', 'listeners'), '127.0.0.1:0 smtp queue=nosuch\n');
    r = run();
    assert.equal(r.status, 100, r.out);
    assert.match(r.out, /names queue nosuch, which control\/queues does not define/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
