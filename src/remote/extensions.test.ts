// MAIL FROM parameters (SIZE, BODY=8BITMIME, SMTPUTF8) and a real connect timeout, against servers on 127.0.0.x.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { deliverRemote, RemoteEngine, Tcpto, tcptoPath, type RemoteJob } from './index.js';
import { startDns, type DnsName } from '../../test/support/testdns.js';
import { testSmtp, testWorld, unstuffed, type TestSmtp } from '../../test/support/testsmtp.js';

const world = (files: Record<string, string>, message: Buffer): ReturnType<typeof testWorld> =>
  testWorld(files, message);

const ASCII = Buffer.from('Subject: plain\n\nhello\n');
/** "café" in UTF-8: one byte >= 0x80 is enough for BODY=8BITMIME. */
const EIGHT_BIT = Buffer.concat([
  Buffer.from('Subject: 8bit\nContent-Type: text/plain; charset=utf-8\n\ncaf'),
  Buffer.from([0xc3, 0xa9]),
  Buffer.from('\n'),
]);
/** A local part in UTF-8, held as quail holds addresses: one character per byte (latin1). */
const JORG = `j${Buffer.from('ö', 'utf8').toString('latin1')}rg@x.test`;

/** A server that answers EHLO with `keywords` and 250 to everything else, recording commands and messages. */
const recorder = (host: string, keywords: readonly string[], port = 0): Promise<TestSmtp> =>
  testSmtp(host, { ehlo: keywords, port });

const job = (msg: string, recipient: string, sender = 'from@relay.test'): RemoteJob => ({
  recipient,
  sender,
  messagePath: msg,
});

void test('MAIL FROM carries SIZE, BODY=8BITMIME and SMTPUTF8 exactly when offered and needed', async () => {
  const full = await recorder('127.0.0.3', ['PIPELINING', 'SIZE 100000', '8BITMIME', 'SMTPUTF8']);
  const quotedJorg = `RCPT TO:<"${JORG.slice(0, JORG.indexOf('@'))}"@x.test>`; // E.6: a byte >= 128 is quoted
  const cases: Array<{ message: Buffer; rcpt: string; mail: (size: number) => string }> = [
    { message: EIGHT_BIT, rcpt: JORG, mail: (n) => `MAIL FROM:<from@relay.test> SIZE=${n} BODY=8BITMIME SMTPUTF8` },
    { message: EIGHT_BIT, rcpt: 'ascii@x.test', mail: (n) => `MAIL FROM:<from@relay.test> SIZE=${n} BODY=8BITMIME` },
    { message: ASCII, rcpt: JORG, mail: (n) => `MAIL FROM:<from@relay.test> SIZE=${n} SMTPUTF8` },
    { message: ASCII, rcpt: 'ascii@x.test', mail: (n) => `MAIL FROM:<from@relay.test> SIZE=${n}` },
  ];
  for (const c of cases) {
    const w = world({ smtproutes: `:127.0.0.3:${full.port}\n` }, c.message);
    full.lines.length = 0;
    const r = await deliverRemote(job(w.msg, c.rcpt), { control: w.control() });
    assert.equal(r.result, 'success', r.report);
    assert.deepEqual(
      full.lines.filter((l) => /^(MAIL|RCPT)/.test(l)),
      [c.mail(statSync(w.msg).size), c.rcpt === JORG ? quotedJorg : `RCPT TO:<${c.rcpt}>`],
    );
    rmSync(w.root, { recursive: true });
  }
  full.server.close();
  // 8BITMIME without SIZE; then neither: the 8-bit message goes as it is (as qmail sends it), undeclared.
  for (const [keywords, mail] of [
    [['8BITMIME'], 'MAIL FROM:<from@relay.test> BODY=8BITMIME'],
    [['PIPELINING'], 'MAIL FROM:<from@relay.test>'],
  ] as const) {
    const s = await recorder('127.0.0.3', keywords);
    const w = world({ smtproutes: `:127.0.0.3:${s.port}\n` }, EIGHT_BIT);
    const r = await deliverRemote(job(w.msg, 'ascii@x.test'), { control: w.control() });
    assert.equal(r.result, 'success', r.report);
    assert.deepEqual(
      s.lines.filter((l) => l.startsWith('MAIL')),
      [mail],
    );
    assert.deepEqual(
      s.messages.map((m) => unstuffed(m.raw)),
      [EIGHT_BIT],
      'the bytes arrive unchanged',
    );
    s.server.close();
    rmSync(w.root, { recursive: true });
  }
});

void test('without SMTPUTF8 a non-ASCII address is a permanent failure: a recipient for itself, the sender for all', async () => {
  const s = await recorder('127.0.0.3', ['PIPELINING', '8BITMIME']);
  const w = world({ smtproutes: `:127.0.0.3:${s.port}\n` }, ASCII);
  const engine = new RemoteEngine({ root: w.root, control: w.control });
  const rs = await engine.deliverMany([job(w.msg, 'a@x.test'), job(w.msg, JORG), job(w.msg, 'b@x.test')]);
  assert.deepEqual(
    rs.map((r) => r.result),
    ['success', 'failure', 'success'],
  );
  assert.equal(
    rs[1]?.report,
    `127.0.0.3 does not support SMTPUTF8 and the recipient address ${JORG} is not ASCII. (#5.6.7)\n`,
  );
  assert.deepEqual(
    s.lines.filter((l) => /^(MAIL|RCPT)/.test(l)),
    ['MAIL FROM:<from@relay.test>', 'RCPT TO:<a@x.test>', 'RCPT TO:<b@x.test>'],
  );
  s.lines.length = 0;
  const sender = `s${JORG}`;
  const all = await engine.deliverMany([job(w.msg, 'c@x.test', sender), job(w.msg, 'd@x.test', sender)]);
  engine.close();
  for (const r of all)
    assert.deepEqual(r, {
      result: 'failure',
      report: `127.0.0.3 does not support SMTPUTF8 and the sender address ${sender} is not ASCII. (#5.6.7)\n`,
    });
  assert.deepEqual(
    s.lines.filter((l) => /^(MAIL|RCPT)/.test(l)),
    [],
    'nothing was sent for them',
  );
  s.server.close();
  rmSync(w.root, { recursive: true });
});

/**
 * A destination whose TCP handshake never completes, on loopback without iptables: a child process listens
 * with backlog 1 and blocks its event loop (it never calls accept), the test fills the accept queue with
 * connections, and Linux then drops further SYNs (the accept queue is full), so connect() hangs.
 */
async function blackhole(host: string): Promise<{ port: number; close: () => void }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `
const s = require('node:net').createServer();
s.listen({ host: ${JSON.stringify(host)}, port: 0, backlog: 1 }, () => {
  process.stdout.write(s.address().port + '\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // never returns: nothing is ever accepted
});`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', () => reject(new Error('blackhole child exited')));
  });
  const held: Socket[] = [];
  const attempt = (): Promise<string> =>
    new Promise((resolve) => {
      const s = connect({ host, port });
      held.push(s);
      s.on('error', () => undefined);
      const t = setTimeout(() => resolve('hang'), 500);
      s.once('connect', () => {
        clearTimeout(t);
        resolve('connected');
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        resolve(e.code ?? 'error');
      });
    });
  const close = (): void => {
    for (const s of held) s.destroy();
    child.kill('SIGKILL');
  };
  let last = '';
  for (let i = 0; i < 8 && (last = await attempt()) === 'connected'; i++);
  if (last !== 'hang') {
    close();
    assert.fail(`precondition: a full accept queue on ${host} should make connect() hang, got ${last}`);
  }
  return { port, close };
}

void test('a connect that never completes: deferral after timeoutconnect, the next MX is tried, tcpto remembers', async () => {
  const hole = await blackhole('127.0.0.7');
  // The MX port is shared: the good server listens on the blackhole's port, on its own address.
  const good = await recorder('127.0.0.8', ['PIPELINING'], hole.port);
  const dns = await startDns(
    new Map<string, DnsName>([
      ['one.test', { mx: [{ pref: 10, exchange: 'hole.test' }] }],
      [
        'two.test',
        {
          mx: [
            { pref: 10, exchange: 'hole.test' },
            { pref: 20, exchange: 'good.test' },
          ],
        },
      ],
      ['hole.test', { a: ['127.0.0.7'] }],
      ['good.test', { a: ['127.0.0.8'] }],
    ]),
  );
  const w = world({ dnsservers: `127.0.0.1:${dns.port}\n`, timeoutconnect: '1\n' }, ASCII);
  try {
    // Only the hanging host: qmail's "no connection" text, temporary.
    const r = await deliverRemote(job(w.msg, 'u@one.test'), { control: w.control(), mxPort: hole.port });
    assert.deepEqual(r, {
      result: 'deferral',
      report: "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n",
    });
    // With a second MX: delivered there; the timeout is remembered (two in a row = skipped for a while).
    const tcpto = new Tcpto(tcptoPath(w.root));
    for (const [i, rcpt] of ['v@two.test', 'w@two.test'].entries()) {
      const engine = new RemoteEngine({ root: w.root, control: w.control, mxPort: hole.port, idleMs: 10 });
      const ok = await engine.deliver(job(w.msg, rcpt));
      engine.close();
      assert.equal(ok.report, '127.0.0.8 accepted message.\nRemote host said: 250 ok queued\n');
      assert.equal(tcpto.read().get('127.0.0.7')?.errors, i + 1);
    }
    assert.equal(tcpto.skip('127.0.0.7'), true);
    const before = tcpto.read().get('127.0.0.7');
    const engine = new RemoteEngine({ root: w.root, control: w.control, mxPort: hole.port, idleMs: 10 });
    assert.equal((await engine.deliver(job(w.msg, 'x@two.test'))).result, 'success');
    engine.close();
    assert.deepEqual(tcpto.read().get('127.0.0.7'), before, 'skipped: not tried again, so no new timeout counted');
    assert.deepEqual(
      good.lines.filter((l) => l.startsWith('RCPT')),
      ['RCPT TO:<v@two.test>', 'RCPT TO:<w@two.test>', 'RCPT TO:<x@two.test>'],
    );
  } finally {
    hole.close();
    good.server.close();
    await dns.close();
    rmSync(w.root, { recursive: true });
  }
});
