// A hostile remote server against quail's SMTP client (the send child's remote delivery, and held mail's push): a
// reply line without end, a multiline reply without end, a reply dripped one byte at a time. Any sender can make
// quail deliver to a server of their choice (a bounce goes to the sender's MX), so none of these may grow the
// process's memory without bound or hold a delivery for ever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Control } from '../control/index.js';
import { deliverRemote, RemoteEngine } from './index.js';
import { ConnectionPool } from './pool.js';
import { Dropped, REPLY_LIMITS, SmtpClient } from './client.js';
import type { DeliveryResult } from '../core/index.js';
import { testSmtp, testWorld, type SmtpScript, type TestSmtp } from '../../test/support/testsmtp.js';

/** A server on 127.0.0.1 that runs `serve` on each connection; counts the bytes it managed to send. */
async function hostile(serve: (s: Socket, sent: (n: number) => void) => void): Promise<{
  port: number;
  sent: () => number;
  stop: () => Promise<void>;
}> {
  let total = 0;
  const open = new Set<Socket>();
  const server = createServer((s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => undefined);
    serve(s, (n) => (total += n));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  server.unref(); // a failed assertion before stop() must not keep the test process alive
  const addr = server.address();
  assert.ok(addr !== null && typeof addr === 'object');
  const stop = (): Promise<void> =>
    new Promise((r) => {
      for (const s of open) s.destroy();
      server.close(() => r());
    });
  return { port: addr.port, sent: () => total, stop };
}

/** Writes `chunk` again each time the socket drains, until it closes. */
function flood(s: Socket, first: string, chunk: string, sent: (n: number) => void): void {
  const buf = Buffer.from(chunk, 'latin1');
  s.write(first);
  const more = (): void => {
    while (!s.destroyed && s.write(buf)) sent(buf.length);
    if (!s.destroyed) sent(buf.length);
  };
  s.on('drain', more);
  more();
}

async function client(port: number, timeoutMs: number): Promise<SmtpClient> {
  const sock = connect(port, '127.0.0.1');
  await new Promise<void>((r, j) => {
    sock.once('connect', r);
    sock.once('error', j);
  });
  return new SmtpClient(sock, timeoutMs);
}

void test('a reply line without end: the connection is dropped past the line limit, with the reason', async () => {
  const h = await hostile((s, sent) => flood(s, '220 ', 'x'.repeat(65536), sent));
  const c = await client(h.port, 60_000);
  await assert.rejects(c.reply(), (e: unknown) => e instanceof Dropped && /longer than 4096 bytes/.test(e.message));
  // What the server got out before the drop is what the kernel's buffers held, not an ever-growing stream.
  assert.ok(h.sent() < 64 << 20, `the server sent ${h.sent()} bytes`);
  await h.stop();
});

void test('a multiline reply without end: dropped past the line count', async () => {
  const h = await hostile((s, sent) => flood(s, '', '220-a line of a greeting that never ends\r\n'.repeat(1000), sent));
  const c = await client(h.port, 60_000);
  await assert.rejects(c.reply(), (e: unknown) => e instanceof Dropped && /500 lines/.test(e.message));
  assert.ok(h.sent() < 64 << 20, `the server sent ${h.sent()} bytes`);
  await h.stop();
});

void test('replies up to the limits are read whole, in any chunking', async () => {
  const long = `250 ${'y'.repeat(REPLY_LIMITS.lineBytes - 4)}`;
  const ehlo = Array.from({ length: REPLY_LIMITS.replyLines - 1 }, (_, i) => `250-EXT${i}`).join('\r\n');
  const script = `220 hi\r\n${ehlo}\r\n250 LAST\r\n${long}\r\n`;
  const h = await hostile((s) => {
    // seven bytes a write, so lines and their CRLFs are split across chunks
    let i = 0;
    const next = (): void => {
      if (i >= script.length) return;
      s.write(script.slice(i, i + 7), () => setImmediate(next));
      i += 7;
    };
    next();
  });
  const c = await client(h.port, 10_000);
  assert.deepEqual((await c.reply()).lines, ['220 hi']);
  const e = await c.reply();
  assert.equal(e.code, 250);
  assert.equal(e.lines.length, REPLY_LIMITS.replyLines);
  assert.equal(e.lines.at(-1), '250 LAST');
  assert.deepEqual((await c.reply()).lines, [long]);
  c.close();
  await h.stop();
});

void test('a reply dripped a byte at a time, each in time: the whole reply must come within the timeout', async () => {
  const h = await hostile((s) => {
    const t = setInterval(() => s.write('2'), 50);
    s.on('close', () => clearInterval(t));
  });
  const c = await client(h.port, 400);
  const t0 = Date.now();
  await assert.rejects(c.reply(), (e: unknown) => e instanceof Dropped);
  assert.ok(Date.now() - t0 < 5_000);
  await h.stop();
});

void test('deliverRemote to such a server: a deferral that says why', async () => {
  const h = await hostile((s, sent) => flood(s, '220 ', 'z'.repeat(65536), sent));
  const root = mkdtempSync(join(tmpdir(), 'quail-hostile-remote-'));
  mkdirSync(join(root, 'control'));
  writeFileSync(join(root, 'control', 'me'), 'me.test\n');
  writeFileSync(join(root, 'control', 'smtproutes'), `:127.0.0.1:${h.port}\n`);
  writeFileSync(join(root, 'msg'), 'Subject: x\n\nbody\n');
  const job = { recipient: 'u@remote.test', sender: 's@x.test', messagePath: join(root, 'msg') };
  const r = await deliverRemote(job, { control: new Control(root) });
  assert.deepEqual(r, {
    result: 'deferral',
    report:
      'Connected to 127.0.0.1 but connection died (the server sent a reply longer than 4096 bytes a line or 500 lines). (#4.4.2)\n',
  });
  await h.stop();
  rmSync(root, { recursive: true });
});

/**
 * testWorld's message (or `message`) delivered by deliverRemote to a testSmtp server running `script`; the server is
 * closed, after every connection ended, before this returns, so what it saw (`g.lines`, `g.connections`) is complete.
 */
async function deliverTo(script: SmtpScript, message?: string): Promise<{ r: DeliveryResult; g: TestSmtp }> {
  const g = await testSmtp('127.0.0.1', script);
  const w = testWorld({ smtproutes: `:127.0.0.1:${g.port}\n`, timeoutremote: '3\n' }, message);
  try {
    const job = { recipient: 'u@remote.test', sender: 's@x.test', messagePath: w.msg };
    return { r: await deliverRemote(job, { control: w.control() }), g };
  } finally {
    await g.close();
    rmSync(w.root, { recursive: true });
  }
}

void test('DATA answered with anything but 354: deferred, and no line of the message reaches the server as a command', async () => {
  // A server that says 250 to DATA is not reading a message: the message's lines would be taken as SMTP commands.
  const { r, g } = await deliverTo({ replies: { DATA: '250 data? fine' } }, 'Subject: x\n\nRSET\nbody\n');
  assert.deepEqual(r, {
    result: 'deferral',
    report: '127.0.0.1 failed on DATA command.\nRemote host said: 250 data? fine\n',
  });
  const [c] = g.connections;
  assert.ok(c);
  assert.deepEqual(c.lines.slice(1), ['MAIL FROM:<s@x.test>', 'RCPT TO:<u@remote.test>', 'DATA', 'QUIT']);
});

void test('reply codes that are not RFC 5321 codes, or not 2xx where success needs one: never a success', async () => {
  // After the final dot: `2500` is not 250, and a 1xx, 3xx, 6xx or a code of two digits accepts nothing. Deferred
  // (the server may hold the message: a retry rather than a lost message), with the server's text.
  for (const end of ['2500 ok queued', '199 ok', '354 more?', '099 fine', '600 fine', '25 ok', 'ok']) {
    const { r } = await deliverTo({ replies: { end } });
    assert.deepEqual(
      r,
      { result: 'deferral', report: `127.0.0.1 failed after I sent the message.\nRemote host said: ${end}\n` },
      end,
    );
  }
  // A 354 or a 2500 to RCPT accepts no recipient; a 2500 to MAIL is no sender accepted.
  for (const [what, script, report] of [
    [
      'RCPT 354',
      { rcpt: (): string => '354 go on' },
      '127.0.0.1 does not like recipient.\nRemote host said: 354 go on\nGiving up on 127.0.0.1.\n',
    ],
    [
      'RCPT 2500',
      { rcpt: (): string => '2500 ok' },
      '127.0.0.1 does not like recipient.\nRemote host said: 2500 ok\nGiving up on 127.0.0.1.\n',
    ],
    [
      'MAIL 2500',
      { replies: { MAIL: '2500 ok' } },
      'Connected to 127.0.0.1 but sender was rejected.\nRemote host said: 2500 ok\n',
    ],
  ] as const) {
    const { r, g } = await deliverTo(script);
    assert.deepEqual(r, { result: 'deferral', report }, what);
    assert.deepEqual(g.messages, [], `${what}: no message was sent`);
  }
});

void test('replies before their command (smuggled, out of order, more than the commands): the connection is dropped, deferred', async () => {
  const died =
    'Connected to 127.0.0.1 but connection died (the server sent a reply to a command not sent yet). (#4.4.2)\n';
  for (const [what, script] of [
    // an extra 250 after MAIL's would be read as RCPT's answer, RCPT's 550 as DATA's, ...
    [
      'an extra 250 after MAIL',
      { replies: { MAIL: '250 ok\r\n250 smuggled' }, rcpt: (): string => '550 no such user' },
    ],
    [
      'the same in a pipelined group',
      { ehlo: ['PIPELINING'], group: true, replies: { MAIL: '250 ok\r\n250 smuggled' }, rcpt: (): string => '550 no' },
    ],
    // a multi-line greeting whose junk line ends it: its last line would answer EHLO, and so on
    ['a greeting with a junk line', { replies: { greeting: '220-hi\r\n\u0000\u0001junk\r\n220 ok' } }],
  ] as const) {
    const { r, g } = await deliverTo(script);
    assert.deepEqual(r, { result: 'deferral', report: died }, what);
    assert.deepEqual(g.messages, [], `${what}: no message was sent`);
  }
});

void test("the server's text in a report: control bytes, 8-bit and invalid UTF-8 become ?, and it stops after 5,000 bytes", async () => {
  const raw = '550 no\u0000such\u001b[31m user \u00ff\u00fe \u0007end'; // written as UTF-8: ÿ and þ are two bytes each
  const long = Array.from({ length: 60 }, (_, i) => `550-${String(i).padStart(2, '0')} ${'x'.repeat(120)}`);
  for (const [what, reply, text] of [
    ['control bytes', raw, '550 no?such?[31m user ???? ?end'],
    ['60 lines of 125 bytes', [...long, '550 last'].join('\r\n'), `${long.join('\n').slice(0, 5000)}...`],
  ] as const) {
    const { r } = await deliverTo({ rcpt: () => reply });
    assert.deepEqual(
      r,
      {
        result: 'failure',
        report: `127.0.0.1 does not like recipient.\nRemote host said: ${text}\nGiving up on 127.0.0.1.\n`,
      },
      what,
    );
  }
});

/** A server that offers STARTTLS, says 220 to it, and answers the client's handshake with `hello` (none: silence). */
const badTls = (hello?: Buffer): ReturnType<typeof hostile> =>
  hostile((s) => {
    s.write('220 tls.test\r\n');
    let state: 'smtp' | 'tls' = 'smtp';
    s.on('data', (d: Buffer) => {
      if (state === 'tls') {
        if (hello) s.write(hello);
        return;
      }
      const l = d.toString('latin1');
      if (/^EHLO/i.test(l)) s.write('250-tls.test\r\n250 STARTTLS\r\n');
      else if (/^STARTTLS/i.test(l)) {
        state = 'tls';
        s.write('220 go ahead\r\n');
      } else s.write('250 ok\r\n');
    });
  });

void test('STARTTLS answered with garbage or silence (TLS required): a one-line reason without OpenSSL internals, temporary', async () => {
  for (const [what, hello, why] of [
    ['garbage', Buffer.alloc(300, 0x41), 'wrong version number'],
    ['silence', undefined, 'TLS handshake timed out'],
  ] as const) {
    const h = await badTls(hello);
    const w = testWorld({
      smtproutes: `:127.0.0.1:${h.port}\n`,
      timeoutremote: '1\n',
      tlsdestinations: 'remote.test:verify\n',
    });
    const job = { recipient: 'u@remote.test', sender: 's@x.test', messagePath: w.msg };
    const r = await deliverRemote(job, { control: w.control() });
    assert.deepEqual(
      r,
      { result: 'deferral', report: `Connected to 127.0.0.1 but the TLS handshake failed: ${why} (#4.7.5).\n` },
      what,
    );
    await h.stop();
    rmSync(w.root, { recursive: true });
  }
});

void test('a server that takes DATA but never reads the message (its TCP window full): timed out, deferred', async () => {
  const h = await hostile((s) => {
    s.write('220 sink.test\r\n');
    s.on('data', (d: Buffer) => {
      const l = d.toString('latin1');
      if (/^DATA/im.test(l)) {
        s.write('354 go\r\n');
        s.pause(); // and never reads again
      } else if (/^EHLO/i.test(l)) s.write('250 sink.test\r\n');
      else s.write('250 ok\r\n');
    });
  });
  // 4 MiB: more than the socket buffers of both sides hold
  const w = testWorld(
    { smtproutes: `:127.0.0.1:${h.port}\n`, timeoutremote: '1\n' },
    `Subject: big\n\n${`${'x'.repeat(79)}\n`.repeat(52_429)}`,
  );
  const r = await deliverRemote(
    { recipient: 'u@remote.test', sender: 's@x.test', messagePath: w.msg },
    { control: w.control() },
  );
  assert.deepEqual(r, {
    result: 'deferral',
    report: 'Connected to 127.0.0.1 but connection died. (#4.4.2)\n',
  });
  await h.stop();
  rmSync(w.root, { recursive: true });
});

/**
 * A server that closes (FIN) or resets (RST) the connection when it gets to `at`: instead of answering RCPT, at the
 * first bytes of the message, at the final dot before its reply, or at QUIT after its 250 for the message.
 */
const closing = (at: 'rcpt' | 'message' | 'dot' | 'quit', how: 'fin' | 'rst'): ReturnType<typeof hostile> =>
  hostile((s) => {
    const bye = (): void => void (how === 'fin' ? s.end() : s.resetAndDestroy());
    let inData = false;
    let buf = '';
    s.write('220 closing.test\r\n');
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (inData && at === 'message') return bye();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const l = buf.slice(0, nl + 1);
        buf = buf.slice(nl + 1);
        if (inData) {
          if (l !== '.\r\n') continue;
          inData = false;
          if (at === 'dot') return bye();
          s.write('250 ok queued as 1\r\n');
        } else if (/^RCPT/i.test(l) && at === 'rcpt') return bye();
        else if (/^QUIT/i.test(l)) return at === 'quit' ? bye() : void s.end('221 bye\r\n');
        else if (/^DATA/i.test(l)) {
          inData = true;
          s.write('354 go\r\n');
        } else s.write(/^EHLO/i.test(l) ? '250 closing.test\r\n' : '250 ok\r\n');
      }
    });
  });

void test('the connection closed or reset at each point: before the dot deferred, after it a possible duplicate, after the 250 delivered', async () => {
  const died = 'Connected to 127.0.0.1 but connection died. (#4.4.2)\n';
  const expected = {
    rcpt: { result: 'deferral', report: died },
    message: { result: 'deferral', report: died },
    dot: { result: 'deferral', report: 'Connected to 127.0.0.1 but connection died. Possible duplicate! (#4.4.2)\n' },
    // delivered: a close at QUIT changes nothing (never retried, so never sent twice)
    quit: { result: 'success', report: '127.0.0.1 accepted message.\nRemote host said: 250 ok queued as 1\n' },
  } as const;
  for (const at of ['rcpt', 'message', 'dot', 'quit'] as const) {
    for (const how of ['fin', 'rst'] as const) {
      const h = await closing(at, how);
      // the message larger than one write, so that a reset in its middle meets the client still writing
      const w = testWorld(
        { smtproutes: `:127.0.0.1:${h.port}\n`, timeoutremote: '5\n' },
        `Subject: x\n\n${'y'.repeat(99)}\n`.repeat(at === 'message' ? 20_000 : 1),
      );
      const r = await deliverRemote(
        { recipient: 'u@remote.test', sender: 's@x.test', messagePath: w.msg },
        { control: w.control() },
      );
      assert.deepEqual(r, expected[at], `${at} ${how}`);
      await h.stop();
      rmSync(w.root, { recursive: true });
    }
  }
});

void test('a server whose SIZE is below the message: permanent #5.3.4, no MAIL sent', async () => {
  const { r, g } = await deliverTo({ ehlo: ['SIZE 10'] }, 'Subject: test\n\nhello\n');
  assert.deepEqual(r, {
    result: 'failure',
    report: '127.0.0.1 does not accept messages of 21 bytes (SIZE 10). (#5.3.4)\n',
  });
  assert.ok(
    g.lines.every((l) => !/^MAIL/i.test(l)),
    JSON.stringify(g.lines),
  );
});

void test('a server that accepts and never greets: a delivery finding its connections busy is deferred after timeoutconnect, not kept waiting', async () => {
  let accepted = 0;
  const tarpit = await hostile(() => accepted++); // never writes a byte
  const w = testWorld({
    smtproutes: `:127.0.0.1:${tarpit.port}\n`,
    timeoutremote: '60\n', // the first delivery's connection lasts this long
    timeoutconnect: '1\n', // the others wait this long for it
  });
  writeFileSync(`${w.msg}2`, 'Subject: second\n\nbody\n'); // another message: not grouped with the first
  const engine = new RemoteEngine({ root: w.root, control: w.control, perHost: 1 });
  const first = engine.deliver({ recipient: 'a@remote.test', sender: 's@x.test', messagePath: w.msg });
  const second = await engine.deliver({ recipient: 'b@remote.test', sender: 's@x.test', messagePath: `${w.msg}2` });
  assert.deepEqual(second, {
    result: 'deferral',
    report:
      'Sorry, too many connections to 127.0.0.1 are busy already (concurrencyremotehost is 1); none became free within timeoutconnect (1 s). (#4.4.5)\n',
  });
  assert.equal(accepted, 1, 'one connection, still waiting for the greeting');
  await tarpit.stop(); // the first delivery's connection dies: deferred too
  assert.equal((await first).result, 'deferral');
  engine.close();
  rmSync(w.root, { recursive: true });
});

void test('ConnectionPool.slot: a waiter whose time ran out leaves the queue; a freed slot goes to the next waiter at once', async () => {
  const pool = new ConnectionPool(1, 1000);
  const held = await pool.slot('k');
  assert.ok(held);
  const gone = pool.slot('k', 1); // first in the queue, and gives up
  let got: (() => void) | undefined;
  const patient = pool.slot('k', 60_000).then((r) => (got = r));
  assert.equal(await gone, undefined, 'busy for longer than its wait');
  held();
  await new Promise((r) => setImmediate(r)); // the wake-up is a microtask: done by now
  assert.ok(got, 'the freed slot went to the waiter still in the queue, not to the one that gave up');
  got();
  await patient;
  const last = await pool.slot('k', 0);
  assert.ok(last, 'every slot given back');
  last();
});
