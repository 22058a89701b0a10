// Stress mode through a running `quail start`: idle connections holding an smtp listener's every slot are cut after
// stresstimeout= seconds instead of timeoutsmtpd's 20 minutes (those trickling bytes into a command line or into a
// message, and those silent after STARTTLS, too), so a real
// sender gets in; a listener with stresstimeout=0 keeps its idle clients.
// tier: system (needs quail start, swaks, 127.0.0.2-127.0.0.40 on lo)
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, MAIN, setupRoot, startProcess, waitFor, type QuailProcess } from '../../test/support/start.js';
import { Wire } from '../../test/support/hostile-wire.js';
import { raw, stream } from '../../test/support/attack.js';
import type { Socket } from 'node:net';

const MAXCONN = 12;

/** MAXCONN connections from several addresses (under maxperip), each past its greeting. */
async function fill(port: number, first: number): Promise<Wire[]> {
  const held: Wire[] = [];
  for (let i = 0; i < MAXCONN; i++) {
    const w = await Wire.connect(port, { localAddress: `127.0.0.${first + (i % 4)}` });
    assert.match(await w.reply(), /^220 /, `holder ${i} is greeted`);
    held.push(w);
  }
  return held;
}

/** A mail root with mailbox joe@example.test and `listeners` as its control/listeners. */
function stressRoot(listeners: string): string {
  const root = mkdtempSync(join(tmpdir(), 'quail-stress-'));
  setupRoot(root, 'mx.test', [{ domain: 'example.test', boxes: ['joe'] }]);
  writeFileSync(join(root, 'control', 'listeners'), listeners);
  return root;
}

void test('stress mode: idle clients filling maxconn are cut after stresstimeout=, a sender gets in; stresstimeout=0 keeps them', async () => {
  const [stressed, patient] = [await freePort(), await freePort()];
  const root = stressRoot(
    [
      `127.0.0.1:${stressed} smtp maxconn=${MAXCONN} maxperip=50 stresstimeout=3`,
      `127.0.0.1:${patient} smtp maxconn=${MAXCONN} maxperip=50 stresstimeout=0`,
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  let log = '';
  const wires: Wire[] = [];
  let trickle: NodeJS.Timeout | undefined;
  try {
    child = spawn(process.execPath, [MAIN, 'start', '--root', root], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
    await waitFor(
      () => log.includes('quail.started'),
      30_000,
      () => log,
    );

    // Both listeners full of clients that say nothing after the greeting.
    const kept = await fill(patient, 20);
    const idle = await fill(stressed, 10);
    wires.push(...idle, ...kept);
    // Half of them trickle a byte a second into a command line that never ends: each byte would restart a per-read
    // wait, so only the per-line deadline under stress (src/lineio Reader.line) cuts them.
    const tricklers = idle.filter((_, i) => i % 2 === 0);
    trickle = setInterval(() => tricklers.forEach((w) => w.send('X')), 1000);
    await waitFor(
      () => new RegExp(`smtp\\.stress listener=127\\.0\\.0\\.1:${stressed} on=true`).test(log),
      10_000,
      () => log,
    );

    // Idle clients of the stressed listener are told and dropped (timeoutsmtpd would wait 1,200 s) until it holds
    // less than half of maxconn; then stress mode ends and the rest keep their connections.
    await waitFor(
      () => new RegExp(`smtp\\.stress listener=127\\.0\\.0\\.1:${stressed} on=false`).test(log),
      30_000,
      () => log,
    );
    const cut = idle.filter((w) => w.received.includes('451 timeout (#4.4.2)'));
    assert.ok(cut.length >= MAXCONN / 2, `${cut.length} idle holders were cut`);
    assert.ok(
      tricklers.some((w) => w.received.includes('451 timeout (#4.4.2)')),
      'a client trickling bytes into one command line is cut too',
    );
    clearInterval(trickle);
    for (const w of cut) assert.ok(await w.closes(), 'a holder told of the timeout is closed');
    // A real sender gets in and its message is delivered.
    const r = spawnSync(
      'swaks',
      ['--server', `127.0.0.1:${stressed}`, '--from', 'a@client.test', '--to', 'joe@example.test', '--timeout', '20'],
      { encoding: 'latin1' },
    );
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    const inbox = join(root, 'domains', 'example.test', 'joe', 'Maildir', 'new');
    await waitFor(
      () => readdirSync(inbox).length === 1,
      30_000,
      () => log,
    );

    // The listener without stress mode never entered it, and its idle clients are still served.
    assert.doesNotMatch(log, new RegExp(`smtp\\.stress listener=127\\.0\\.0\\.1:${patient}`));
    for (const [i, w] of kept.entries()) {
      w.send('NOOP\r\n');
      assert.match(await w.reply(), /^250 /, `patient holder ${i} still answered`);
    }
  } finally {
    clearInterval(trickle);
    for (const w of wires) w.destroy();
    child?.kill('SIGTERM');
    if (child && child.exitCode === null) await new Promise((r) => child?.once('exit', r));
    rmSync(root, { recursive: true, force: true });
  }
});

void test('stress mode also caps the wait for a client that never reads its replies: such clients filling maxconn are dropped after stresstimeout=', async () => {
  const port = await freePort();
  // maxunsent=0: the EHLO/MAIL loop below must go on until its replies fill the socket (by default the 21st MAIL
  // ends it with 421, src/smtpd/transactions.test.ts)
  const root = stressRoot(`127.0.0.1:${port} smtp maxconn=${MAXCONN} maxperip=50 stresstimeout=2 maxunsent=0\n`);
  let child: ChildProcess | undefined;
  let log = '';
  const socks: Socket[] = [];
  try {
    child = spawn(process.execPath, [MAIN, 'start', '--root', root], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
    await waitFor(
      () => log.includes('quail.started'),
      30_000,
      () => log,
    );
    // every slot taken by a client that pipelines EHLO and MAIL and never reads: the server stops reading it and
    // waits for it to take the replies, timeoutsmtpd (1,200 s) long unless stress mode caps that wait too
    socks.push(...(await Promise.all(Array.from({ length: MAXCONN }, () => raw(port)))));
    await Promise.all(
      socks.map((s) => {
        s.pause();
        return stream(s, Buffer.from('EHLO client.test\r\nMAIL FROM:<a@client.test>\r\n'), 64 << 20);
      }),
    );
    await waitFor(
      () => (log.match(/smtp\.close .*reason=not-reading/g) ?? []).length >= MAXCONN / 2,
      60_000,
      () => log,
    );
  } finally {
    for (const s of socks) s.destroy();
    child?.kill('SIGTERM');
    if (child && child.exitCode === null) await new Promise((r) => child?.once('exit', r));
    rmSync(root, { recursive: true, force: true });
  }
});

void test('stress mode cuts clients trickling a byte at a time into their message, and clients silent after STARTTLS', async () => {
  const port = await freePort();
  const root = stressRoot(`127.0.0.1:${port} smtp maxconn=${MAXCONN} maxperip=50 stresstimeout=3\n`);
  let q: QuailProcess | undefined;
  let trickle: NodeJS.Timeout | undefined;
  const wires: Wire[] = [];
  try {
    q = await startProcess(root, 30_000, {}, false);
    const log = q.log;
    // Every slot: half in DATA, sending a byte a second that never ends a line (each byte would restart a per-read
    // wait: only a per-line deadline cuts them, the DATA loop's lineFrom); half after STARTTLS's 220, sending no
    // handshake byte (a wait of 60 s without stress).
    const held = await fill(port, 10);
    wires.push(...held);
    const inData = held.filter((_, i) => i % 2 === 0);
    const silentTls = held.filter((_, i) => i % 2 === 1);
    for (const w of inData) {
      w.send('HELO client.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<joe@example.test>\r\nDATA\r\n');
      for (const code of [250, 250, 250, 354]) assert.equal(await w.code(), code, 'each trickler gets to DATA');
    }
    for (const w of silentTls) {
      w.send('EHLO client.test\r\n');
      assert.equal(await w.code(), 250);
      w.send('STARTTLS\r\n');
      assert.equal(await w.code(), 220, 'STARTTLS is offered');
    }
    trickle = setInterval(() => inData.forEach((w) => w.send('X')), 1000);
    // Stress mode ends once fewer than half the slots are held: at least seven cut, so some of each kind.
    await waitFor(() => new RegExp(`smtp\\.stress listener=127\\.0\\.0\\.1:${port} on=false`).test(log()), 30_000, log);
    await waitFor(
      () => inData.some((w) => w.closed),
      10_000,
      () => `no client trickling bytes into its message was cut\n${log()}`,
    );
    await waitFor(
      () => silentTls.some((w) => w.closed),
      10_000,
      () => `no client silent after STARTTLS was cut\n${log()}`,
    );
  } finally {
    clearInterval(trickle);
    for (const w of wires) w.destroy();
    q?.killGroup();
    await q?.exited;
    rmSync(root, { recursive: true, force: true });
  }
});
