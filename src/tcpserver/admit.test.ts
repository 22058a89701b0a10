// TcpServer's `admit`: several processes accept on one socket and another process counts their connections (as root
// does for quail start's SMTP processes, src/start/privchild.ts). Each connection waits, unread, for its answer; it is
// counted out exactly once however it ends. Through quail start as root: src/start/smtpd-processes.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TcpServer, type Admitted } from './index.js';
import { collecting } from '../../test/support/start.js';
import { waitFor } from '../../test/support/wait.js';

/** A TcpServer whose admissions wait until the test answers them (`pending`, in order of arrival). */
function counted(): {
  server: TcpServer;
  pending: Array<{ ip: string; answer: (a: Admitted) => void; fail: (e: Error) => void }>;
  opened: string[];
  released: number[];
  doneFor: (n: number) => () => void;
} {
  const pending: Array<{ ip: string; answer: (a: Admitted) => void; fail: (e: Error) => void }> = [];
  const opened: string[] = [];
  const released: number[] = [];
  const server = new TcpServer({
    maxConnections: 0, // not used with admit: a server that counted here would refuse everything
    maxPerIp: 0,
    paused: true,
    halfOpen: true,
    tooMany: () => 'counted here\r\n',
    open: (socket, ip) => {
      opened.push(ip);
      socket.resume();
      socket.on('data', (d: Buffer) => {
        if (d.toString('latin1').includes('QUIT')) socket.end('bye\r\n');
      });
      socket.on('end', () => socket.end()); // the client's EOF ends the session, as SMTP's does
      socket.write('hello\r\n');
      return { done: new Promise((r) => socket.on('close', r)) };
    },
    acceptFailed: () => undefined,
    admit: (ip) => new Promise((answer, fail) => pending.push({ ip, answer, fail })),
  });
  return { server, pending, opened, released, doneFor: (n) => () => released.push(n) };
}

type Counted = ReturnType<typeof counted>;

/** Runs `body` on a listening counted() server, closed after it whatever happens. */
async function withCounted(body: (c: Counted, port: number) => Promise<void>): Promise<void> {
  const c = counted();
  const { port } = await c.server.listen(0, '127.0.0.1');
  try {
    await body(c, port);
  } finally {
    await c.server.close(0);
  }
}

void test('admit: a connection waits unread for its answer; admitted, it is served and counted out once at its end', () =>
  withCounted(async (c, port) => {
    const a = collecting(port);
    a.socket.write('QUIT\r\n'); // sent before the answer: read only once the session starts
    await waitFor(() => c.pending.length === 1, 5000);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(c.opened, [], 'no session before the answer');
    assert.equal(a.got(), '', 'nothing written before the answer');
    assert.equal(c.pending[0]?.ip, '127.0.0.1');
    c.pending[0]?.answer({ ok: true, done: c.doneFor(1) });
    await waitFor(a.closed, 5000);
    assert.equal(a.got(), 'hello\r\nbye\r\n', 'served: the QUIT sent early was read then');
    await waitFor(() => c.released.length === 1, 5000);
    assert.deepEqual(c.released, [1], 'counted out once');
    assert.deepEqual(c.opened, ['127.0.0.1']);
  }));

void test('admit: refused, the client is told the text and closed; no session, nothing to count out', () =>
  withCounted(async (c, port) => {
    const a = collecting(port);
    await waitFor(() => c.pending.length === 1, 5000);
    c.pending[0]?.answer({ ok: false, refuse: '421 too many connections\r\n' });
    await waitFor(a.closed, 5000);
    assert.equal(a.got(), '421 too many connections\r\n');
    const b = collecting(port);
    await waitFor(() => c.pending.length === 2, 5000);
    c.pending[1]?.answer({ ok: false, refuse: undefined }); // an implicit-TLS port: closed without a word
    await waitFor(b.closed, 5000);
    assert.equal(b.got(), '');
    assert.deepEqual(c.opened, []);
    assert.deepEqual(c.released, []);
  }));

void test('admit: a client gone before its answer, or a server closed meanwhile: counted out once', () =>
  withCounted(async (c, port) => {
    const a = collecting(port);
    await waitFor(() => c.pending.length === 1, 5000);
    a.socket.destroy(); // gone while root answers: unread (paused), the server sees it only once its session reads
    await new Promise((r) => setTimeout(r, 100));
    c.pending[0]?.answer({ ok: true, done: c.doneFor(1) });
    await waitFor(() => c.released.length === 1, 5000);
    assert.deepEqual(c.opened, ['127.0.0.1'], 'its session started, read the end and ended');
    const b = collecting(port);
    await waitFor(() => c.pending.length === 2, 5000);
    const closing = c.server.close(0);
    await waitFor(b.closed, 5000); // the server's close ends the connections still waiting
    c.pending[1]?.answer({ ok: true, done: c.doneFor(2) });
    await closing;
    await waitFor(() => c.released.length === 2, 5000);
    assert.deepEqual(c.released, [1, 2], 'each counted out once');
    assert.deepEqual(c.opened, ['127.0.0.1'], 'no session for the one the close ended');
    assert.equal(b.got(), '');
  }));

// a timeout: a connection left open would keep the server's close waiting for good
void test(
  'admit: an asking that fails (the counting process gone) closes the connection without a word; the next is served',
  { timeout: 20_000 },
  () =>
    withCounted(async (c, port) => {
      const a = collecting(port);
      await waitFor(() => c.pending.length === 1, 5000);
      c.pending[0]?.fail(new Error('the counting process is gone'));
      await waitFor(a.closed, 5000);
      assert.equal(a.got(), '');
      assert.deepEqual(c.opened, [], 'no session for it');
      const b = collecting(port);
      await waitFor(() => c.pending.length === 2, 5000);
      c.pending[1]?.answer({ ok: true, done: c.doneFor(2) });
      b.socket.write('QUIT\r\n');
      await waitFor(b.closed, 5000);
      assert.equal(b.got(), 'hello\r\nbye\r\n');
      await waitFor(() => c.released.length === 1, 5000);
      assert.deepEqual(c.released, [2]);
    }),
);
