// DATA in the pipelined group (RFC 2920 3.1) and DATA's transparency (RFC 5321 4.5.2) over real sockets on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { deliverRemote } from './index.js';
import { deliverBatch } from './deliver.js';
import { SmtpClient } from './client.js';
import { testSmtp, testWorld, type SmtpConnection, type TestSmtp } from '../../test/support/testsmtp.js';

const close = (s: Server): Promise<void> => new Promise((resolve) => s.close(() => resolve()));

/** Until the server's side of a connection has closed (the client's QUIT, or its drop, has arrived). */
const closedOf = (c: SmtpConnection | undefined): Promise<void> =>
  new Promise((resolve) => {
    const t = setInterval(() => {
      if (c?.closed === true) resolve(void clearInterval(t));
    }, 10);
  });

/**
 * A server that offers PIPELINING and holds its replies to MAIL and RCPT until DATA arrives (testSmtp's `group`): a
 * client that waits for MAIL's reply before sending DATA waits for good.
 */
const groupServer = (rcpt: (addr: string) => string, data: (accepted: number) => string): Promise<TestSmtp> =>
  testSmtp('127.0.0.1', { ehlo: ['PIPELINING'], group: true, rcpt, data });

const noRcptData = (accepted: number): string => (accepted > 0 ? '354 go' : '554 5.5.1 no valid recipients');

void test('PIPELINING: MAIL, RCPT and DATA go as one group; the message goes after the 354 of the group', async () => {
  const g = await groupServer(() => '250 ok', noRcptData);
  const w = testWorld({ smtproutes: `:127.0.0.1:${g.port}\n`, timeoutremote: '3\n' }, 'Subject: g\n\n.dot\nbody\n');
  const r = await deliverRemote(
    { recipient: 'to@group.test', sender: 'from@relay.test', messagePath: w.msg },
    { control: w.control() },
  );
  // Waiting for MAIL's answer before sending DATA, the client would have timed out here (connection died, #4.4.2).
  assert.equal(r.result, 'success', r.report);
  assert.match(r.report, /^127\.0\.0\.1 accepted message\.\nRemote host said: 250 ok queued\n$/);
  const [c] = g.connections;
  await closedOf(c);
  assert.ok(c);
  assert.deepEqual(c.lines.slice(1), ['MAIL FROM:<from@relay.test>', 'RCPT TO:<to@group.test>', 'DATA', 'QUIT']);
  assert.equal(c.data, 'Subject: g\r\n\r\n..dot\r\nbody\r\n');
  await g.close();
  rmSync(w.root, { recursive: true });
});

void test('PIPELINING: every recipient refused; DATA refused (554) resets, DATA taken anyway (354) drops the connection before any byte', async () => {
  for (const [what, data] of [
    ['DATA refused', noRcptData],
    ['354 with no recipient', (): string => '354 go anyway'],
  ] as const) {
    const g = await groupServer((a) => `550 5.1.1 <${a}>: no such user`, data);
    const w = testWorld({ smtproutes: `:127.0.0.1:${g.port}\n`, timeoutremote: '3\n' }, 'Subject: n\n\nsecret\n');
    const r = await deliverRemote(
      { recipient: 'nobody@group.test', sender: 'from@relay.test', messagePath: w.msg },
      { control: w.control() },
    );
    assert.equal(r.result, 'failure', `${what}: ${r.report}`);
    assert.equal(
      r.report,
      '127.0.0.1 does not like recipient.\nRemote host said: 550 5.1.1 <nobody@group.test>: no such user\nGiving up on 127.0.0.1.\n',
      what,
    );
    const [c] = g.connections;
    await closedOf(c);
    assert.deepEqual(g.messages, [], `${what}: no message (not even an empty one) was ended`);
    // refused: the transaction is reset and the connection ended politely; taken anyway: dropped without a QUIT,
    // the server still waiting for the message, of which no byte came
    assert.ok(c);
    assert.equal(c.unfinished, what === 'DATA refused' ? undefined : '', `${what}: no byte of the message was sent`);
    assert.deepEqual(
      c.lines.slice(4),
      what === 'DATA refused' ? ['RSET', 'QUIT'] : [],
      `${what}: ${JSON.stringify(c.lines)}`,
    );
    await g.close();
    rmSync(w.root, { recursive: true });
  }
});

// timeoutremote stays at its default (1200 s): only the server's close can end the client's wait for the replies that
// never come, and a client that missed the close would hang until the test's own timeout fails it.
void test(
  'PIPELINING: a server that closes in the middle of its replies to the group defers every recipient (connection died, #4.4.2) at once; no byte of the message sent',
  { timeout: 30_000 },
  async () => {
    for (const [what, hangup] of [
      ['after MAIL', 1],
      ['after MAIL and one RCPT', 2],
    ] as const) {
      const g = await testSmtp('127.0.0.1', { ehlo: ['PIPELINING'], group: true, hangup });
      const w = testWorld({ smtproutes: `:127.0.0.1:${g.port}\n` }, 'Subject: cut\n\nnever sent\n');
      const to = ['a@cut.test', 'b@cut.test', 'c@cut.test'];
      const results = await deliverBatch(
        to.map((recipient) => ({ recipient, sender: 'from@relay.test', messagePath: w.msg })),
        { control: w.control() },
      );
      // temporary for every recipient, accepted ones included: none of them got the message; no "Possible duplicate!",
      // since the final dot was never sent
      const died = { result: 'deferral', report: 'Connected to 127.0.0.1 but connection died. (#4.4.2)\n' };
      assert.deepEqual(results, [died, died, died], what);
      const [c] = g.connections;
      await closedOf(c);
      assert.ok(c);
      // the client sent the group and nothing after it: no byte of the message, no RSET, no QUIT
      assert.deepEqual(
        c.lines.slice(1),
        ['MAIL FROM:<from@relay.test>', ...to.map((a) => `RCPT TO:<${a}>`), 'DATA'],
        `${what}: ${JSON.stringify(c.lines)}`,
      );
      assert.deepEqual(g.messages, [], what);
      assert.equal(c.data, '', what);
      assert.equal(c.unfinished, undefined, what);
      await g.close();
      rmSync(w.root, { recursive: true });
    }
  },
);

/**
 * DATA's bytes as notqmail's qmail-remote makes them (blast(), transcribed loop for loop): the reference for the
 * client. A `.` starting a line doubled; LF → CRLF; CR LF → CR LF; CR then another byte → CR LF and that byte as it
 * is; a CR at the very end → CR LF; a last line without either → partial (no final dot).
 */
function reference(text: Buffer): { bytes: Buffer; sent: boolean } {
  const out: number[] = [];
  let i = 0;
  const get = (): number | undefined => text[i++];
  for (;;) {
    let ch = get();
    if (ch === undefined) break;
    if (ch === 0x2e) out.push(0x2e);
    while (ch !== 0x0a) {
      if (ch === 0x0d) {
        ch = get();
        if (ch === undefined) break;
        if (ch !== 0x0a) out.push(0x0d, 0x0a);
        else break;
      }
      out.push(ch);
      ch = get();
      if (ch === undefined) return { bytes: Buffer.from(out), sent: false };
    }
    out.push(0x0d, 0x0a);
  }
  out.push(0x2e, 0x0d, 0x0a);
  return { bytes: Buffer.from(out), sent: true };
}

/** What SmtpClient.data writes for `body` (a buffer, or a stream of the given chunks), read by a real server. */
async function sentBytes(body: Buffer | Buffer[]): Promise<{ bytes: Buffer; sent: 'sent' | 'partial' }> {
  const got: Buffer[] = [];
  let ended!: () => void;
  const done = new Promise<void>((resolve) => (ended = resolve));
  const server = createServer((s) => {
    s.on('data', (d: Buffer) => got.push(d));
    s.on('end', () => {
      s.end();
      ended();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sock = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve) => sock.once('connect', resolve));
  const client = new SmtpClient(sock, 5000);
  const sent = await client.data(Buffer.isBuffer(body) ? body : Readable.from(body));
  client.quit(); // QUIT after the bytes, then the end: everything written reaches the server
  await done;
  await close(server);
  const all = Buffer.concat(got);
  assert.ok(all.subarray(-6).equals(Buffer.from('QUIT\r\n')));
  return { bytes: all.subarray(0, -6), sent };
}

void test('DATA transparency as qmail-remote: LF and CR LF → CRLF, a lone CR ends its line, a leading dot doubled, the final dot only after a whole last line; a buffer and any chunking alike', async () => {
  const byte = fc.constantFrom(0x61, 0x2e, 0x0d, 0x0a, 0x20);
  await fc.assert(
    fc.asyncProperty(
      fc.array(byte, { maxLength: 80 }),
      fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 20 }),
      async (bytes, cuts) => {
        const text = Buffer.from(bytes);
        const want = reference(text);
        const whole = await sentBytes(text);
        assert.equal(whole.sent, want.sent ? 'sent' : 'partial');
        assert.ok(whole.bytes.equals(want.bytes), `buffer: ${JSON.stringify(text.toString('latin1'))}`);
        const chunks: Buffer[] = [];
        for (let i = 0, k = 0; i < text.length; k++) {
          const n = cuts[k % cuts.length] ?? 1;
          chunks.push(text.subarray(i, i + n));
          i += n;
        }
        const streamed = await sentBytes(chunks);
        assert.equal(streamed.sent, whole.sent);
        assert.ok(streamed.bytes.equals(want.bytes), `chunks: ${JSON.stringify(chunks.map((c) => c.toString()))}`);
      },
    ),
    { numRuns: 150 },
  );
});
